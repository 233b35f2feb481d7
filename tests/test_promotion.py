"""The promotion gate: thresholds, the comparison with the champion, the decision file and the model card."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from lifecycle.config import Promote
from lifecycle.errors import DataError, ParamsError
from lifecycle.io import sha256_file
from lifecycle.reporting.model_card import lineage, render
from lifecycle.stages import promote
from lifecycle.stages.promote import decide

ROOT = Path(__file__).resolve().parents[2]
SHA = "a" * 64
METRICS = {"accuracy": 0.9, "balanced_accuracy": 0.85, "f1_macro": 0.86, "roc_auc": 0.98, "log_loss": 0.3}
META = {
    "model": {"sha256": SHA, "family": "hist_gradient_boosting", "task": "classification", "hyperparameters": {}},
    "data": {"file": "train.parquet", "rows": 3200, "sha256": "d" * 64, "target_distribution": {"none": 2000}},
    "packages": {"scikit-learn": "1.9.1"},
    "schema": {"target": "fault", "task": "classification", "columns": [{"name": "x", "role": "numeric"}]},
    "metrics": {"train": {"accuracy": 0.99}},
}
NO_CHAMPION = {"artifact": "model", "metrics": {}, "model_sha256": None, "task": None, "version": None}


def gate(**changes: Any) -> Promote:
    base = {"min": {"accuracy": 0.85, "f1_macro": 0.75}, "max": {"log_loss": 0.5}, "min_improvement": {"accuracy": 0.0}}
    return Promote(**(base | {"strict": False} | changes))


def champion(accuracy: float, sha: str = "b" * 64, version: str = "v1.0.0") -> dict[str, Any]:
    return {"artifact": "model", "metrics": METRICS | {"accuracy": accuracy}, "model_sha256": sha, "task": "classification", "version": version}  # fmt: skip


# --------------------------------------------------------------------------------------------- decisions
def test_better_model_is_promoted_over_the_champion() -> None:
    decision = decide(gate(), METRICS, META, champion(0.88))
    assert decision["decision"] == "promote"
    assert decision["reasons"] == []
    assert decision["champion"] == {
        "artifact": "model",
        "version": "v1.0.0",
        "model_sha256": "b" * 64,
        "metrics": dict(sorted((METRICS | {"accuracy": 0.88}).items())),
    }
    improvement = next(c for c in decision["criteria"] if c["kind"] == "improvement")
    assert improvement == {
        "metric": "accuracy", "kind": "improvement", "observed": 0.9, "threshold": 0.0, "champion": 0.88,
        "passed": True, "message": improvement["message"],
    }  # fmt: skip
    assert "beats champion v1.0.0 (0.88)" in improvement["message"]
    assert all(c["passed"] for c in decision["criteria"])


def test_worse_model_is_rejected_with_the_reason() -> None:
    decision = decide(gate(), METRICS, META, champion(0.93))
    assert decision["decision"] == "reject"
    assert decision["reasons"] == [
        "accuracy 0.9 does not beat champion v1.0.0 (0.93) by the required 0.0 (higher is better; gain -0.03)"
    ]
    failed = [c for c in decision["criteria"] if not c["passed"]]
    assert [(c["metric"], c["kind"], c["observed"], c["champion"]) for c in failed] == [
        ("accuracy", "improvement", 0.9, 0.93)
    ]


def test_threshold_failures_name_metric_observed_and_bound() -> None:
    decision = decide(gate(min={"accuracy": 0.95}, max={"log_loss": 0.25}), METRICS, META, NO_CHAMPION)
    assert decision["decision"] == "reject"
    assert decision["reasons"] == ["accuracy 0.9 < min 0.95", "log_loss 0.3 > max 0.25"]
    assert decision["champion"] is None


def test_loss_improvement_goes_down_and_a_margin_is_required() -> None:
    better = decide(
        gate(min_improvement={"log_loss": 0.05}), METRICS, META, champion(0.9) | {"metrics": {"log_loss": 0.36}}
    )
    worse = decide(
        gate(min_improvement={"log_loss": 0.05}), METRICS, META, champion(0.9) | {"metrics": {"log_loss": 0.33}}
    )
    assert better["decision"] == "promote"
    assert worse["decision"] == "reject"
    assert "lower is better" in worse["reasons"][0]


def test_the_champion_itself_passes_the_improvement_rule() -> None:
    decision = decide(gate(min_improvement={"accuracy": 0.01}), METRICS, META, champion(0.9, sha=SHA))
    assert decision["decision"] == "promote"
    assert "is the champion v1.0.0 itself" in decision["criteria"][-1]["message"]


def test_without_champion_improvement_passes_and_says_so() -> None:
    decision = decide(gate(), METRICS, META, NO_CHAMPION)
    assert decision["decision"] == "promote"
    assert "no champion yet" in decision["criteria"][-1]["message"]


def test_metric_missing_from_metrics_file_is_an_error_naming_it() -> None:
    metrics = {k: v for k, v in METRICS.items() if k != "f1_macro"}
    with pytest.raises(
        DataError, match=r"metrics\.json: metric\(s\) f1_macro named in promote\.min\.f1_macro are missing"
    ):
        decide(gate(), metrics, META, NO_CHAMPION, metrics_source="metrics.json")


def test_metric_missing_from_the_champion_is_an_error_naming_it() -> None:
    with pytest.raises(DataError, match=r"champion v1\.0\.0: metric roc_auc .* missing"):
        decide(gate(min_improvement={"roc_auc": 0.0}), METRICS, META, champion(0.9) | {"metrics": {"accuracy": 0.9}})


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"min": {"accurcy": 0.8}}, r"promote\.min\.accurcy: unknown metric; did you mean 'accuracy'\?"),
        ({"min": {"log_loss": 0.5}}, r"promote\.min\.log_loss: log_loss is a loss .* promote\.max"),
        ({"max": {"accuracy": 0.5}}, r"promote\.max\.accuracy: accuracy is a score .* promote\.min"),
        ({"min": {"accuracy": "high"}}, r"promote\.min\.accuracy: expected a number, got 'high'"),
    ],
)
def test_bad_thresholds_are_params_errors(changes: dict, message: str) -> None:
    with pytest.raises(ParamsError, match=message):
        decide(gate(**changes), METRICS, META, NO_CHAMPION)


def test_regression_thresholds_use_regression_metrics() -> None:
    meta = META | {"model": META["model"] | {"task": "regression"}}
    metrics = {"rmse": 0.7, "mae": 0.55, "r2": 0.3}
    ok = decide(Promote(min={"r2": 0.25}, max={"rmse": 0.8, "mae": 0.6}, min_improvement={"rmse": 0.0}, strict=False),
                metrics, meta, NO_CHAMPION)  # fmt: skip
    assert ok["decision"] == "promote"
    with pytest.raises(DataError, match=r"accuracy.*The task is regression: use rmse, mae or r2"):
        decide(gate(), metrics, meta, NO_CHAMPION)


def test_champion_of_another_task_cannot_be_compared() -> None:
    with pytest.raises(DataError, match="is a regression model but the candidate is classification"):
        decide(gate(), METRICS, META, champion(0.9) | {"task": "regression"})


# --------------------------------------------------------------------------------------------- model card
def test_lineage_is_the_cards_inputs_and_what_model_json_records() -> None:
    meta = META | {
        "data": {"file": "train.parquet", "rows": 10, "sha256": "d" * 64},
        "model": dict(META["model"], file="model.joblib", sha256="m" * 64),
        "onnx": {"file": "model.onnx", "sha256": "o" * 64},
        "contract": {"file": "data/contracts/telemetry.yaml"},
    }
    assert lineage(meta, {"models/model.json": "j" * 64, "metrics.json": "x" * 64}) == [
        ("metrics.json", "x" * 64, "input of this card"),
        ("models/model.json", "j" * 64, "input of this card"),
        ("training data (train.parquet, 10 rows)", "d" * 64, "model.json"),
        ("model (model.joblib)", "m" * 64, "model.json"),
        ("ONNX graph (model.onnx)", "o" * 64, "model.json"),
        ("data contract (data/contracts/telemetry.yaml)", "-", "model.json (in git)"),
    ]


def test_card_has_every_section_and_nothing_volatile() -> None:
    decision = decide(gate(), METRICS, META, champion(0.93))
    report = {
        "contract": "data/contracts/telemetry.yaml",
        "success": True,
        "failures": [],
        "checks": [{"rule": "state_of_charge_pct.range", "level": "row", "column": "state_of_charge_pct",
                    "success": False, "unexpected_count": 3}],
    }  # fmt: skip
    card = render(
        META, METRICS, {"rows_checked": 4000, "success": True}, decision,
        {"source": "telemetry", "data_version": "v1"}, {"metrics.json": "x" * 64},
        ["../metrics/evaluate/plots/images/roc.png"],
        validation_report=report, validation_link="validation.md",
    )  # fmt: skip
    for heading in ("## Intended use and limits", "## Promotion decision", "## Model", "## Data", "## Schema",
                    "## Metrics", "### Plots", "## Validation summary", "## Lineage"):  # fmt: skip
        assert heading in card
    assert "**Decision: REJECT** (compared with champion v1.0.0)." in card
    assert "![ROC, one vs rest](../metrics/evaluate/plots/images/roc.png)" in card
    assert "| scikit-learn | 1.9.1 |" in card
    assert "rejected: accuracy 0.9 does not beat champion v1.0.0" in card
    assert "Data contract `data/contracts/telemetry.yaml`: passed. Full report: [validation.md](validation.md)." in card
    assert "| state_of_charge_pct.range | row | state_of_charge_pct | FAIL | 3 |" in card


# --------------------------------------------------------------------------------------------- the stage
def stage_inputs(tmp_path: Path, metrics: dict, champ: dict, promote: dict | None = None) -> Path:
    tmp_path.mkdir(parents=True, exist_ok=True)
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["promote"].update(promote or {})
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    files = {"metrics.json": metrics, "model.json": META, "champion.json": champ, "validate.json": {"success": True}}
    for name, content in files.items():
        (tmp_path / name).write_text(json.dumps(content))
    (tmp_path / "plots" / "images").mkdir(parents=True)
    (tmp_path / "plots" / "images" / "roc.png").write_bytes(b"\x89PNG\r\n")
    return tmp_path


STAGE_ARGS = ["--metrics", "metrics.json", "--meta", "model.json", "--champion", "champion.json", "--validation",
              "validate.json", "--plots", "plots", "--out", "out/promotion.json", "--card",
              "reports/model_card.md"]  # fmt: skip


def promote_stage(cwd: Path) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "lifecycle.stages.promote", *STAGE_ARGS]
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, check=False)


def test_stage_writes_decision_and_card_deterministically(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(stage_inputs(tmp_path, METRICS, champion(0.88)))
    promote.main(STAGE_ARGS)
    decision_bytes = Path("out/promotion.json").read_bytes()
    card = Path("reports/model_card.md").read_text()
    assert json.loads(decision_bytes)["decision"] == "promote"
    assert "](../plots/images/roc.png)" in card
    assert str(tmp_path) not in card and str(tmp_path) not in decision_bytes.decode()
    promote.main(STAGE_ARGS)
    assert Path("out/promotion.json").read_bytes() == decision_bytes
    assert Path("reports/model_card.md").read_text() == card


def test_reject_is_not_a_failure_unless_strict(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.chdir(stage_inputs(tmp_path / "a", METRICS, champion(0.93)))
    promote.main(STAGE_ARGS)  # no exception: the decision file says reject
    assert "promotion rejected: accuracy 0.9 does not beat champion v1.0.0" in caplog.text
    assert json.loads(Path("out/promotion.json").read_text())["decision"] == "reject"

    strict = promote_stage(stage_inputs(tmp_path / "b", METRICS, champion(0.93), {"strict": True}))
    assert strict.returncode == 1
    assert "promotion rejected: accuracy 0.9 does not beat champion v1.0.0" in strict.stderr
    assert "promote.strict is true" in strict.stderr
    assert "Traceback" not in strict.stderr
    assert json.loads((tmp_path / "b/out/promotion.json").read_text())["decision"] == "reject"


def test_stage_missing_metric_exits_1_naming_it(tmp_path: Path) -> None:
    metrics = {k: v for k, v in METRICS.items() if k != "log_loss"}
    proc = promote_stage(stage_inputs(tmp_path, metrics, NO_CHAMPION))
    assert proc.returncode == 1
    assert (
        "metrics.json: metric(s) log_loss named in promote.max.log_loss are missing from the metrics file"
        in proc.stderr
    )
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "out/promotion.json").exists()


@pytest.mark.slow
def test_pipeline_writes_decision_and_card(built_repo: Path) -> None:
    decision = json.loads((built_repo / "models/promotion.json").read_text())
    assert decision["decision"] in {"promote", "reject"}
    metrics = json.loads((built_repo / "metrics/evaluate/metrics.json").read_text())
    assert decision["candidate"]["metrics"] == metrics
    card = (built_repo / "reports/model_card.md").read_text()
    assert "![Confusion matrix (test split)](../metrics/evaluate/plots/images/confusion_matrix.png)" in card
    meta = json.loads((built_repo / "models/model.json").read_text())
    assert f"| models/model.json | {sha256_file(built_repo / 'models/model.json')} | input of this card |" in card
    assert f"| {meta['data']['sha256']} | model.json |" in card  # the training data, as train recorded it
    assert "Full report: [validation.md](validation.md)." in card
