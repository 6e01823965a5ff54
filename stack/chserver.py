"""The ClickHouse engine with its real HTTP interface, from the chdb-core wheel.

``python -m stack.chserver PORT DATA_DIR``: writes ``config.xml`` into DATA_DIR's parent,
changes there and serves HTTP on 127.0.0.1:PORT until SIGTERM (see shared infra notes).

Once it listens, the pages of chdb's library that its start-up read and nothing uses after
are handed back to the kernel (``drop_cold_pages``, decision 0120): about 200 MiB of the
engine's 320 MiB resident memory.
"""

from __future__ import annotations

import ctypes
import os
import socket
import sys
import threading
import time
from pathlib import Path

#: madvise(2): reclaim these pages now; clean file pages are dropped, and read again from the
#: file if touched (Linux 5.4+)
MADV_PAGEOUT = 21
#: the library whose cold pages are dropped
ENGINE_LIBRARY = "_chdb.abi3.so"


def drop_cold_pages(library: str) -> int:
    """Ask the kernel to reclaim the read-only mappings of ``library`` in this process (its
    code and constants: clean pages, never lost, faulted in again when used); bytes advised.
    Writable mappings are left alone."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.madvise.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int)
    advised = 0
    for line in Path("/proc/self/maps").read_text().splitlines():
        fields = line.split()
        if len(fields) < 6 or not fields[5].endswith(library) or "w" in fields[1]:
            continue
        start, end = (int(x, 16) for x in fields[0].split("-"))
        if libc.madvise(start, end - start, MADV_PAGEOUT) == 0:
            advised += end - start
    return advised


def _drop_once_listening(port: int, settle_s: float = 2.0) -> None:
    # not stack.proc.port_open: importing stack.proc (psutil) costs this process 11 MiB
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.2)
    time.sleep(settle_s)  # the listener's own start-up done
    drop_cold_pages(ENGINE_LIBRARY)


def main() -> None:
    port, data = int(sys.argv[1]), Path(sys.argv[2]).resolve()
    home = data.parent
    home.mkdir(parents=True, exist_ok=True)
    (home / "config.xml").write_text(
        f"<clickhouse><http_port>{port}</http_port>"
        "<listen_host>127.0.0.1</listen_host></clickhouse>\n"
    )
    os.chdir(home)
    import chdb._chdb as engine  # heavy import: only in this process

    # the query below holds the main thread for the process's life (it releases the GIL)
    threading.Thread(target=_drop_once_listening, args=(port,), daemon=True).start()
    engine.query(  # type: ignore[attr-defined]
        "SYSTEM START LISTEN HTTP; SELECT max(sleepEachRow(1)) FROM numbers(1000000000) "
        "SETTINGS max_block_size = 1",
        "TabSeparated",
        path=str(data),
    )


if __name__ == "__main__":
    main()
