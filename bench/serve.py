"""Serve an app factory with a chosen server (granian as ``pipeline-ingest`` runs it):
``python -m bench.serve MODULE:FACTORY uvicorn|granian PORT``."""

from __future__ import annotations

import importlib
import sys

from pipeline.entry import tune_gc


def main() -> None:
    target, server, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    tune_gc()  # as every service of the pipeline runs: the ingest app and the bare one alike
    if server == "granian":  # exactly as ingest runs: pipeline-ingest's own server settings
        from ingest.main import server as granian_server
        from pipeline.settings import IngestSettings

        granian_server(IngestSettings(host="127.0.0.1", port=port), target).serve()
        return
    import uvicorn

    if server == "uvicorn":  # with ingest's header deadline, as pipeline-ingest would run it
        from ingest.main import uvicorn_config
        from pipeline.settings import IngestSettings

        uvicorn.Server(uvicorn_config(IngestSettings(host="127.0.0.1", port=port), target)).run()
        return
    module, _, name = target.partition(":")
    app = getattr(importlib.import_module(module), name)()
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
