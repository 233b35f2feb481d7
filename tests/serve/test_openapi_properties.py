"""Property-based API testing: schemathesis generates requests from /openapi.json for every route (valid bodies
from the generated record schema, and invalid ones), calls the app in-process (ASGI, lifespan run) and checks each
answer: never a 5xx, and every answer matches the schema its route declares for that status.

Bounded: a fixed number of examples per operation (``MAX_EXAMPLES``), derandomized so a run is repeatable, no
per-example deadline (the machine is shared). About 60 s on 2 busy cores; marked slow.
"""

from __future__ import annotations

import re

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error, response_schema_conformance

from lifecycle.serve.app import create_app
from lifecycle.serve.settings import Settings

pytestmark = pytest.mark.slow

MAX_EXAMPLES = 10


def served_model_case(case, state):
    """``case`` with the URL's ``{name}`` (and ``{version}``) set to what the server serves."""
    case.path_parameters["name"] = state.settings.model_name
    if "version" in case.path_parameters:
        case.path_parameters["version"] = state.champion.version
    return case


def test_every_route_answers_within_its_schema_and_never_5xx(champion):
    """Every operation of /openapi.json, each with its own bounded Hypothesis run (schemathesis's strategies; its
    pytest plugin is not used: it does not support this pytest yet)."""
    app = create_app(Settings(**champion.settings(prediction_log_dir=None, max_rows=20, max_body_bytes=64 * 1024)))
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 15
    failures = {}
    # First every operation as generated (random model names: mostly 404 on /v1 and /v2), then the operations with a
    # {name} again with the served model's name (and version), so the generated bodies reach V1/V2 validation.
    served = [(operation, None) for operation in operations]
    served += [(op, "served") for op in operations if "{name}" in op.path]
    for operation, variant in served:
        strategy = operation.as_strategy()
        if variant:
            strategy = strategy.map(lambda case: served_model_case(case, app.state.serving))

        @given(case=strategy)
        @settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
        def run(case):
            case.call_and_validate(checks=[not_a_server_error, response_schema_conformance])

        try:
            run()
        except Exception as exc:  # collect every operation's first failure, then report them together
            failures[f"{operation.label} ({variant or 'generated'})"] = f"{type(exc).__name__}: {str(exc)[:2000]}"
    assert failures == {}
    text = app.state.serving.metrics.render().decode()  # the generated requests reached the routes
    for status in ("200", "400", "404", "422"):
        assert f'status="{status}"' in text, (status, re.findall(r"lifecycle_requests_total\{.*", text))


def test_every_route_is_in_the_schema(champion):
    """The property test covers what /openapi.json lists: every API route must be there (docs pages aside)."""
    app = create_app(Settings(**champion.settings(prediction_log_dir=None)))
    paths = set(app.openapi()["paths"])
    routes = {r.path for r in app.state.serving.routes if getattr(r, "include_in_schema", False)}
    assert routes == paths
    assert {"/predict", "/v1/models", "/v2/models/{name}/versions/{version}/ready", "/metrics"} <= paths
