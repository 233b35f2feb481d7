"""Stage ``promote``: the decision file and the model card written deterministically; a reject fails only when
strict; a missing metric exits 1 naming it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from tests.test_promotion import META, METRICS, NO_CHAMPION, REGRESSION_META, REGRESSION_METRICS, champion

from lifecycle.io import sha256_file
from lifecycle.stages import promote

ROOT = Path(__file__).resolve().parents[2]


def stage_inputs(
    tmp_path: Path, metrics: dict, champ: dict, promote: dict | None = None, meta: dict = META, task: str | None = None
) -> Path:
    tmp_path.mkdir(parents=True, exist_ok=True)
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["promote"].update(promote or {})
    params["ingest"]["task"] = task or params["ingest"]["task"]
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    files = {"metrics.json": metrics, "model.json": meta, "champion.json": champ, "validate.json": {"success": True}}
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
        "metrics.json: metric(s) log_loss named in promote.classification.max.log_loss are missing from the "
        "metrics file" in proc.stderr
    )
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "out/promotion.json").exists()


def test_switching_the_task_switches_the_thresholds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # the repository's params.yaml with only ingest.task changed: the regression model meets promote.regression
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    gates = params["promote"]["regression"]
    monkeypatch.chdir(stage_inputs(tmp_path, REGRESSION_METRICS, NO_CHAMPION, meta=REGRESSION_META, task="regression"))
    promote.main(STAGE_ARGS)
    decision = json.loads(Path("out/promotion.json").read_text())
    assert decision["gates"] == "promote.regression"
    named = {c["metric"] for c in decision["criteria"]}
    assert named == {m for kind in ("min", "max", "min_improvement") for m in gates[kind]}
    assert named <= set(REGRESSION_METRICS)
    card = Path("reports/model_card.md").read_text()
    assert "Thresholds are `promote.regression.*` in params.yaml" in card


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


def test_stage_refuses_metadata_that_is_not_a_model_record(tmp_path: Path) -> None:
    cwd = stage_inputs(tmp_path, METRICS, NO_CHAMPION)
    (cwd / "model.json").write_text(json.dumps({k: v for k, v in META.items() if k != "data"}))
    proc = promote_stage(cwd)
    assert proc.returncode == 1
    assert "model.json: data: Field required" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "out/promotion.json").exists()
