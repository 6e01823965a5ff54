"""Fixtures and hooks of the chaos suites: a plain HTTP client on the stack's ingest, and the
session's tally of generated cases, written to ``.run/chaos-inputs.json`` and summed up at
the end of the run."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from pipeline.settings import Settings
from stack.launcher import StackInfo
from tests.auth import MerchantAuth, api_token
from tests.chaos.probes import FULL, TALLY, healthy
from tests.conftest import KEEP_ALIVE


@pytest.fixture(scope="module")
def http(stack: StackInfo, settings: Settings) -> Iterator[httpx.Client]:
    """A synchronous client (Hypothesis drives synchronous tests); ingest must still be
    healthy when a module is done with it. Merchant API calls carry the API token."""
    auth = MerchantAuth(api_token(settings))
    with httpx.Client(
        base_url=stack.ingest_url, timeout=30, auth=auth, limits=KEEP_ALIVE
    ) as client:
        yield client
        healthy(client)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if TALLY.cases:
        TALLY.write()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not TALLY.cases:
        return
    report = TALLY.report()
    size = "full (CHAOS_FULL=1)" if FULL else "CI subset (set CHAOS_FULL=1 for the full run)"
    terminalreporter.write_sep("-", "chaos inputs")
    terminalreporter.write_line(
        f"{report['total_cases']} generated cases, {size}; "
        f"5xx other than 503: {report['server_errors_other_than_503']}; "
        f"per test in .run/chaos-inputs.json"
    )
