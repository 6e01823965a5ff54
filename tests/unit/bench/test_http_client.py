"""The load generator's client: idle keep-alive connections are reused while fresh and retired
before the server's own keep-alive timeout could close them under a request."""

from __future__ import annotations

import asyncio

import pytest

from bench import http_client
from bench.http_client import Job, Pool, request_bytes

ANSWER = b"HTTP/1.1 202 Accepted\r\ncontent-length: 2\r\n\r\nok"


async def _serve(peers: list[int]) -> asyncio.Server:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peers.append(writer.get_extra_info("peername")[1])
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
                await reader.readexactly(length)
                writer.write(ANSWER)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    return await asyncio.start_server(handle, "127.0.0.1", 0)


async def _send(pool: Pool, answers: list[int], data: bytes) -> None:
    before = len(answers)
    pool.submit(Job(len(answers), data))
    while len(answers) == before:
        await asyncio.sleep(0.005)


@pytest.mark.parametrize("gap_s, connections", [(0.0, 1), (0.3, 2)])
def test_an_idle_connection_is_reused_only_while_fresh(
    monkeypatch: pytest.MonkeyPatch, gap_s: float, connections: int
) -> None:
    monkeypatch.setattr(http_client, "IDLE_MAX_S", 0.1)

    async def scenario() -> tuple[list[int], list[int]]:
        peers: list[int] = []
        server = await _serve(peers)
        port = server.sockets[0].getsockname()[1]
        answers: list[int] = []
        pool = Pool(f"http://127.0.0.1:{port}", 4, 5.0, lambda job, st, err: answers.append(st))
        data = request_bytes("127.0.0.1", "/webhooks/x", {}, b"{}")
        await _send(pool, answers, data)
        await asyncio.sleep(gap_s)
        await _send(pool, answers, data)
        pool.close()
        server.close()
        return peers, answers

    peers, answers = asyncio.run(scenario())
    assert answers == [202, 202]
    assert len(set(peers)) == connections
