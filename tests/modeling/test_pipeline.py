"""lifecycle.modeling.pipeline: the fitted Pipeline(preprocess -> model), its train metrics and its metadata."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import yaml

from lifecycle.artifact import ModelMetadata, load_model, save_model
from lifecycle.config import Params, parse_params
from lifecycle.data.telemetry import generate
from lifecycle.errors import DataError
from lifecycle.io import write_table
from lifecycle.modeling.metrics import compute_metrics
from lifecycle.modeling.pipeline import fit, fit_with_search, model_metadata
from lifecycle.schema import infer_schema

ROOT = Path(__file__).resolve().parents[2]
RAW = yaml.safe_load((ROOT / "params.yaml").read_text())
SMALL_SPACE = {
    "hist_gradient_boosting": {"learning_rate": [0.05, 0.2], "max_leaf_nodes": [7, 15]},
    "random_forest": {"max_depth": [None, 6]},
    "logistic_regression": {"C": [0.1, 1.0]},
    "ridge": {"alpha": [0.1, 1.0]},
}


def make_params(**train: object) -> Params:
    raw = copy.deepcopy(RAW)
    raw["train"]["hist_gradient_boosting"]["max_iter"] = 15
    raw["train"]["threads"] = 1  # fit_with_search pins train.threads; 2 spinning threads on a busy 2-core machine
    raw["train"].update(train)
    return parse_params(raw)


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def data() -> tuple:
    df = generate(1200, "v1", 7, 0.0, 0.0, 0.0).drop_duplicates()
    schema = infer_schema(df, target="fault", task="classification")
    return df, schema


def test_fit_keeps_its_signature(data) -> None:
    df, schema = data
    pipeline, metrics = fit(df, schema, make_params(search="grid", cv_folds=2, search_space=SMALL_SPACE))
    assert metrics["accuracy"] >= 0.98  # on its own training rows it reaches 0.9967 (majority class: 0.583)
    assert pipeline.named_steps["model"].get_params()["learning_rate"] in (0.05, 0.2)


def test_train_metrics_equal_those_of_sklearns_own_predict(data) -> None:
    """One predict_proba pass gives the labels scikit-learn's predict gives, so the metrics are the same."""
    df, schema = data
    pipeline, metrics, search = fit_with_search(df, schema, make_params())
    X, y = df[schema.features], df[schema.target]
    assert search == {"method": "none", "best_params": {}}
    assert metrics == compute_metrics(
        "classification", y, pipeline.predict(X), pipeline.predict_proba(X), schema.classes
    )


def test_single_class_is_refused(data) -> None:
    df, schema = data
    with pytest.raises(DataError, match=r"single class of 'fault'"):
        fit(df[df["fault"] == "none"], schema, make_params())


def test_missing_target_is_refused(data) -> None:
    df, schema = data
    with pytest.raises(DataError, match=r"no target column 'fault'; rerun ingest and split"):
        fit(df.drop(columns="fault"), schema, make_params())


def test_metadata_describes_the_saved_model_and_loads_it(data, tmp_path: Path) -> None:
    df, schema = data
    params = make_params()
    pipeline, metrics, search = fit_with_search(df, schema, params)
    model_path, data_path = tmp_path / "model.joblib", tmp_path / "train.parquet"
    save_model(pipeline, model_path)
    write_table(df, data_path)
    meta = model_metadata(model_path, data_path, df, schema, params, metrics, search)
    assert meta.model.file == "model.joblib" and meta.model.bytes == model_path.stat().st_size
    assert meta.model.hyperparameters["max_iter"] == 15
    assert meta.data.rows == len(df) and sum(meta.data.target_distribution.values()) == len(df)
    assert meta.metrics == {"train": metrics}
    assert meta.training_schema == schema
    meta.write(tmp_path / "train.json")
    assert ModelMetadata.read(tmp_path / "train.json") == meta
    loaded = load_model(model_path, tmp_path / "train.json")
    X = df[schema.features]
    np.testing.assert_array_equal(loaded.predict_proba(X), pipeline.predict_proba(X))
