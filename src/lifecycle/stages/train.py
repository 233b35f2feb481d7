"""Stage ``train``: fit ``Pipeline(preprocess -> model)`` on the train split; write the model and its card data.

    python -m lifecycle.stages.train --data TRAIN --schema SCHEMA --model MODEL.joblib --meta MODEL.json \
        [--cv-results CV_RESULTS.json]

model.json holds what is needed to trust and reproduce the model: its sha256, the hash of the data it was
fitted on, the params, the package versions, the schema and the training metrics. Nothing volatile (no time,
host, absolute path or git commit), so the same inputs give the same bytes.

With ``train.search`` = random | grid, the hyperparameters of ``train.<model>`` are first tuned by
cross-validation (lifecycle.modeling.search); the best ones are fitted and recorded in model.json (``model.hyperparameters``
and ``model.search``), every candidate's fold scores in ``--cv-results``.
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
from threadpoolctl import threadpool_limits

from lifecycle import cli
from lifecycle.config import Params, load_params
from lifecycle.data.readers import read_parquet
from lifecycle.errors import DataError
from lifecycle.io import atomic_path, sha256_file, write_json
from lifecycle.modeling.estimators import NEEDS_SCALING, build_model, model_params
from lifecycle.modeling.features import build_preprocessor
from lifecycle.modeling.metrics import score
from lifecycle.modeling.search import run_search
from lifecycle.schema import Schema, read_schema

log = logging.getLogger(__name__)
PACKAGES = ("scikit-learn", "pandas", "numpy", "scipy", "joblib", "pyarrow")


def build_pipeline(schema: Schema, params: Params, overrides: dict[str, object] | None = None) -> Pipeline:
    """The one artifact: raw rows in, predictions out (``overrides``: hyperparameters replacing train.<model>'s)."""
    return Pipeline(
        [
            ("preprocess", build_preprocessor(schema, scale_numeric=params.train.model in NEEDS_SCALING)),
            ("model", build_model(params.train, schema.task, params.base.seed, overrides)),
        ]
    )


def fit(df: pd.DataFrame, schema: Schema, params: Params) -> tuple[Pipeline, dict[str, float]]:
    """Fit the pipeline on ``df`` (after the search of ``train.search``); return it with its train metrics."""
    pipeline, train_metrics, _ = fit_with_search(df, schema, params)
    return pipeline, train_metrics


def fit_with_search(
    df: pd.DataFrame, schema: Schema, params: Params
) -> tuple[Pipeline, dict[str, float], dict[str, Any]]:
    """:func:`fit`, also returning the search summary (``{"method": "none", "best_params": {}}`` without one).

    Runs with exactly ``train.threads`` OpenMP threads: HistGradientBoosting's sums depend on the thread count,
    so pinning it (rather than using the machine's cores) keeps the model byte-identical on any machine."""
    with threadpool_limits(limits=params.train.threads, user_api="openmp"):
        return _fit_with_search(df, schema, params)


def _fit_with_search(
    df: pd.DataFrame, schema: Schema, params: Params
) -> tuple[Pipeline, dict[str, float], dict[str, Any]]:
    if schema.target not in df.columns:
        raise DataError(f"train data has no target column {schema.target!r}; rerun ingest and split")
    X, y = df[schema.features], df[schema.target]
    if schema.task == "classification" and y.nunique() < 2:
        raise DataError(f"train data has a single class of {schema.target!r}; a classifier needs two or more")
    with cli.heartbeat(f"{params.train.search} search of {params.train.model}", logger=log):
        search = run_search(build_pipeline(schema, params), X, y, params.train, schema.task, params.base.seed)
    pipeline = build_pipeline(schema, params, search["best_params"])
    log.info("fitting %s on %d rows x %d features", params.train.model, len(X), len(schema.features))
    started = time.perf_counter()
    with cli.heartbeat(f"fitting {params.train.model}", logger=log):
        pipeline.fit(X, y)
    log.info("fitted in %.2f s", time.perf_counter() - started)
    proba = pipeline.predict_proba(X) if schema.task == "classification" else None
    return pipeline, score(schema.task, y, pipeline.predict(X), proba, schema.classes), search


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
    search: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The content of model.json (deterministic: no timestamps, hosts, absolute paths or commits).

    ``search`` (from :func:`fit_with_search`): its best params are the fitted hyperparameters; its summary (without
    the per-candidate scores) is recorded under ``model.search``."""
    search = search or {"method": "none", "best_params": {}}
    return {
        "model": {
            "file": model_path.name,
            "sha256": sha256_file(model_path),
            "bytes": model_path.stat().st_size,
            "family": params.train.model,
            "task": schema.task,
            "hyperparameters": model_params(params.train) | search["best_params"],
            "seed": params.base.seed,
            "search": {k: v for k, v in search.items() if k != "candidates"},
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
    parser.add_argument("--cv-results", help="JSON of the search: best params, every candidate's fold scores")
    args = parser.parse_args(argv)

    params = load_params(args.params)
    schema = read_schema(args.schema)
    df = read_parquet(args.data, "train split")
    pipeline, train_metrics, search = fit_with_search(df, schema, params)
    model_path = Path(args.model)
    with atomic_path(model_path) as tmp:
        joblib.dump(pipeline, tmp, compress=3)
    write_json(args.meta, model_card_data(model_path, Path(args.data), df, schema, params, train_metrics, search))
    if args.cv_results:
        write_json(args.cv_results, search | {"candidates": search.get("candidates", [])})
    log.info("wrote %s and %s; train metrics %s", args.model, args.meta, train_metrics)


if __name__ == "__main__":
    cli.run(main)
