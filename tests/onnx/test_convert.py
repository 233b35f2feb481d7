"""The ONNX engine: every model family converts and agrees with scikit-learn, on the telemetry preprocessing
(numeric columns with NaNs + one-hot categoricals) and on the wine-quality data (numeric only, integer classes);
missing and unknown categories encode as in scikit-learn; a pipeline that cannot convert or fails parity is
reported, not raised; the server's gate refuses anything unverified."""

from __future__ import annotations

import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer
from threadpoolctl import threadpool_limits

from lifecycle import onnx_engine
from lifecycle.config import HistGradientBoosting, LogisticRegression, RandomForest, Ridge
from lifecycle.data import telemetry
from lifecycle.errors import DataError
from lifecycle.io import sha256_file
from lifecycle.modeling.estimators import NEEDS_SCALING, build_model
from lifecycle.modeling.features import build_preprocessor
from lifecycle.onnx_engine import OnnxPredictor, SklearnPredictor, export_pipeline, load_predictor
from lifecycle.schema import Schema, coerce_frame, infer_schema, normalize_columns

ROOT = Path(__file__).resolve().parents[2]
WINE_RED = ROOT / "data/external/winequality-red.csv"
THRESHOLDS = {"max_abs_diff": 1e-4, "min_label_agreement": 0.999}
CLASSIFIERS = ["hist_gradient_boosting", "random_forest", "logistic_regression"]
REGRESSORS = ["hist_gradient_boosting", "random_forest", "ridge"]


@pytest.fixture(scope="module", autouse=True)
def one_openmp_thread() -> Iterator[None]:
    """HistGradientBoosting fits and predicts with OpenMP; on a busy 2-core machine (pytest -n 2, other jobs) its
    threads contend and one-row predictions take 100x longer. One thread keeps the tests fast and the sums stable."""
    with threadpool_limits(limits=1):
        yield


def small_train(model: str, hgb_iterations: int = 30) -> Any:
    """The ``train`` params section as build_model reads it (the model name and its hyperparameters)."""
    return types.SimpleNamespace(
        model=model,
        hist_gradient_boosting=HistGradientBoosting(
            max_iter=hgb_iterations, learning_rate=0.1, max_leaf_nodes=31, min_samples_leaf=20, l2_regularization=0.0
        ),
        random_forest=RandomForest(n_estimators=20, max_depth=None, min_samples_leaf=2, max_features="sqrt", n_jobs=1),
        logistic_regression=LogisticRegression(C=1.0, max_iter=1000),
        ridge=Ridge(alpha=1.0),
    )


def fit(schema: Schema, train: pd.DataFrame, model: str) -> Pipeline:
    pipeline = Pipeline(
        [
            ("preprocess", build_preprocessor(schema, scale_numeric=model in NEEDS_SCALING)),
            ("model", build_model(small_train(model), schema.task, seed=42)),
        ]
    )
    return pipeline.fit(train[schema.features], train[schema.target])


def frame(records: list[dict[str, Any]], schema: Schema) -> pd.DataFrame:
    """Records as the pipeline expects them: float numerics, object categoricals (None/NaN = missing)."""
    df = pd.DataFrame(records, columns=schema.features)
    return df.astype(dict.fromkeys(schema.numeric, np.float64) | dict.fromkeys(schema.categorical, object))


def split(df: pd.DataFrame, n_train: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    return df.iloc[:n_train].reset_index(drop=True), df.iloc[n_train:].reset_index(drop=True)


@pytest.fixture(scope="module")
def datasets() -> dict[str, tuple[Schema, pd.DataFrame, pd.DataFrame]]:
    """name -> (schema, train, test): telemetry (classification, regression) and wine quality (both tasks)."""
    raw = telemetry.generate(rows=3000, version="v1", seed=7, missing_rate=0.02)
    schema = infer_schema(raw, telemetry.TARGET, "classification")
    tel = coerce_frame(raw, schema)
    tel_train, tel_test = split(tel, 2000)
    # The test rows also carry missing and unseen categories: both must encode as all zeros in ONNX too.
    tel_test.loc[:29, "charge_mode"] = None
    tel_test.loc[30:59, "chemistry"] = "solid_state"
    reg_raw = raw.drop(columns=[telemetry.TARGET]).dropna(subset=["state_of_health_pct"])
    reg_schema = infer_schema(reg_raw, "state_of_health_pct", "regression")
    reg_train, reg_test = split(coerce_frame(reg_raw, reg_schema), 2000)
    wine = normalize_columns(pd.read_csv(WINE_RED, sep=";"))
    wine = wine.sample(frac=1.0, random_state=0).reset_index(drop=True)
    wine_train, wine_test = split(wine, 1100)
    return {
        "telemetry": (schema, tel_train, tel_test),
        "telemetry_regression": (reg_schema, reg_train, reg_test),
        "wine": (infer_schema(wine, "quality", "classification"), wine_train, wine_test),
        "wine_regression": (infer_schema(wine, "quality", "regression"), wine_train, wine_test),
    }


CASES = [(d, m) for d in ("telemetry", "wine") for m in CLASSIFIERS] + [
    (d, m) for d in ("telemetry_regression", "wine_regression") for m in REGRESSORS
]


@pytest.fixture(scope="module")
def exported(datasets: dict[str, Any]) -> dict[tuple[str, str], tuple[Pipeline, bytes | None, dict[str, Any]]]:
    out = {}
    for name, model in CASES:
        schema, train, test = datasets[name]
        pipeline = fit(schema, train, model)
        onnx, report = export_pipeline(pipeline, schema, test[schema.features], enabled=True, opset=17, **THRESHOLDS)
        out[(name, model)] = (pipeline, onnx, report)
    return out


@pytest.mark.parametrize(("dataset", "model"), CASES)
def test_every_family_converts_with_parity(datasets: dict[str, Any], exported: dict, dataset: str, model: str) -> None:
    schema, _, test = datasets[dataset]
    pipeline, onnx, report = exported[(dataset, model)]
    parity = report["parity"]
    assert onnx is not None, report["reason"]
    assert report["usable"] and parity["passed"] and report["reason"] == ""
    assert parity["rows"] == len(test)
    # float64 inputs and exact thresholds: ~1e-7, the float32 scores of onnxruntime's tree operators
    scale = 1.0 if schema.task == "classification" else float(test[schema.target].abs().max())
    assert parity["max_abs_diff"] <= 1e-6 * scale
    assert parity["thresholds"]["max_abs_diff"] == THRESHOLDS["max_abs_diff"]

    predictor = OnnxPredictor.from_bytes(onnx, schema)
    X = test[schema.features]
    labels, proba = predictor.run(X)
    expected = pipeline.predict(X)
    if schema.task == "classification":
        # The label type round-trips: strings for telemetry, integers 3..8 for wine quality.
        assert labels.dtype == expected.dtype
        assert list(predictor.classes_) == list(pipeline.classes_)
        assert type(labels[0]) is type(expected[0])
        assert parity["label_agreement"] >= THRESHOLDS["min_label_agreement"]
        np.testing.assert_allclose(proba, pipeline.predict_proba(X), atol=1e-5)
        assert proba.dtype == np.float64 and proba.shape == (len(X), len(pipeline.classes_))
    else:
        assert parity["label_agreement"] is None and proba is None
        assert labels.dtype == np.float64
        np.testing.assert_allclose(labels, expected, atol=1e-4)


def test_label_types_round_trip(datasets: dict[str, Any], exported: dict) -> None:
    wine, _, wine_test = datasets["wine"]
    predictor = OnnxPredictor.from_bytes(exported[("wine", "random_forest")][1], wine)
    assert predictor.classes_.tolist() == [3, 4, 5, 6, 7, 8] and predictor.classes_.dtype == np.int64
    label, _ = predictor.run_one(wine_test[wine.features].iloc[0].to_dict())
    assert isinstance(label[0], np.int64)
    tel, _, tel_test = datasets["telemetry"]
    predictor = OnnxPredictor.from_bytes(exported[("telemetry", "random_forest")][1], tel)
    assert predictor.classes_.tolist() == sorted(telemetry.CLASSES)
    label, _ = predictor.run_one(tel_test[tel.features].iloc[0].to_dict())
    assert isinstance(label[0], str)


def test_single_row_from_a_dict_matches_sklearn_with_missing_and_unknown_values(
    datasets: dict[str, Any], exported: dict
) -> None:
    schema, _, test = datasets["telemetry"]
    pipeline, onnx, _ = exported[("telemetry", "hist_gradient_boosting")]
    predictor = OnnxPredictor.from_bytes(onnx, schema)
    sk = SklearnPredictor(pipeline, schema)
    records = test[schema.features].head(80).astype(object).where(test[schema.features].head(80).notna(), None)
    records = records.to_dict("records")
    records[0]["state_of_health_pct"] = None  # a missing numeric reading is imputed in both engines
    records[1]["charge_mode"] = float("nan")  # NaN category, as pandas would give it
    records[2]["climate_zone"] = "arctic"  # never seen in training
    assert records[5]["charge_mode"] is None and records[35]["chemistry"] == "solid_state"
    for record in records:
        label, proba = predictor.run_one(record)
        expected = pipeline.predict_proba(frame([record], schema))
        np.testing.assert_allclose(proba, expected, atol=1e-5)
        assert label[0] == pipeline.classes_[np.argmax(expected)]
        sk_label, sk_proba = sk.run_one(record)
        assert sk_label[0] == label[0]
        np.testing.assert_allclose(sk_proba, expected, atol=1e-12)
    # Missing or unknown categories encode as all zeros: the same answer as a row with every category unknown.
    unknown = dict(records[3], charge_mode="warp", chemistry="unobtainium", climate_zone="moon")
    missing = dict(records[3], charge_mode=None, chemistry=None, climate_zone=None)
    np.testing.assert_allclose(predictor.run_one(unknown)[1], predictor.run_one(missing)[1], atol=0)
    # the batch path on dicts equals the batch path on a DataFrame
    np.testing.assert_allclose(predictor.run(records)[1], predictor.run(pd.DataFrame(records))[1], atol=0)


def test_regression_single_row(datasets: dict[str, Any], exported: dict) -> None:
    schema, _, test = datasets["wine_regression"]
    pipeline, onnx, _ = exported[("wine_regression", "ridge")]
    predictor = OnnxPredictor.from_bytes(onnx, schema)
    record = test[schema.features].iloc[0].to_dict()
    prediction, proba = predictor.run_one(record)
    assert proba is None and prediction.shape == (1,) and prediction.dtype == np.float64
    assert prediction[0] == pytest.approx(pipeline.predict(frame([record], schema))[0], abs=1e-4)
    assert predictor.predict([record])[0] == prediction[0]
    with pytest.raises(AttributeError, match="regressor"):
        predictor.predict_proba([record])


def test_conversion_is_deterministic(datasets: dict[str, Any], exported: dict) -> None:
    schema, _, _ = datasets["telemetry"]
    pipeline, onnx, _ = exported[("telemetry", "hist_gradient_boosting")]
    assert onnx_engine.convert(pipeline, schema, 17) == onnx


# --------------------------------------------------------------------------------------------- fallback
def test_a_custom_step_that_cannot_convert_is_reported_not_raised(datasets: dict[str, Any]) -> None:
    schema, train, test = datasets["wine"]
    base = fit(schema, train, "logistic_regression")
    custom = Pipeline(
        [("preprocess", base.steps[0][1]), ("log", FunctionTransformer(np.log1p)), ("model", base.steps[1][1])]
    )
    onnx, report = export_pipeline(custom, schema, test[schema.features], enabled=True, opset=17, **THRESHOLDS)
    assert onnx is None
    assert report["usable"] is False and report["parity"] is None
    assert report["reason"].startswith("skl2onnx cannot convert the pipeline:")
    assert "FunctionTransformer" in report["reason"]
    assert " at 0x" not in report["reason"]  # nothing volatile in model.json


def test_failed_parity_is_reported_with_the_numbers(datasets: dict[str, Any], exported: dict) -> None:
    schema, _, test = datasets["telemetry"]
    pipeline, _, _ = exported[("telemetry", "logistic_regression")]
    onnx, report = export_pipeline(
        pipeline, schema, test[schema.features], enabled=True, opset=17, max_abs_diff=0.0, min_label_agreement=1.0
    )
    assert onnx is None and report["usable"] is False
    assert report["parity"]["passed"] is False and report["parity"]["max_abs_diff"] > 0
    assert "export.max_abs_diff 0" in report["reason"]


def test_disabled_export_says_so(datasets: dict[str, Any], exported: dict) -> None:
    schema, _, test = datasets["telemetry"]
    pipeline, _, _ = exported[("telemetry", "logistic_regression")]
    onnx, report = export_pipeline(pipeline, schema, test[schema.features], enabled=False, opset=17, **THRESHOLDS)
    assert onnx is None and report["usable"] is False and "export.enabled is false" in report["reason"]


# --------------------------------------------------------------------------------------------- the gate
def test_load_predictor_serves_only_a_verified_file(tmp_path: Path, datasets: dict[str, Any], exported: dict) -> None:
    schema, _, _ = datasets["telemetry"]
    _, onnx, report = exported[("telemetry", "random_forest")]
    path = tmp_path / "model.onnx"
    path.write_bytes(onnx)
    section = report | {"sha256": sha256_file(path)}

    predictor, why = load_predictor({"onnx": section}, path, schema)
    assert predictor is not None and why == ""

    assert load_predictor({}, path, schema)[1].startswith("model.json has no 'onnx' section")
    not_usable = section | {"usable": False, "reason": "parity failed on the test split: x"}
    assert load_predictor({"onnx": not_usable}, path, schema) == (
        None,
        "ONNX model not usable: parity failed on the test split: x",
    )
    predictor, why = load_predictor({"onnx": section | {"sha256": "0" * 64}}, path, schema)
    assert predictor is None and "does not match" in why
    path.write_bytes(b"")
    predictor, why = load_predictor({"onnx": section}, path, schema)
    assert predictor is None and "missing or empty" in why


# --------------------------------------------------------------------------------------------- bad input
def test_a_record_without_a_feature_is_refused(datasets: dict[str, Any], exported: dict) -> None:
    schema, _, test = datasets["telemetry"]
    predictor = OnnxPredictor.from_bytes(exported[("telemetry", "hist_gradient_boosting")][1], schema)
    record = test[schema.features].iloc[0].to_dict()
    del record["pack_voltage_v"]
    with pytest.raises(DataError, match="record has no feature 'pack_voltage_v'"):
        predictor.run_one(record)
    with pytest.raises(DataError, match="a record has no feature 'pack_voltage_v'"):
        predictor.run([record])


def test_a_non_numeric_value_is_refused(datasets: dict[str, Any], exported: dict) -> None:
    schema, _, test = datasets["telemetry"]
    predictor = OnnxPredictor.from_bytes(exported[("telemetry", "hist_gradient_boosting")][1], schema)
    record = test[schema.features].iloc[0].to_dict() | {"pack_voltage_v": "high"}
    with pytest.raises(DataError, match=r"'pack_voltage_v'.*not a number"):
        predictor.run_one(record)
    with pytest.raises(DataError, match="'pack_voltage_v' is not numeric in every record"):
        predictor.run([record])
    with pytest.raises(DataError, match="'pack_voltage_v' is not numeric"):
        predictor.run(pd.DataFrame([record]))


def test_rows_without_a_feature_column_are_refused(datasets: dict[str, Any], exported: dict) -> None:
    schema, _, test = datasets["telemetry"]
    predictor = OnnxPredictor.from_bytes(exported[("telemetry", "hist_gradient_boosting")][1], schema)
    with pytest.raises(DataError, match=r"no feature column\(s\) \['chemistry'\]"):
        predictor.run(test[schema.features].drop(columns=["chemistry"]))


def test_an_empty_onnx_file_is_refused(tmp_path: Path, datasets: dict[str, Any]) -> None:
    schema, _, _ = datasets["telemetry"]
    (tmp_path / "model.onnx").write_bytes(b"")
    with pytest.raises(DataError, match=r"model\.onnx: no ONNX model"):
        OnnxPredictor(tmp_path / "model.onnx", schema)


def test_a_model_for_another_schema_is_refused(datasets: dict[str, Any], exported: dict) -> None:
    wine_schema, _, _ = datasets["wine"]
    with pytest.raises(DataError, match="exported for task 'classification' with features"):
        OnnxPredictor.from_bytes(exported[("telemetry", "hist_gradient_boosting")][1], wine_schema)


def test_parity_on_no_rows_is_refused(datasets: dict[str, Any], exported: dict) -> None:
    schema, _, test = datasets["telemetry"]
    pipeline, onnx, _ = exported[("telemetry", "hist_gradient_boosting")]
    with pytest.raises(DataError, match="test split is empty"):
        onnx_engine.check_parity(pipeline, onnx, test[schema.features].head(0), schema, 1e-4, 0.999)


# --------------------------------------------------------------------------------------------- float32 ties
def test_inputs_have_the_precision_scikit_learn_compares_in(datasets: dict[str, Any], exported: dict) -> None:
    """Forests compare float32 in scikit-learn, everything else float64; the graph's inputs follow."""
    for (name, model), (_, onnx, report) in exported.items():
        schema = datasets[name][0]
        session = OnnxPredictor.from_bytes(onnx, schema).session
        types = {i.name: i.type for i in session.get_inputs()}
        expected = "tensor(float)" if model == "random_forest" else "tensor(double)"
        assert {types[c] for c in schema.numeric} == {expected}, (name, model)
        assert report["inputs"]["numeric"] == ("float32" if model == "random_forest" else "float64")
        if schema.categorical:
            assert {types[c] for c in schema.categorical} == {"tensor(string)"}


@pytest.mark.parametrize("task", ["classification", "regression"])
def test_hgb_on_red_wine_hits_and_survives_a_float32_tie(task: str) -> None:
    """Splits on which float32 thresholds bite (skl2onnx's default): 5.7 vs the threshold 5.699999999999999 made
    the classifier disagree on one row (probability difference 0.40), the regressor by 0.007."""
    wine = normalize_columns(pd.read_csv(WINE_RED, sep=";"))
    schema = infer_schema(wine, "quality", task)  # type: ignore[arg-type]
    if task == "classification":
        train, test = split(wine, 1200)
    else:
        train, test = train_test_split(wine, test_size=0.2, random_state=42)
    pipeline = Pipeline(
        [
            ("preprocess", build_preprocessor(schema)),
            ("model", build_model(small_train("hist_gradient_boosting", 200), task, seed=42)),
        ]
    ).fit(train[schema.features], train[schema.target])
    _, report = export_pipeline(pipeline, schema, test[schema.features], enabled=True, opset=17, **THRESHOLDS)
    assert report["usable"], report["reason"]
    assert report["parity"]["max_abs_diff"] < 1e-5
