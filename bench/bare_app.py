"""The ceiling for ingest: a bare Litestar endpoint that reads the body and answers 202."""

from __future__ import annotations

import uuid
from typing import Any

from litestar import Litestar, Request, Response, post


@post("/webhooks/{provider:str}", status_code=202)
async def accept(provider: str, request: Request[Any, Any, Any]) -> Response[dict[str, str]]:
    await request.body()
    return Response({"id": uuid.uuid4().hex, "status": "accepted"}, status_code=202)


def app_factory() -> Litestar:
    return Litestar(route_handlers=[accept], openapi_config=None, debug=False)
