"""Schemathesis against the live ingest, from the service's own OpenAPI document
(``/schema/openapi.json``): every operation, with schemathesis's strategies for valid and
invalid data, driven by Hypothesis (the pytest plugin of schemathesis 4.32 does not run under
pytest 9).

Asserted on every answer: no 5xx but the documented 503; the status is one the document
declares for that operation; errors are JSON with a readable ``detail``; answers match their
declared schema; data that breaks the schema is refused.
"""

from __future__ import annotations

import httpx
import pytest
import requests
import schemathesis
from hypothesis import given
from hypothesis import strategies as st
from schemathesis import Case, GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from pipeline.settings import Settings
from stack.launcher import StackInfo
from tests.auth import MERCHANT_PATHS, api_token
from tests.chaos.probes import TALLY, current_test, sized

CHECKS = [
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    negative_data_rejection,
]


OPERATIONS = (
    ("POST", "/webhooks/{provider}"),
    ("POST", "/checkouts"),
    ("GET", "/transactions/{provider}/{external_id}"),
    ("GET", "/transactions"),
    ("GET", "/health"),
    ("GET", "/ready"),
)


@pytest.fixture(scope="module")
def ingest_schema(stack: StackInfo) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_url(f"{stack.ingest_url}/schema/openapi.json", timeout=10)


def test_the_document_is_served_and_truthful(stack: StackInfo) -> None:
    doc = httpx.get(f"{stack.ingest_url}/schema/openapi.json").json()
    assert doc["info"]["title"] == "checkout-pipeline ingest"
    assert {(m.upper(), p) for p, ops in doc["paths"].items() for m in ops} == set(OPERATIONS)
    webhook = doc["paths"]["/webhooks/{provider}"]["post"]
    body = webhook["requestBody"]["content"]
    assert body["application/json"]["schema"] == {"type": "string", "format": "binary"}
    assert set(webhook["responses"]) == {"202", "400", "401", "404", "408", "413", "415", "503"}
    checkout = doc["paths"]["/checkouts"]["post"]
    assert {"202", "400", "401", "415", "503"} <= set(checkout["responses"])
    tx = doc["paths"]["/transactions/{provider}/{external_id}"]["get"]
    assert {"200", "401", "404", "503"} <= set(tx["responses"])
    assert checkout["security"] == tx["security"] == [{"apiToken": []}]
    assert doc["components"]["securitySchemes"]["apiToken"]["scheme"] == "bearer"
    assert "security" not in webhook
    assert doc["components"]["schemas"]["ErrorBody"]["required"] == ["detail"]


@pytest.mark.parametrize(("method", "path"), OPERATIONS)
def test_every_answer_is_documented(
    method: str, path: str, ingest_schema: schemathesis.BaseSchema, settings: Settings
) -> None:
    """Schemathesis's own strategies (valid and invalid data) for one operation, each case
    sent to the live ingest and checked."""
    operation = ingest_schema[path][method]
    cases = st.one_of(
        operation.as_strategy(generation_mode=GenerationMode.POSITIVE),
        operation.as_strategy(generation_mode=GenerationMode.NEGATIVE),
    )
    session = requests.Session()
    if path.startswith(MERCHANT_PATHS):  # past the token check, to the validation behind it
        session.headers["Authorization"] = f"Bearer {api_token(settings)}"

    @sized(ci=40, full=700)
    @given(case=cases)
    def run(case: Case) -> None:
        check(case, session)

    run()


def check(case: Case, session: requests.Session) -> None:
    response = case.call(session=session, timeout=15)
    TALLY.case()
    status = response.status_code
    label = f"{case.method} {case.formatted_path[:120]} -> {status}"
    if status >= 500 and status != 503:
        TALLY.server_errors.append(f"{current_test()}: {label}: {response.text[:200]}")
    assert status < 500 or status == 503, f"{label}: {response.text[:300]}"
    if status >= 400:
        content_type = response.headers.get("content-type", [""])[0]
        assert content_type.startswith("application/json"), f"{label}: {content_type}"
        detail = response.json().get("detail")
        assert isinstance(detail, str) and detail.strip(), f"{label}: {response.text[:300]}"
    case.validate_response(response, checks=CHECKS)
