"""The evaluate stage shell: metrics, plot data and pictures in the dvclive layout, from a model loaded only after
its sha256 matched its metadata."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.conftest import small_params
from threadpoolctl import threadpool_limits

from lifecycle.artifact import ModelIntegrityError, save_model
from lifecycle.data.telemetry import generate
from lifecycle.io import write_json, write_table
from lifecycle.modeling.explain import ExplanationError
from lifecycle.modeling.metrics import CLASSIFICATION
from lifecycle.modeling.pipeline import fit, model_metadata
from lifecycle.schema import coerce_frame, infer_schema, read_schema
from lifecycle.stages import evaluate as stage

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small model with its train.json, the test split and the schema, in one directory."""
    d = tmp_path_factory.mktemp("evaluate")
    raw = generate(1600, "v1", 5, 0.0, 0.0, 0.0).drop_duplicates()
    schema = infer_schema(raw, target="fault", task="classification", id_columns=["reading_id", "vehicle_id"])
    df = coerce_frame(raw, schema)
    train, test = df.iloc[:1200], df.iloc[1200:]
    params = small_params(max_iter=15)
    with threadpool_limits(limits=1):
        pipeline, metrics = fit(train, schema, params)
    write_table(train, d / "train.parquet")
    write_table(test, d / "test.parquet")
    write_json(d / "schema.json", schema.to_dict())
    save_model(pipeline, d / "model.joblib")
    model_metadata(d / "model.joblib", d / "train.parquet", train, schema, params, metrics).write(d / "train.json")
    return d


def argv(d: Path, out: Path, meta: Path | None = None) -> list[str]:
    return [
        "--params", str(ROOT / "params.yaml"), "--model", str(d / "model.joblib"), "--meta", str(meta or d / "train.json"),
        "--data", str(d / "test.parquet"), "--schema", str(d / "schema.json"), "--out", str(out),
    ]  # fmt: skip


def test_writes_metrics_plots_and_pictures(trained: Path, tmp_path: Path) -> None:
    with threadpool_limits(limits=1):
        stage.main(argv(trained, tmp_path / "evaluate"))
    metrics = json.loads((tmp_path / "evaluate/metrics.json").read_text())
    assert set(metrics) == set(CLASSIFICATION)
    assert metrics["accuracy"] > 0.5
    plots = tmp_path / "evaluate/plots"
    for name in ("confusion_matrix", "roc", "precision_recall", "importance", "shap_importance"):
        assert json.loads((plots / f"custom/{name}.json").read_text())
    for name in ("predicted_vs_actual", "residuals"):  # declared in dvc.yaml for regression runs: empty here
        assert json.loads((plots / f"custom/{name}.json").read_text()) == []
    assert sorted(p.name for p in plots.iterdir()) == ["custom", "images"]
    shap_rows = json.loads((plots / "custom/shap_importance.json").read_text())
    features = read_schema(trained / "schema.json").features
    assert sorted(r["feature"] for r in shap_rows) == sorted(features)  # one bar per raw column, not per one-hot
    assert [r["mean_abs_shap"] for r in shap_rows] == sorted((r["mean_abs_shap"] for r in shap_rows), reverse=True)
    assert sorted(p.name for p in (plots / "images").iterdir()) == [
        "confusion_matrix.png", "importance.png", "precision_recall.png", "roc.png", "shap_importance.png",
    ]  # fmt: skip


def test_metadata_without_a_shap_background_says_retrain(trained: Path, tmp_path: Path) -> None:
    meta = json.loads((trained / "train.json").read_text())
    del meta["explainer"]  # a train.json written before explanations existed
    write_json(tmp_path / "old.json", meta)
    with pytest.raises(ExplanationError, match=r"no explainer background rows; retrain \(`dvc repro train`\)"):
        stage.main(argv(trained, tmp_path / "evaluate", tmp_path / "old.json"))


def test_model_that_does_not_match_its_metadata_is_refused(trained: Path, tmp_path: Path) -> None:
    meta = json.loads((trained / "train.json").read_text())
    meta["model"]["sha256"] = "0" * 64
    write_json(tmp_path / "other.json", meta)
    out = tmp_path / "evaluate"
    out.mkdir()
    (out / "metrics.json").write_text("previous good metrics")
    with pytest.raises(ModelIntegrityError, match=r"refusing to load .*model\.joblib.* does not match model\.sha256"):
        stage.main(argv(trained, out, tmp_path / "other.json"))
    assert (out / "metrics.json").read_text() == "previous good metrics"
