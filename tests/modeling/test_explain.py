"""lifecycle.modeling.explain: exact, additive SHAP values per raw input column for every model family, the
served prediction, and the errors for what cannot be explained."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import shap
from sklearn.compose import ColumnTransformer
from sklearn.decomposition import PCA
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, PolynomialFeatures, StandardScaler
from tests.conftest import small_params

from lifecycle import artifact
from lifecycle.data import telemetry
from lifecycle.errors import DataError
from lifecycle.modeling.explain import (
    ADDITIVITY_TOLERANCE,
    Explainer,
    ExplanationError,
    additivity_gap,
    background_frame,
    column_groups,
    mean_abs_shap,
)
from lifecycle.modeling.features import build_preprocessor
from lifecycle.modeling.pipeline import background_sample, build_pipeline
from lifecycle.schema import coerce_frame, infer_schema

FAMILIES = [
    ("classification", "hist_gradient_boosting", "log_odds"),
    ("classification", "random_forest", "probability"),
    ("classification", "logistic_regression", "log_odds"),
    ("regression", "hist_gradient_boosting", "target"),
    ("regression", "random_forest", "target"),
    ("regression", "ridge", "target"),
]

pytestmark = pytest.mark.usefixtures("one_thread")  # fits and SHAP with one OpenMP thread (tests/conftest.py)


@pytest.fixture(scope="module")
def telemetry_rows() -> pd.DataFrame:
    """1200 simulated rows with missing readings (the pipeline imputes them) and rounded sensor values."""
    return telemetry.generate(rows=1200, seed=3, missing_rate=0.05, glitch_rate=0.0, duplicate_rate=0.0)


def fitted(df: pd.DataFrame, task: str, family: str, binary: bool = False) -> tuple[Pipeline, object, pd.DataFrame]:
    if task == "regression":
        df = df.drop(columns=[telemetry.TARGET]).dropna(subset=["state_of_health_pct"])
        target = "state_of_health_pct"
    else:
        target = telemetry.TARGET
        if binary:
            df = df.assign(**{target: np.where(df[target] == "none", "ok", "fault")})
    schema = infer_schema(df, target, task, id_columns=telemetry.ID_COLUMNS)
    df = coerce_frame(df, schema)
    params = small_params(model=family)
    train = params.train.model_copy(
        update={"random_forest": params.train.random_forest.model_copy(update={"n_estimators": 15, "n_jobs": 1})}
    )
    pipeline = build_pipeline(schema, params.model_copy(update={"train": train}))
    pipeline.fit(df[schema.features], df[target])
    return pipeline, schema, df


def background(df: pd.DataFrame, schema: object, rows: int = 40) -> pd.DataFrame:
    return background_frame(background_sample(df, schema, rows, seed=5), schema)


def estimator_output(pipeline: Pipeline, X: pd.DataFrame, space: str) -> np.ndarray:
    """The model's own output in ``space``, independently of the explainer: shape (n, outputs)."""
    Z = pipeline[:-1].transform(X)
    model = pipeline[-1]
    if space == "probability":
        return model.predict_proba(Z)
    if space == "log_odds":
        raw = np.asarray(model.decision_function(Z))
        return np.column_stack([-raw, raw]) if raw.ndim == 1 else raw
    return model.predict(Z).reshape(-1, 1)


@pytest.mark.parametrize(("task", "family", "space"), FAMILIES)
def test_every_family_is_additive_within_1e_6_and_explains_the_served_prediction(telemetry_rows, task, family, space):
    pipeline, schema, df = fitted(telemetry_rows, task, family)
    explainer = Explainer(pipeline, background(df, schema), schema)
    X = df[schema.features].iloc[:300]
    assert X.isna().any().any()  # missing readings are explained too (imputed like in training)
    ex = explainer.explain(X)
    assert ex.output_space == explainer.output_space == space
    assert ex.values.shape == (300, len(schema.features), len(ex.outputs))
    assert ex.features == schema.features  # raw columns, one-hot encodings summed back
    own = estimator_output(pipeline, X, space)
    assert np.abs(ex.base_values + ex.values.sum(axis=1) - own).max() <= ADDITIVITY_TOLERANCE
    y_pred, proba = artifact.predict(pipeline, X, schema.task)  # the one predict path: what the server answers
    assert ex.y_pred.tolist() == y_pred.tolist()
    if proba is not None:
        np.testing.assert_array_equal(ex.proba, proba)
        assert ex.outputs == list(pipeline.classes_)
    else:
        assert ex.outputs == [schema.target]
    # the base value is the mean output over the background
    assert ex.base_values == pytest.approx(estimator_output(pipeline, background(df, schema), space).mean(axis=0))


@pytest.mark.parametrize(("task", "family", "space"), FAMILIES)
def test_every_background_row_is_used_beyond_shaps_default_of_100(telemetry_rows, task, family, space):
    """shap wraps a plain background in a masker that keeps 100 rows (its own draw); train.shap_background_rows of
    150 must mean 150: the base value is the mean output over all of them, not over 100."""
    pipeline, schema, df = fitted(telemetry_rows, task, family)
    rows = background(df, schema, rows=150)
    explainer = Explainer(pipeline, rows, schema)
    assert explainer.background.shape[0] == 150
    every = estimator_output(pipeline, rows, space).mean(axis=0)
    first_100 = estimator_output(pipeline, rows.iloc[:100], space).mean(axis=0)
    assert np.abs(every - first_100).max() > 1e-6  # the two means differ, so the check below can tell them apart
    assert explainer.base_values == pytest.approx(every, abs=1e-9, rel=1e-9)
    X = df[schema.features].iloc[:20]
    ex = explainer.explain(X)
    assert np.abs(ex.base_values + ex.values.sum(axis=1) - estimator_output(pipeline, X, space)).max() <= 1e-6


@pytest.mark.parametrize("family", ["hist_gradient_boosting", "random_forest", "logistic_regression"])
def test_binary_classifiers_explain_both_classes(telemetry_rows, family):
    pipeline, schema, df = fitted(telemetry_rows, "classification", family, binary=True)
    ex = Explainer(pipeline, background(df, schema), schema).explain(df[schema.features].iloc[:100])
    assert ex.outputs == ["fault", "ok"]
    space = "probability" if family == "random_forest" else "log_odds"
    own = estimator_output(pipeline, df[schema.features].iloc[:100], space)
    assert np.abs(ex.base_values + ex.values.sum(axis=1) - own).max() <= ADDITIVITY_TOLERANCE
    if space == "log_odds":  # log(p/(1-p)) of one class is minus the other's
        np.testing.assert_allclose(ex.values[:, :, 0], -ex.values[:, :, 1])


def test_rows_as_records_unknown_categories_and_json_shape(telemetry_rows):
    pipeline, schema, df = fitted(telemetry_rows, "classification", "hist_gradient_boosting")
    explainer = Explainer(pipeline, background(df, schema), schema)
    records = [dict(r, charge_mode="wireless") for r in df[schema.features].iloc[:3].to_dict("records")]
    rows = explainer.explain(records).rows()  # an unseen category encodes as all zeros, like in prediction
    assert [r["prediction"] for r in rows] == pipeline.predict(pd.DataFrame(records)).tolist()
    for row in rows:
        assert set(row) == {"prediction", "probabilities", "base_value", "output", "contributions"}
        for cls, contributions in row["contributions"].items():
            total = row["base_value"][cls] + sum(contributions.values())
            assert total == pytest.approx(row["output"][cls], abs=ADDITIVITY_TOLERANCE)
    with pytest.raises(DataError, match=r"lack feature column\(s\) \['chemistry'\]"):
        explainer.explain([{k: v for k, v in records[0].items() if k != "chemistry"}])


def test_regression_rows_are_plain_numbers(telemetry_rows):
    pipeline, schema, df = fitted(telemetry_rows, "regression", "ridge")
    row = Explainer(pipeline, background(df, schema), schema).explain(df[schema.features].iloc[:1]).rows()[0]
    assert isinstance(row["base_value"], float) and isinstance(row["output"], float)
    assert row["output"] == pytest.approx(pipeline.predict(df[schema.features].iloc[:1])[0], abs=1e-9)
    assert "probabilities" not in row


def test_same_inputs_give_the_same_explanation(telemetry_rows):
    pipeline, schema, df = fitted(telemetry_rows, "classification", "random_forest")
    X = df[schema.features].iloc[:50]
    a = Explainer(pipeline, background(df, schema), schema).explain(X)
    b = Explainer(pipeline, background(df, schema), schema).explain(X)
    np.testing.assert_array_equal(a.values, b.values)
    assert background_sample(df, schema, 40, 5) == background_sample(df, schema, 40, 5)
    assert background_sample(df, schema, 40, 5) != background_sample(df, schema, 40, 6)
    assert len(background_sample(df, schema, 10**6, 5)) == len(df)  # at most the whole split


def test_mean_abs_shap_ranks_the_signal_first():
    rng = np.random.default_rng(0)
    df = pd.DataFrame(
        {"signal": rng.normal(size=400), "noise": rng.normal(size=400), "mode": rng.choice(["a", "b"], 400)}
    )
    df["y"] = np.where(df["signal"] > 0, "high", "low")
    schema = infer_schema(df, "y", "classification")
    model = Pipeline(
        [("preprocess", build_preprocessor(schema)), ("model", HistGradientBoostingClassifier(max_iter=20))]
    )
    model.fit(df[schema.features], df["y"])
    ex = Explainer(model, background(df, schema, 30), schema).explain(df[schema.features])
    rows, per_output = mean_abs_shap(ex)
    assert next(r["feature"] for r in rows) == "signal"
    assert rows[0]["mean_abs_shap"] > 10 * rows[-1]["mean_abs_shap"]
    assert set(per_output) == {"high", "low"}
    assert np.mean([per_output[c][0] for c in per_output]) == pytest.approx(rows[0]["mean_abs_shap"], abs=1e-6)


# --------------------------------------------------------------------------------------------- raw columns
def test_column_groups_sum_one_hot_and_one_column_derivations_back():
    df = pd.DataFrame({"a": [1.0, 2.0, 3.0], "b": [2.0, 1.0, 0.0], "c": ["x", "y", "x"], "d": ["p", "q", "r"]})
    ct = ColumnTransformer(
        [
            ("numeric", StandardScaler(), ["a", "b"]),  # one to one
            ("square", PolynomialFeatures(2, include_bias=False), ["a"]),  # a, a^2: both belong to a
            ("onehot", OneHotEncoder(sparse_output=False), ["c", "d"]),  # 2 + 3 columns
        ]
    ).fit(df)
    assert column_groups(ct, 9) == [("a", [0]), ("b", [1]), ("a", [2, 3]), ("c", [4, 5]), ("d", [6, 7, 8])]
    dropped = ColumnTransformer([("onehot", OneHotEncoder(drop="first", sparse_output=False), ["c", "d"])]).fit(df)
    assert column_groups(dropped, 3) == [("c", [0]), ("d", [1, 2])]


@pytest.mark.parametrize(
    "step",
    [
        PCA(n_components=1),
        PolynomialFeatures(2, include_bias=False),
        FunctionTransformer(lambda X: np.asarray(X)[:, :1]),
    ],
)
def test_steps_mixing_columns_cannot_be_attributed(step):
    df = pd.DataFrame({"a": [1.0, 2.0, 3.0, 5.0], "b": [2.0, 1.0, 0.0, 4.0]})
    ct = ColumnTransformer([("mix", step, ["a", "b"])]).fit(df)
    width = ct.transform(df).shape[1]
    with pytest.raises(ExplanationError, match=r"preprocessing step 'mix' .* turns columns \['a', 'b'\]"):
        column_groups(ct, width)


def test_what_cannot_be_explained_says_why(telemetry_rows):
    pipeline, schema, df = fitted(telemetry_rows, "classification", "logistic_regression")
    with pytest.raises(ExplanationError, match="no explainer background rows; retrain"):
        background_frame([], schema)
    with pytest.raises(ExplanationError, match=r"lacks feature\(s\) \['chemistry'\]"):
        background_frame(
            [{k: v for k, v in r.items() if k != "chemistry"} for r in background_sample(df, schema, 3, 1)], schema
        )
    knn = Pipeline([("preprocess", pipeline[0]), ("model", KNeighborsClassifier())]).fit(
        df[schema.features], df[schema.target]
    )
    with pytest.raises(ExplanationError, match="no exact SHAP explainer for KNeighborsClassifier"):
        Explainer(knn, background(df, schema), schema)


# --------------------------------------------------------------------------------------------- the shap workaround
def test_shap_0_51_interventional_trees_still_need_the_workaround():
    """Explainer recodes features as ranks among the split thresholds because shap 0.51's interventional
    algorithm compares in 32-bit floats: a value equal (or within a float32 step) to a threshold takes the wrong
    branch and the values stop adding up. When this test fails, shap fixed it: drop ``_TreeExplainers.encode``."""
    rng = np.random.default_rng(0)
    # readings rounded to 0.01: more distinct values than bins, so the thresholds are (midpoint) percentiles of
    # tied values, which equal a reading (rounded to 0.1 there are fewer values than bins: thresholds fall between)
    X = np.round(rng.normal(size=(600, 4)), 2)
    y = X[:, 0] + np.where(X[:, 1] > 0, 1.0, 0.0) + 0.1 * rng.normal(size=600)
    model = HistGradientBoostingRegressor(max_iter=20, random_state=0).fit(X, y)
    plain = shap.TreeExplainer(model, data=X[:50], feature_perturbation="interventional", model_output="raw")
    values = plain.shap_values(X[:300], check_additivity=False)
    assert np.abs(plain.expected_value + values.sum(axis=1) - model.predict(X[:300])).max() > 1e-3
    df = pd.DataFrame(X, columns=list("abcd")).assign(y=y)
    schema = infer_schema(df, "y", "regression")
    pipeline = Pipeline([("preprocess", build_preprocessor(schema)), ("model", model)])
    pipeline[0].fit(df[schema.features])
    ex = Explainer(pipeline, df[schema.features].iloc[:50], schema).explain(df[schema.features].iloc[:300])
    assert np.abs(ex.base_values + ex.values.sum(axis=1) - ex.output).max() <= ADDITIVITY_TOLERANCE
    assert np.abs(ex.output[:, 0] - model.predict(X[:300])).max() == 0.0


def test_large_regression_targets_stay_additive():
    """shap's interventional algorithm loses precision relative to the leaf values: without centring each tree on
    its root value, a random forest of a target near 10,000 missed additivity by 5e-4."""
    from sklearn.ensemble import RandomForestRegressor

    rng = np.random.default_rng(0)
    df = pd.DataFrame(rng.normal(size=(800, 4)), columns=list("abcd"))
    df["y"] = 1e4 + 5 * df["a"] + df["b"] ** 2
    schema = infer_schema(df, "y", "regression")
    model = Pipeline([("preprocess", build_preprocessor(schema)), ("model", RandomForestRegressor(15, random_state=0))])
    model.fit(df[schema.features], df["y"])
    ex = Explainer(model, df[schema.features].iloc[:40], schema).explain(df[schema.features].iloc[:300])
    assert (
        np.abs(ex.base_values + ex.values.sum(axis=1) - model.predict(df[schema.features].iloc[:300])[:, None]).max()
        <= ADDITIVITY_TOLERANCE
    )


def test_huge_raw_outputs_are_additive_relative_to_their_magnitude():
    """shap adds in 32-bit floats: leaves of +-1e4 that no per-tree constant centres (a regressor of a target that
    jumps between -1e4 and 1e4, like the raw log-odds of a saturated classifier) put the sum ~1e-4 off in absolute
    terms, which the check accepts as ~1e-8 of the row's magnitude; a real error of 1e-5 of it is refused."""
    rng = np.random.default_rng(1)
    df = pd.DataFrame(np.round(rng.normal(size=(1500, 4)), 3), columns=list("abcd"))
    df["y"] = 1e4 * np.sign(df["a"]) * (1 + df["b"] ** 2) + 3e3 * df["c"]
    schema = infer_schema(df, "y", "regression")
    model = Pipeline([("preprocess", build_preprocessor(schema)),
                      ("model", HistGradientBoostingRegressor(max_iter=60, random_state=0))])  # fmt: skip
    model.fit(df[schema.features], df["y"])
    ex = Explainer(model, df[schema.features].iloc[:60], schema).explain(df[schema.features].iloc[:400])
    relative, absolute = additivity_gap(ex.base_values, ex.values, ex.output)
    assert absolute > ADDITIVITY_TOLERANCE  # shap's float32 error shows in absolute terms ...
    assert relative <= ADDITIVITY_TOLERANCE / 5  # ... and is well inside the relative tolerance
    wrong = ex.values.copy()
    wrong[0, 0, 0] += 1e-5 * max(1.0, float(np.abs(ex.output[0, 0])), float(np.abs(ex.values[0]).sum()))
    assert additivity_gap(ex.base_values, wrong, ex.output)[0] > ADDITIVITY_TOLERANCE


def test_additivity_gap_is_absolute_for_small_magnitudes_and_relative_for_large():
    base = np.array([0.5])
    values = np.array([[[0.25], [0.25]]])
    assert additivity_gap(base, values, np.array([[1.0]])) == (0.0, 0.0)
    assert additivity_gap(base, values, np.array([[1.0 + 2e-6]]))[0] == pytest.approx(2e-6 / (1.0 + 2e-6))
    assert additivity_gap(base * 1e6, values * 1e6, np.array([[1e6 + 0.5]]))[0] == pytest.approx(0.5e-6, rel=1e-9)
    assert additivity_gap(base, values[:0], np.zeros((0, 1))) == (0.0, 0.0)
