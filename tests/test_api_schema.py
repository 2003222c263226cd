"""schemathesis (v4) against the live /openapi.json with a valid key: no 5xx, and every answer —
status, content type, headers, body — is one the OpenAPI description documents.

Uses schemathesis' Python API (one Hypothesis run per operation, positive then negative data)
rather than `schemathesis.pytest.from_fixture`, which the pytest in use does not support.
"""

from __future__ import annotations

import time

import pytest
import schemathesis
from api_server import SCOPES, copy_home, running
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
EXAMPLES = {GenerationMode.POSITIVE: 12, GenerationMode.NEGATIVE: 6}


@pytest.fixture(scope="module")
def api(pipeline_run, tmp_path_factory):
    home = copy_home(pipeline_run["home"], tmp_path_factory.mktemp("schema-home"))
    with running(home) as srv:
        key = srv.service.keys.create("schemathesis", list(SCOPES), rate_per_second=1e6, burst=1_000_000)[1]
        yield srv, key


def test_api_conforms_to_its_openapi_description(api):
    srv, key = api
    schema = schemathesis.openapi.from_url(srv.url + "/openapi.json")
    headers = {"Authorization": f"Bearer {key}"}
    failures: list[str] = []
    calls = {"n": 0}
    t0 = time.monotonic()
    operations = [r.ok() for r in schema.get_all_operations()]
    assert len(operations) >= 14
    for op in operations:
        for mode, n in EXAMPLES.items():

            @given(case=op.as_strategy(generation_mode=mode))
            @settings(
                max_examples=n,
                deadline=None,
                derandomize=True,
                database=None,
                suppress_health_check=list(HealthCheck),
                phases=[Phase.explicit, Phase.generate],
            )
            def run(case):
                calls["n"] += 1
                case.call_and_validate(headers=headers, checks=CHECKS)

            try:
                run()
            except Unsatisfiable:  # no negative data for an operation without parameters (/healthz)
                assert mode is GenerationMode.NEGATIVE
            except Exception as exc:  # noqa: BLE001 — collect every operation's failure, then report
                failures.append(f"{op.label} [{mode.value}]: {str(exc)[:1500]}")
    assert not failures, "\n\n".join(failures)
    assert calls["n"] > 100 and time.monotonic() - t0 < 60
