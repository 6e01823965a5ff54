"""A headless Chromium driven over the DevTools protocol: signs in to the dashboard through its
login form (as a person would), waits until the page has drawn, and returns what it shows."""

from __future__ import annotations

import asyncio
import base64
import json
import re
import shutil
from dataclasses import dataclass
from itertools import count
from pathlib import Path
from typing import Any

import aiohttp
import pytest

SIZE = (1400, 1000)


@dataclass
class Seen:
    png: bytes
    dom: str
    url: str
    script_cookies: str  # document.cookie: an HttpOnly cookie is not in it


class _Session:
    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws, self.ids, self.session = ws, count(1), ""

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        msg_id = next(self.ids)
        msg: dict[str, Any] = {"id": msg_id, "method": method, "params": params}
        if self.session:
            msg["sessionId"] = self.session
        await self.ws.send_json(msg)
        while True:
            got = json.loads((await self.ws.receive(timeout=30)).data)
            if got.get("id") == msg_id:
                if "error" in got:
                    raise AssertionError(f"{method}: {got['error']}")
                result: dict[str, Any] = got.get("result", {})
                return result

    async def js(self, expression: str) -> Any:
        got = await self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        return got["result"].get("value")

    async def until(self, expression: str, timeout: float = 30) -> Any:
        deadline = asyncio.get_running_loop().time() + timeout
        while asyncio.get_running_loop().time() < deadline:
            with_value = await self.js(expression)
            if with_value:
                return with_value
            await asyncio.sleep(0.25)
        raise AssertionError(f"browser: timed out waiting for {expression}")


async def sign_in_and_look(base_url: str, token: str, profile: Path) -> Seen:
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        pytest.fail("chromium is not installed: run deploy/setup-system.sh as root (make setup)")
    child = await asyncio.create_subprocess_exec(
        exe,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--remote-debugging-port=0",
        f"--user-data-dir={profile}",
        f"--window-size={SIZE[0]},{SIZE[1]}",
        "about:blank",
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert child.stderr is not None
        ws_url = ""
        while not ws_url:
            line = await asyncio.wait_for(child.stderr.readline(), 30)
            assert line, "chromium exited before its DevTools endpoint was up"
            if found := re.search(rb"DevTools listening on (ws://\S+)", line):
                ws_url = found.group(1).decode()
        async with aiohttp.ClientSession() as http, http.ws_connect(ws_url, max_msg_size=0) as ws:
            return await _look(_Session(ws), base_url, token)
    finally:
        if child.returncode is None:
            child.kill()
        await child.wait()


async def _look(cdp: _Session, base_url: str, token: str) -> Seen:
    target = await cdp.call("Target.createTarget", url="about:blank")
    attached = await cdp.call("Target.attachToTarget", targetId=target["targetId"], flatten=True)
    cdp.session = attached["sessionId"]
    await cdp.call(
        "Emulation.setDeviceMetricsOverride",
        width=SIZE[0],
        height=SIZE[1],
        deviceScaleFactor=1,
        mobile=False,
    )
    await cdp.call("Page.navigate", url=f"{base_url}/dashboard/")  # no session: to the form
    await cdp.until("document.forms.length && location.pathname === '/dashboard/login'")
    await cdp.js(
        f"document.querySelector('input[name=token]').value = {json.dumps(token)};"
        "document.forms[0].submit(); true"
    )
    await cdp.until("document.body && document.body.dataset.state === 'ready'")
    shot = await cdp.call("Page.captureScreenshot", format="png")
    return Seen(
        png=base64.b64decode(shot["data"]),
        dom=await cdp.js("document.documentElement.outerHTML"),
        url=await cdp.js("location.href"),
        script_cookies=await cdp.js("document.cookie"),
    )
