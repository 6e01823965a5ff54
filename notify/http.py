"""The HTTP client of the notifier: one POST, no redirects followed, a timeout per endpoint."""

from __future__ import annotations

import time
from dataclasses import dataclass

import aiohttp


@dataclass(frozen=True, slots=True)
class Answer:
    code: int | None  # None: no HTTP answer (timeout, refused, reset, ...)
    error: str | None
    seconds: float


class Client:
    def __init__(self) -> None:
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        connector = aiohttp.TCPConnector(limit=0, ttl_dns_cache=60)
        self._session = aiohttp.ClientSession(connector=connector, auto_decompress=False)

    async def post(
        self, url: str, headers: dict[str, str], body: bytes, timeout_s: float
    ) -> Answer:
        assert self._session is not None, "Client.start() first"
        t0 = time.perf_counter()
        try:
            async with self._session.post(
                url,
                data=body,
                headers=headers,
                allow_redirects=False,
                timeout=aiohttp.ClientTimeout(total=timeout_s),
            ) as resp:
                await resp.content.read(64 * 1024)  # some of the answer, never all of it
                return Answer(resp.status, _why(resp.status), time.perf_counter() - t0)
        except TimeoutError:
            return Answer(None, f"timeout after {timeout_s:g} s", time.perf_counter() - t0)
        except (aiohttp.ClientError, OSError) as exc:
            text = f"{type(exc).__name__}: {exc}"[:300]
            return Answer(None, text, time.perf_counter() - t0)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


def _why(code: int) -> str | None:
    return None if 200 <= code < 300 else f"HTTP {code}"
