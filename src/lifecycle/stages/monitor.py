"""Stage ``monitor``: drift of the scored batch against the training reference, feedback metrics, retrain decision.

    python -m lifecycle.stages.monitor --scored data/scored/predictions.parquet --reference TRAIN --schema SCHEMA \
        --model MODEL --meta models/model.json --test-metrics metrics/evaluate/metrics.json \
        --feedback data/feedback --demo-feedback data/demo/feedback --metrics metrics/monitor.json \
        --report reports/drift.html [--details reports/drift.json] [--prediction-log PATH]

The statistics, the decision and the page are lifecycle.monitoring's (docs/monitoring.md). The model is loaded only
after its sha256 matched ``--meta``; it predicts the reference rows for prediction drift. On ``retrain: true`` a
message goes to ``notify.webhook_url``; with ``monitor.fail_on_drift: true`` the stage then exits 1 (after writing
both outputs). Under DVC, a feedback file of yours that git and DVC do not track is warned about, and an experiment
that lacks one the workspace has stops naming it (lifecycle.data.tracking). dvc.yaml keeps the last good outputs
(``persist``) when the stage fails.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from lifecycle import cli
from lifecycle.artifact import load_model, predict
from lifecycle.config import load_params
from lifecycle.data.readers import read_parquet
from lifecycle.data.tracking import check_inputs
from lifecycle.errors import GateError
from lifecycle.io import read_json, write_json, write_text
from lifecycle.monitoring.analysis import analyse, headline, reference_sample
from lifecycle.monitoring.feedback import read_feedback
from lifecycle.monitoring.report import render_report
from lifecycle.notify import notify
from lifecycle.predictions import PREDICTION, read_records
from lifecycle.schema import read_schema

log = logging.getLogger(__name__)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--scored", required=True, help="the scored batch (prediction records)")
    parser.add_argument("--reference", required=True, help="the training split")
    parser.add_argument("--schema", required=True)
    parser.add_argument("--model", required=True, help="predicts the reference rows for prediction drift")
    parser.add_argument("--meta", required=True, help="the model's metadata (model.json): its sha256 is checked")
    parser.add_argument("--test-metrics", required=True, help="evaluate's metrics.json (the feedback baseline)")
    parser.add_argument("--feedback", required=True, nargs="+", help="your labels: files or folders of id + label")
    parser.add_argument("--demo-feedback", nargs="*", default=[], help="the demo batch's labels (yours win over them)")
    parser.add_argument("--prediction-log", default=None, help="optional: the server's prediction log")
    parser.add_argument("--metrics", required=True, help="DVC metrics: retrain, drifted features, drift share, PSI")
    parser.add_argument("--report", required=True, help="the drift report (HTML)")
    parser.add_argument("--details", help="every statistic behind the metrics and the report (JSON)")
    args = parser.parse_args(argv)

    params = load_params(args.params)
    check_inputs(args.feedback, "feedback")  # yours; the demo's labels are a stage's output, always there
    cfg = params.monitor
    schema = read_schema(args.schema)
    scored = read_records(args.scored, what="scored batch")
    reference = reference_sample(
        read_parquet(args.reference, "training reference"), cfg.reference_rows, params.base.seed
    )
    model = load_model(args.model, args.meta)
    reference_pred = pd.Series(predict(model, reference[schema.features], schema.task)[0], name=PREDICTION)
    labels = read_feedback([*args.demo_feedback, *args.feedback], schema)  # a later file wins: yours
    test_metrics = read_json(args.test_metrics) if Path(args.test_metrics).exists() else {}
    log_records = None
    if args.prediction_log and Path(args.prediction_log).exists():
        log_records = read_records(args.prediction_log, what="prediction log")
        log.info("read %d logged predictions from %s", len(log_records), args.prediction_log)

    result, features = analyse(scored, reference, reference_pred, schema, cfg, labels, test_metrics, log_records)
    write_json(args.metrics, headline(result))
    if args.details:
        write_json(args.details, result)
    write_text(args.report, render_report(result, features, reference, scored, reference_pred, schema, cfg))
    log.info(
        "monitored %d batch rows against %d reference rows: %d drifted feature(s) %s; retrain=%s -> %s, %s",
        len(scored), len(reference), result["n_drifted"], result["drifted_features"], result["retrain"],
        args.metrics, args.report,
    )  # fmt: skip
    if result["retrain"]:
        for reason in result["reasons"]:
            log.warning("retrain: %s", reason)
        notify(params.notify, "Drift detected: retraining recommended", result["reasons"], status="warning")
        if cfg.fail_on_drift:
            raise GateError(
                f"{args.scored}: drift against {args.reference}: " + "; ".join(result["reasons"]) + " "
                "(monitor.fail_on_drift is true; see the report " + args.report + ")"
            )


if __name__ == "__main__":
    cli.run(main)
