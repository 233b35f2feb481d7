"""Helpers of the batch-scoring tests (tests/test_batch.py, tests/stages/test_score.py, tests/test_score_prod.py):
a small fitted model saved as the pipeline saves it, and telemetry batches to score."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import joblib
import pandas as pd

from lifecycle.artifact import ModelMetadata, package_versions
from lifecycle.data import telemetry as tel
from lifecycle.data.ingest import prepare
from lifecycle.io import sha256_file, write_json
from lifecycle.modeling.pipeline import fit
from tests.conftest import small_params

ROOT = Path(__file__).resolve().parents[1]
CONTRACTS = str(ROOT / "data" / "contracts")


def train_small_model(d: Path) -> dict[str, Any]:
    """A small fitted pipeline on v1 telemetry in ``d``: model.joblib, its model.json (a valid
    lifecycle.artifact.ModelMetadata with the real sha256) and schema.json."""
    params = small_params()
    df, schema = prepare(tel.generate(3200, "v1", 42), params.ingest, "telemetry")
    model, _ = fit(df, schema, params)
    path = d / "model.joblib"
    joblib.dump(model, path, compress=3)
    record = ModelMetadata.from_dict(
        {
            "model": {
                "file": path.name,
                "sha256": sha256_file(path),
                "bytes": path.stat().st_size,
                "family": params.train.model,
                "task": schema.task,
                "hyperparameters": {},
                "seed": params.base.seed,
                "search": {"method": "none"},
            },
            "data": {"file": "train.parquet", "sha256": "0" * 64, "rows": len(df), "target_distribution": {}},
            "packages": package_versions(),
            "schema": schema.to_dict(),
            "metrics": {"train": {}},
        }
    )
    record.write(d / "model.json")
    write_json(d / "schema.json", schema.to_dict())
    return {"model": model, "schema": schema, "params": params, "dir": d, "record": record, "reference": df}


def batch(rows: int = 2500, version: str = "v2", seed: int = 11, **kw: Any) -> pd.DataFrame:
    """A batch without labels and without the simulator's duplicated rows (so reading_id is unique)."""
    return tel.generate(rows, version, seed, duplicate_rate=0.0, **kw).drop(columns=[tel.TARGET])
