"""Stage ``evaluate``: the model's metrics on the test split, plot data and PNG pictures, logged with dvclive.

    python -m lifecycle.stages.evaluate --model MODEL --meta TRAIN.json --data TEST --schema SCHEMA \
        --out metrics/evaluate

The model is loaded only after its sha256 matched its metadata (lifecycle.artifact.load_model); what is computed
is lifecycle.modeling.evaluation's, the global SHAP view against the background the metadata carries. Writes
``<out>/metrics.json``, ``<out>/plots/custom/*.json`` (one per plot of lifecycle.modeling.evaluation.PLOTS, ``[]``
for the other task's) and ``<out>/plots/images/*.png`` (dvclive layout; dvc.yaml declares the plots at its top
level, as PLOTS says, because dvclive runs with ``dvcyaml=False``).
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from typing import Any

from lifecycle import cli
from lifecycle.artifact import ModelMetadata, load_model
from lifecycle.config import load_params
from lifecycle.data.readers import read_parquet
from lifecycle.modeling.evaluation import Evaluation, evaluate
from lifecycle.modeling.explain import background_frame
from lifecycle.schema import read_schema

log = logging.getLogger(__name__)


def log_to_live(result: Evaluation, live: Any) -> None:
    """Log ``result`` to the dvclive ``live`` object: plots, then metrics, then the pictures."""
    for plot in result.plots:
        spec = plot.spec
        live.log_plot(plot.name, plot.rows, x=spec.x, y=spec.y, template=spec.template, title=spec.title)
    for name, value in result.metrics.items():
        live.log_metric(name, value, plot=False)
    for name, figure in result.figures.items():
        live.log_image(name, figure)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--model", required=True)
    parser.add_argument("--meta", required=True, help="the model's metadata (train.json): its sha256 is checked")
    parser.add_argument("--data", required=True)
    parser.add_argument("--schema", required=True)
    parser.add_argument("--out", required=True, help="dvclive directory")
    args = parser.parse_args(argv)

    from dvclive import Live

    params = load_params(args.params)
    schema = read_schema(args.schema)
    meta = ModelMetadata.read(args.meta)
    model = load_model(args.model, meta, source=args.meta)
    background = background_frame(meta.explainer.background if meta.explainer else [], schema)
    df = read_parquet(args.data, "test split")
    result = evaluate(model, df, schema, params.evaluate, params.base.seed, background)
    with Live(dir=args.out, dvcyaml=False, save_dvc_exp=False, report=None) as live:
        log_to_live(result, live)
    log.info("test metrics on %d rows: %s", len(df), ", ".join(f"{k}={v}" for k, v in result.metrics.items()))


if __name__ == "__main__":
    cli.run(main)
