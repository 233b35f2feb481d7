"""Stage ``train``: fit ``Pipeline(preprocess -> model)`` on the train split; write the model and its metadata.

    python -m lifecycle.stages.train --data TRAIN --schema SCHEMA --model MODEL.joblib --meta TRAIN.json \
        [--cv-results CV_RESULTS.json] [--cv-metrics CV.json]

The metadata (lifecycle.artifact.ModelMetadata) holds what is needed to trust and reproduce the model: its sha256,
the hash of the data it was fitted on, the params, the package versions, the schema and the training metrics.
Nothing volatile (no time, host, absolute path or git commit), so the same inputs give the same bytes.

With ``train.search`` = random | grid, the hyperparameters of ``train.<model>`` are first tuned by cross-validation
(lifecycle.modeling.search); the best ones are fitted and recorded in the metadata (``model.hyperparameters`` and
``model.search``), every candidate's fold scores in ``--cv-results``.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence

from lifecycle import cli
from lifecycle.artifact import save_model
from lifecycle.config import load_params
from lifecycle.data.readers import read_parquet
from lifecycle.io import write_json
from lifecycle.modeling.pipeline import fit_with_search, model_metadata
from lifecycle.modeling.search import headline
from lifecycle.schema import read_schema

log = logging.getLogger(__name__)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--data", required=True)
    parser.add_argument("--schema", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--meta", required=True)
    parser.add_argument("--cv-results", help="JSON of the search: best params, every candidate's fold scores")
    parser.add_argument("--cv-metrics", help="DVC metrics of the search: the best mean CV score, its std, candidates")
    args = parser.parse_args(argv)

    params = load_params(args.params)
    schema = read_schema(args.schema)
    df = read_parquet(args.data, "train split")
    pipeline, train_metrics, search = fit_with_search(df, schema, params)
    save_model(pipeline, args.model)
    model_metadata(args.model, args.data, df, schema, params, train_metrics, search).write(args.meta)
    if args.cv_results:
        write_json(args.cv_results, search | {"candidates": search.get("candidates", [])})
    if args.cv_metrics:
        write_json(args.cv_metrics, headline(search))
    log.info("wrote %s and %s; train metrics %s", args.model, args.meta, train_metrics)


if __name__ == "__main__":
    cli.run(main)
