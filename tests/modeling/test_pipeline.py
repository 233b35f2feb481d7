"""lifecycle.modeling.pipeline: the fitted Pipeline(preprocess -> model), its train metrics and its metadata."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import yaml
from tests.helpers import SMALL_SPACE

from lifecycle.artifact import ModelMetadata, load_model, save_model
from lifecycle.config import Params, parse_params
from lifecycle.data.telemetry import generate
from lifecycle.errors import DataError
from lifecycle.io import write_table
from lifecycle.modeling.metrics import compute_metrics
from lifecycle.modeling.pipeline import fit, fit_with_search, metrics_sample, model_metadata
from lifecycle.schema import infer_schema

ROOT = Path(__file__).resolve().parents[2]
RAW = yaml.safe_load((ROOT / "params.yaml").read_text())


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


@pytest.mark.parametrize("sample_rows", [300, 1000])
def test_train_metrics_come_from_a_seeded_sample_recorded_in_the_metadata(data, tmp_path: Path, sample_rows) -> None:
    """train.metrics_sample_rows bounds the rows predicted after the fit: the metrics are those of exactly the
    sampled rows (drawn with base.seed), and model.json says how many of how many rows, with which seed."""
    df, schema = data
    params = make_params(metrics_sample_rows=sample_rows)
    pipeline, metrics, search = fit_with_search(df, schema, params)
    rows = metrics_sample(len(df), sample_rows, params.base.seed)
    assert len(rows) == sample_rows == len(np.unique(rows)) and rows.max() < len(df)
    X, y = df[schema.features].iloc[rows], df[schema.target].iloc[rows]
    assert metrics == compute_metrics(
        "classification", y, pipeline.predict(X), pipeline.predict_proba(X), schema.classes
    )
    full = compute_metrics(
        "classification", df[schema.target], pipeline.predict(df[schema.features]), None, schema.classes
    )
    assert metrics["accuracy"] != full["accuracy"]  # not the whole split's: the sample is what was predicted
    save_model(pipeline, tmp_path / "model.joblib")
    write_table(df, tmp_path / "train.parquet")
    meta = model_metadata(tmp_path / "model.joblib", tmp_path / "train.parquet", df, schema, params, metrics, search)
    sample = {"rows": sample_rows, "sampled_from": len(df), "seed": params.base.seed}
    assert meta.to_dict()["metrics_sample"] == {"train": sample}
    assert fit_with_search(df, schema, params)[1] == metrics  # same seed, same rows, same numbers


@pytest.mark.parametrize(("n_rows", "sample_rows"), [(1200, 0), (1200, 1200), (1200, 5000), (1, 1)])
def test_a_sample_of_every_row_is_no_sample(n_rows: int, sample_rows: int) -> None:
    assert metrics_sample(n_rows, sample_rows, seed=1) is None


def test_seeds_draw_different_samples() -> None:
    a, b = metrics_sample(10_000, 50, seed=1), metrics_sample(10_000, 50, seed=2)
    assert not np.array_equal(a, b)
    np.testing.assert_array_equal(a, metrics_sample(10_000, 50, seed=1))
    assert np.all(np.diff(a) > 0)  # sorted, unique


def test_metadata_without_a_metrics_sample_still_reads(data, tmp_path: Path) -> None:
    """A train.json/model.json written before train.metrics_sample_rows existed (a registry version) still
    parses, and writes back without the key."""
    df, schema = data
    params = make_params(metrics_sample_rows=0)
    pipeline, metrics, search = fit_with_search(df, schema, params)
    save_model(pipeline, tmp_path / "model.joblib")
    write_table(df, tmp_path / "train.parquet")
    meta = model_metadata(tmp_path / "model.joblib", tmp_path / "train.parquet", df, schema, params, metrics, search)
    assert meta.to_dict()["metrics_sample"]["train"] == {"rows": len(df), "sampled_from": len(df), "seed": 42}
    old = {k: v for k, v in meta.to_dict().items() if k != "metrics_sample"}
    assert ModelMetadata.from_dict(old).to_dict() == old
