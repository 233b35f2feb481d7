"""The train stage shell: model, metadata and CV results written from argv's paths, byte for byte the same twice."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import yaml
from tests.helpers import SMALL_SPACE

from lifecycle.data.telemetry import generate
from lifecycle.schema import infer_schema
from lifecycle.stages import train as train_stage

ROOT = Path(__file__).resolve().parents[2]
RAW = yaml.safe_load((ROOT / "params.yaml").read_text())


pytestmark = pytest.mark.usefixtures("one_thread")


def test_stage_records_best_params_in_meta_and_cv_results(tmp_path: Path) -> None:
    df = generate(1200, "v1", 7, 0.0, 0.0, 0.0).drop_duplicates()
    schema = infer_schema(df, target="fault", task="classification")
    raw = copy.deepcopy(RAW)
    raw["train"] |= {"search": "grid", "cv_folds": 2, "search_space": SMALL_SPACE, "threads": 1}
    raw["train"]["hist_gradient_boosting"]["max_iter"] = 15
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw))
    df.to_parquet(tmp_path / "train.parquet")
    (tmp_path / "schema.json").write_text(json.dumps(schema.to_dict()))
    out = {name: tmp_path / name for name in ("model.joblib", "train.json", "cv.json", "cv_metrics.json")}
    argv = ["--params", str(tmp_path / "params.yaml"), "--data", str(tmp_path / "train.parquet")]
    argv += ["--schema", str(tmp_path / "schema.json"), "--model", str(out["model.joblib"])]
    argv += ["--meta", str(out["train.json"]), "--cv-results", str(out["cv.json"])]
    argv += ["--cv-metrics", str(out["cv_metrics.json"])]
    train_stage.main(argv)
    meta = json.loads(out["train.json"].read_text())
    cv = json.loads(out["cv.json"].read_text())
    assert meta["model"]["search"]["best_params"] == cv["best_params"]
    assert "candidates" not in meta["model"]["search"]
    for name, value in cv["best_params"].items():
        assert meta["model"]["hyperparameters"][name] == value
    assert len(cv["candidates"]) == 4
    best = cv["candidates"][0]
    metric = cv["metric"]  # the DVC metrics: numbers only, named after the metric
    assert json.loads(out["cv_metrics.json"].read_text()) == {metric: best["mean"], f"{metric}_std": best["std"],
                                                             "candidates": 4}  # fmt: skip
    assert "fit_time" not in out["cv.json"].read_text()  # nothing volatile
    bytes_before = out["cv.json"].read_bytes(), out["train.json"].read_bytes()
    train_stage.main(argv)
    assert (out["cv.json"].read_bytes(), out["train.json"].read_bytes()) == bytes_before
