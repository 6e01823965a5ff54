"""The ClickHouse engine with its real HTTP interface, from the chdb-core wheel.

``python -m stack.chserver PORT DATA_DIR``: writes ``config.xml`` into DATA_DIR's parent,
changes there and serves HTTP on 127.0.0.1:PORT until SIGTERM (see shared infra notes).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path


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

    engine.query(  # type: ignore[attr-defined]
        "SYSTEM START LISTEN HTTP; SELECT max(sleepEachRow(1)) FROM numbers(1000000000) "
        "SETTINGS max_block_size = 1",
        "TabSeparated",
        path=str(data),
    )


if __name__ == "__main__":
    main()
