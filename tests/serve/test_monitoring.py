"""deploy/monitoring/ checked offline: the alerting rules and the Grafana dashboard follow their (strict) schemas,
every PromQL expression has balanced brackets, and every metric and label it selects is one a started server's
``GET /metrics`` exposes. The checker itself is tested on expressions it must refuse."""

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parents[2]
MONITORING = ROOT / "deploy" / "monitoring"
SCHEMAS = ROOT / "deploy" / "schemas"
KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "bool", "offset"}
SUFFIXES = {"counter": ("_total", "_created"), "histogram": ("_bucket", "_count", "_sum", "_created"), "gauge": ()}


def rules() -> dict:
    return yaml.safe_load((MONITORING / "alerts.yaml").read_text())


def dashboard() -> dict:
    return json.loads((MONITORING / "grafana-dashboard.json").read_text())


def expressions() -> list[tuple[str, str]]:
    """(where, PromQL) of every alert and every dashboard target."""
    out = [(f"alert {r['alert']}", r["expr"]) for g in rules()["groups"] for r in g["rules"]]
    out += [(f"panel {p['title']!r} {t['refId']}", t["expr"]) for p in dashboard()["panels"] for t in p["targets"]]
    return out


def selectors(expr: str) -> list[tuple[str, set[str]]]:
    """The metric names an expression selects, each with the label names its matchers use.

    Enough of PromQL for this check: string literals, range/offset brackets and grouping clauses (``by (...)``,
    ``on (...)``) are removed; a name followed by ``(`` is a function or aggregation; keywords are skipped.
    Raises ValueError for unbalanced brackets or quotes.
    """
    stack = []
    for ch in re.sub(r'"(?:[^"\\]|\\.)*"', "", expr):
        if ch in "([{":
            stack.append(ch)
        elif ch in ")]}":
            if not stack or "([{"[")]}".index(ch)] != stack.pop():
                raise ValueError(f"unbalanced {ch!r} in {expr!r}")
        elif ch == '"':
            raise ValueError(f"unterminated string in {expr!r}")
    if stack:
        raise ValueError(f"unclosed {stack[-1]!r} in {expr!r}")
    text = re.sub(r"\[[^\]]*\]", "", expr)  # ranges and subqueries' steps
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", text)
    found = []
    for match in re.finditer(
        r"(?<![\w:$])([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(\{(?:[^}\"]|\"(?:[^\"\\]|\\.)*\")*\})?(\s*\()?", text
    ):
        name, matchers, call = match.groups()
        if call or name in KEYWORDS:
            continue
        labels = set(re.findall(r"([a-zA-Z_]\w*)\s*(?:=~|!~|!=|=)", re.sub(r'"(?:[^"\\]|\\.)*"', '""', matchers or "")))
        found.append((name, labels))
    return found


@pytest.fixture(scope="module")
def exposed(make_module_client) -> dict[str, set[str] | None]:
    """Every series name GET /metrics can expose -> its label names (None: no sample yet, labels unknown)."""
    text = make_module_client().get("/metrics").text
    names: dict[str, set[str] | None] = {}
    for family in text_string_to_metric_families(text):
        labels = set().union(*(set(s.labels) for s in family.samples)) - {"le"} if family.samples else None
        for suffix in ("", *SUFFIXES.get(family.type, ())):
            names[family.name + suffix] = labels
    return names


@pytest.fixture(scope="module")
def make_module_client(tmp_path_factory, champion, records):
    from fastapi.testclient import TestClient

    from lifecycle.serve.app import create_app
    from lifecycle.serve.settings import Settings

    client = TestClient(create_app(Settings(**champion.settings(prediction_log_dir=None))))
    client.__enter__()
    client.post("/predict", json={"records": records[:3]})  # one sample of the request and prediction metrics
    client.post("/predict", json={"records": [dict(records[0], charge_mode="turbo")]})
    yield lambda: client
    client.__exit__(None, None, None)


@pytest.mark.parametrize(
    ("name", "schema"), [("alerts.yaml", "prometheus-rules"), ("grafana-dashboard.json", "grafana-dashboard")]
)
def test_files_follow_their_schema(name, schema):
    doc = yaml.safe_load((MONITORING / name).read_text())
    validator = jsonschema.Draft7Validator(json.loads((SCHEMAS / f"{schema}.strict.schema.json").read_text()))
    assert [e.message for e in validator.iter_errors(doc)] == []


def test_every_expression_selects_metrics_the_server_exposes(exposed):
    problems = []
    for where, expr in expressions():
        try:
            found = selectors(expr)
        except ValueError as exc:
            problems.append(f"{where}: {exc}")
            continue
        if not found:
            problems.append(f"{where}: selects no metric")
        for name, labels in found:
            if name not in exposed:
                problems.append(f"{where}: {name} is not exposed by GET /metrics")
            elif exposed[name] is not None and not labels <= exposed[name]:
                problems.append(f"{where}: {name} has no label(s) {sorted(labels - exposed[name])}")
    assert problems == []


def test_alerts_cover_errors_latency_prediction_mix_and_model_version():
    by_metric = {name for _, expr in expressions() if _.startswith("alert") for name, _ in selectors(expr)}
    assert {"lifecycle_requests_total", "lifecycle_request_duration_seconds_bucket"} <= by_metric
    assert {"lifecycle_predictions_total", "lifecycle_training_class_share", "lifecycle_model_info"} <= by_metric
    alerts = {r["alert"]: r for g in rules()["groups"] for r in g["rules"]}
    for alert in alerts.values():
        assert alert["labels"]["severity"] in ("warning", "critical")
        assert alert["annotations"]["summary"]


def test_dashboard_layout_and_datasource():
    doc = dashboard()
    ids = [p["id"] for p in doc["panels"]]
    assert len(ids) == len(set(ids))
    assert [v["name"] for v in doc["templating"]["list"] if v["type"] == "datasource"] == ["datasource"]
    for p in doc["panels"]:
        assert p["gridPos"]["x"] + p["gridPos"]["w"] <= 24, p["title"]
        assert {t["datasource"]["uid"] for t in p["targets"]} == {"${datasource}"}


@pytest.mark.parametrize(
    ("expr", "problem"),
    [
        ("sum(rate(lifecycle_requests_totl[5m]))", "not exposed"),
        ('sum(rate(lifecycle_requests_total{stauts="500"}[5m]))', "no label(s) ['stauts']"),
        ("sum(rate(lifecycle_requests_total[5m])", "unclosed"),
        ("lifecycle_request_seconds_bucket", "not exposed"),  # the latency histogram's old name, without its unit
    ],
)
def test_the_checker_refuses_bad_expressions(exposed, expr, problem):
    messages = []
    try:
        for name, labels in selectors(expr):
            if name not in exposed:
                messages.append(f"{name} is not exposed")
            elif exposed[name] is not None and not labels <= exposed[name]:
                messages.append(f"no label(s) {sorted(labels - exposed[name])}")
    except ValueError as exc:
        messages.append(str(exc))
    assert any(problem in m for m in messages), messages


def test_selectors_parse_promql_forms():
    expr = 'sum by (le, route) (rate(a_bucket{route=~".*(x|y)", b!="}"}[5m])) / ignoring (label) group_left max(c)'
    assert selectors(expr) == [("a_bucket", {"route", "b"}), ("c", set())]
    assert selectors('absent(m{role="champion"}) and on () up > 1') == [("m", {"role"}), ("up", set())]
