"""What the monitoring tests share: a small model fitted on v1 telemetry (its training rows are the reference), its
files as the pipeline writes them (model.joblib + model.json, train.parquet, schema.json, test metrics), and
scored batches and labels drawn from the simulator."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import joblib
import pandas as pd
from tests.conftest import small_params

from lifecycle.artifact import ModelMetadata, package_versions, predict
from lifecycle.batch import predict_chunk, validate_chunk
from lifecycle.data import telemetry as tel
from lifecycle.data.ingest import prepare
from lifecycle.io import sha256_file, write_json, write_table
from lifecycle.modeling.pipeline import fit
from lifecycle.monitoring import analysis
from lifecycle.monitoring.feedback import read_feedback
from lifecycle.predictions import PREDICTION
from lifecycle.schema import Schema

TEST_METRICS = {"accuracy": 0.89, "f1_macro": 0.85, "log_loss": 0.3}


def write_model(model: Any, directory: Path, schema: Schema, params: Any, rows: int) -> None:
    """``directory``/model.joblib and its metadata model.json (what train + export record; no ONNX section)."""
    path = directory / "model.joblib"
    joblib.dump(model, path)
    ModelMetadata.from_dict(
        {
            "model": {
                "file": path.name, "sha256": sha256_file(path), "bytes": path.stat().st_size,
                "family": params.train.model, "task": schema.task, "hyperparameters": {}, "seed": params.base.seed,
                "search": {"method": "none", "best_params": {}},
            },
            "data": {
                "file": "train.parquet", "sha256": sha256_file(directory / "train.parquet"), "rows": rows,
                "target_distribution": {},
            },
            "packages": package_versions(),
            "schema": schema.to_dict(),
            "metrics": {"train": {}},
        }
    ).write(directory / "model.json")  # fmt: skip


def fitted(directory: Path) -> dict[str, Any]:
    """A small model fitted on 3200 v1 rows, its files written to ``directory``."""
    params = small_params()
    reference, schema = prepare(tel.generate(3200, "v1", 42), params.ingest, "telemetry")
    model, _ = fit(reference, schema, params)
    write_table(reference, directory / "train.parquet")
    write_model(model, directory, schema, params, len(reference))
    write_json(directory / "schema.json", schema.to_dict())
    write_json(directory / "test_metrics.json", TEST_METRICS)
    ref_pred = pd.Series(predict(model, reference[schema.features], schema.task)[0], name=PREDICTION)
    return {
        "params": params, "schema": schema, "model": model, "reference": reference, "dir": directory,
        "ref_pred": ref_pred,
    }  # fmt: skip


def scored_batch(setup: dict[str, Any], version: str, seed: int, rows: int = 3000) -> pd.DataFrame:
    """What the score stage writes for a fresh telemetry batch (labels kept aside)."""
    raw = tel.generate(rows, version, seed, duplicate_rate=0.0)
    schema: Schema = setup["schema"]
    clean = validate_chunk(raw, schema).clean
    return predict_chunk(setup["model"], clean, schema, "v-test").reset_index(drop=True)


def labels_of(version: str, seed: int, rows: int = 3000) -> pd.DataFrame:
    """The simulator's labels of the batch ``scored_batch(..., version, seed, rows)`` scored."""
    return tel.generate(rows, version, seed, duplicate_rate=0.0)[["reading_id", tel.TARGET]]


def analyse(setup: dict[str, Any], scored: pd.DataFrame, labels: pd.DataFrame | None = None, **cfg: Any):
    """:func:`lifecycle.monitoring.analysis.analyse` of ``scored`` against the fitted reference, with
    ``params.monitor`` changed by ``cfg`` and no feedback unless ``labels``."""
    monitor_cfg = setup["params"].monitor.model_copy(update=cfg)
    if labels is None:
        labels = read_feedback(setup["dir"] / "no-feedback", setup["schema"])
    return analysis.analyse(
        scored, setup["reference"], setup["ref_pred"], setup["schema"], monitor_cfg, labels, TEST_METRICS
    )
