"""Benchmark: what the size of the SHAP background buys and costs (``train.shap_background_rows``), in one run.

    python bench/explain_background.py [--sizes 5 10 20 50 100 200] [--reference 1000] [--seeds 5] [--rows 100]

Interventional Tree SHAP (what :class:`lifecycle.modeling.explain.Explainer` runs for tree models) averages the
single-reference SHAP values over the background rows, so its cost per explained row is proportional to the
background's size, and its result is a sample mean whose noise shrinks with the size. For each size this script
draws backgrounds from the train split the way train does (``lifecycle.modeling.pipeline.background_sample``, one
draw per seed ``base.seed + s``, s < ``--seeds``), explains the same ``--rows`` test rows, and reports, against a
reference background of ``--reference`` rows drawn with seed ``base.seed + --seeds`` (a seed no compared draw uses:
pandas' ``sample`` with one seed takes prefixes of one permutation, so a smaller draw with the reference's seed would
be a subset of it and look closer than it is):

- cost: the median in-process time of a one-row ``Explainer.explain`` and of a ``--rows``-row one (per row), and
  their ratio (what issue 18's ">= 10x per row for 100-row batches" asks of the HTTP calls, which add ~2 ms of
  fixed cost per call on loopback: bench/explain.py);
- fidelity: the mean absolute difference of the SHAP values from the reference's, relative to the reference's mean
  |SHAP| (over rows, features and outputs); the largest difference of a base value; the share of rows whose most
  important feature for the predicted class (largest |SHAP|) is the reference's.

One OpenMP thread (as the server runs). Model: ``models/model.joblib`` + ``models/model.json`` (``dvc repro``), data
``data/processed/{train,test}.parquet``. Results: ``bench/results/explain_background.json`` and docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def median_s(call, repeats: int) -> float:
    """Median wall seconds of ``repeats`` calls of ``call``."""
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=ROOT / "models" / "model.joblib")
    parser.add_argument("--data", type=Path, default=ROOT / "data" / "processed", help="train/test.parquet here")
    parser.add_argument("--sizes", type=int, nargs="+", default=[5, 10, 20, 50, 100, 200])
    parser.add_argument("--reference", type=int, default=1000, help="rows of the reference background")
    parser.add_argument("--seeds", type=int, default=5, help="background draws per size (seeds base.seed + s)")
    parser.add_argument("--rows", type=int, default=100, help="test rows explained (and the batch size timed)")
    parser.add_argument("--repeats", type=int, default=30, help="one-row calls timed per size (batches: a sixth)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "explain_background.json")
    args = parser.parse_args()

    import pandas as pd
    from threadpoolctl import threadpool_limits

    from lifecycle.artifact import ModelMetadata, load_model
    from lifecycle.modeling.explain import Explainer, background_frame
    from lifecycle.modeling.pipeline import background_sample

    threadpool_limits(1)
    meta = ModelMetadata.read(args.model.with_name("model.json"))
    schema = meta.training_schema
    pipeline = load_model(args.model, meta, source=args.model.with_name("model.json"))
    train = pd.read_parquet(args.data / "train.parquet")
    test = pd.read_parquet(args.data / "test.parquet")
    X = test[schema.features].head(args.rows).reset_index(drop=True)
    seed = meta.model.seed

    def explainer_of(size: int, s: int) -> Explainer:
        return Explainer(pipeline, background_frame(background_sample(train, schema, size, seed + s), schema), schema)

    started = time.perf_counter()
    reference = explainer_of(args.reference, args.seeds).explain(X)
    print(f"reference: {args.reference} background rows, {args.rows} rows in {time.perf_counter() - started:.1f} s",
          flush=True)  # fmt: skip
    if reference.proba is not None:  # the predicted class's column; regression has one output
        predicted = [reference.outputs.index(label) for label in reference.y_pred.tolist()]
    else:
        predicted = [0] * len(X)
    ref_top = np.abs(reference.values[np.arange(len(X)), :, predicted]).argmax(axis=1)
    scale = float(np.abs(reference.values).mean())
    one = X.head(1)
    results = []
    for size in args.sizes:
        errors, base_errors, agreements, explainers = [], [], [], []
        for s in range(args.seeds):
            explainers.append(explainer_of(size, s))
            explanation = explainers[-1].explain(X)
            errors.append(float(np.abs(explanation.values - reference.values).mean()) / scale)
            base_errors.append(float(np.abs(explanation.base_values - reference.base_values).max()))
            top = np.abs(explanation.values[np.arange(len(X)), :, predicted]).argmax(axis=1)
            agreements.append(float((top == ref_top).mean()))
        explainer = explainers[0]
        explainer.explain(one)  # warm-up
        one_ms = median_s(lambda e=explainer: e.explain(one), args.repeats) * 1e3
        batch_ms = median_s(lambda e=explainer: e.explain(X), max(3, args.repeats // 6)) * 1e3 / len(X)
        row = {
            "background_rows": size,
            "one_row_ms": one_ms,
            "batch_ms_per_row": batch_ms,
            "batch_speedup_per_row": one_ms / batch_ms,
            "relative_shap_error": statistics.mean(errors),
            "relative_shap_error_worst_seed": max(errors),
            "base_value_error": statistics.mean(base_errors),
            "top_feature_agreement": statistics.mean(agreements),
        }
        results.append(row)
        print(
            f"background {size:>5}: one row {one_ms:6.2f} ms, batch {batch_ms:6.3f} ms/row ({one_ms / batch_ms:5.2f}x); "
            f"|SHAP - reference| {row['relative_shap_error']:.3f} of mean |SHAP| (worst seed "
            f"{row['relative_shap_error_worst_seed']:.3f}), base value off by {row['base_value_error']:.4f}, top "
            f"feature as the reference's in {row['top_feature_agreement']:.0%} of rows",
            flush=True,
        )
    out = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "loadavg": os.getloadavg()},
        "model": {"family": meta.model.family, "sha256": meta.version, "output_space": reference.output_space},
        "reference_background_rows": args.reference,
        "reference_seed": seed + args.seeds,
        "explained_rows": len(X),
        "seeds": args.seeds,
        "mean_abs_shap_of_reference": scale,
        "sizes": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2, sort_keys=True) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
