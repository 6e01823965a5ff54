"""Serve an app factory with a chosen server, same settings for every contender:
``python -m bench.serve MODULE:FACTORY uvicorn|granian PORT``."""

from __future__ import annotations

import importlib
import sys


def main() -> None:
    target, server, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    if server == "granian":
        from granian import Granian
        from granian.constants import Interfaces

        Granian(
            target,
            address="127.0.0.1",
            port=port,
            interface=Interfaces.ASGI,
            factory=True,
            workers=1,
            log_enabled=False,
        ).serve()
        return
    import uvicorn

    module, _, name = target.partition(":")
    app = getattr(importlib.import_module(module), name)()
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
