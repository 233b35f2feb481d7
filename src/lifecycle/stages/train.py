"""Stage ``train``: fit ``Pipeline(preprocess -> model)`` on the train split; write the model and its card data.

    python -m lifecycle.stages.train --data TRAIN --schema SCHEMA --model MODEL.joblib --meta MODEL.json

model.json holds what is needed to trust and reproduce the model: its sha256, the hash of the data it was
fitted on, the params, the package versions, the schema and the training metrics. Nothing volatile (no time,
host, absolute path or git commit), so the same inputs give the same bytes.
"""

from __future__ import annotations

import argparse
import logging
import platform
import time
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import joblib
import pandas as pd
from sklearn.pipeline import Pipeline

from lifecycle import cli
from lifecycle.errors import DataError
from lifecycle.estimators import NEEDS_SCALING, build_model, model_params
from lifecycle.features import build_preprocessor
from lifecycle.io import atomic_path, read_parquet, sha256_file, write_json
from lifecycle.metrics import score
from lifecycle.params import Params, load_params
from lifecycle.schema import Schema, read_schema

log = logging.getLogger(__name__)
PACKAGES = ("scikit-learn", "pandas", "numpy", "scipy", "joblib", "pyarrow")


def build_pipeline(schema: Schema, params: Params) -> Pipeline:
    """The one artifact: raw rows in, predictions out."""
    return Pipeline(
        [
            ("preprocess", build_preprocessor(schema, scale_numeric=params.train.model in NEEDS_SCALING)),
            ("model", build_model(params.train, schema.task, params.base.seed)),
        ]
    )


def fit(df: pd.DataFrame, schema: Schema, params: Params) -> tuple[Pipeline, dict[str, float]]:
    """Fit the pipeline on ``df``; return it with its metrics on the training rows."""
    if schema.target not in df.columns:
        raise DataError(f"train data has no target column {schema.target!r}; rerun ingest and split")
    X, y = df[schema.features], df[schema.target]
    if schema.task == "classification" and y.nunique() < 2:
        raise DataError(f"train data has a single class of {schema.target!r}; a classifier needs two or more")
    pipeline = build_pipeline(schema, params)
    log.info("fitting %s on %d rows x %d features", params.train.model, len(X), len(schema.features))
    started = time.perf_counter()
    pipeline.fit(X, y)
    log.info("fitted in %.2f s", time.perf_counter() - started)
    proba = pipeline.predict_proba(X) if schema.task == "classification" else None
    return pipeline, score(schema.task, y, pipeline.predict(X), proba, schema.classes)


def package_versions() -> dict[str, str]:
    versions = {name: metadata.version(name) for name in PACKAGES}
    versions["python"] = platform.python_version()
    return versions


def model_card_data(
    model_path: Path,
    data_path: Path,
    df: pd.DataFrame,
    schema: Schema,
    params: Params,
    train_metrics: dict[str, float],
) -> dict[str, Any]:
    """The content of model.json (deterministic: no timestamps, hosts, absolute paths or commits)."""
    return {
        "model": {
            "file": model_path.name,
            "sha256": sha256_file(model_path),
            "bytes": model_path.stat().st_size,
            "family": params.train.model,
            "task": schema.task,
            "hyperparameters": model_params(params.train),
            "seed": params.base.seed,
        },
        "data": {
            "file": data_path.name,
            "sha256": sha256_file(data_path),
            "rows": len(df),
            "target_distribution": (
                {str(k): int(v) for k, v in df[schema.target].value_counts().sort_index().items()}
                if schema.task == "classification"
                else {}
            ),
        },
        "packages": package_versions(),
        "schema": schema.to_dict(),
        "metrics": {"train": train_metrics},
    }


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--data", required=True)
    parser.add_argument("--schema", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--meta", required=True)
    args = parser.parse_args(argv)

    params = load_params(args.params)
    schema = read_schema(args.schema)
    df = read_parquet(args.data, "train split")
    pipeline, train_metrics = fit(df, schema, params)
    model_path = Path(args.model)
    with atomic_path(model_path) as tmp:
        joblib.dump(pipeline, tmp, compress=3)
    write_json(args.meta, model_card_data(model_path, Path(args.data), df, schema, params, train_metrics))
    log.info("wrote %s and %s; train metrics %s", args.model, args.meta, train_metrics)


if __name__ == "__main__":
    cli.run(main)
