"""Why the model predicted what it did: SHAP values of the fitted pipeline, per row and for the whole model; no I/O.

Method (Lundberg & Lee 2017, "A Unified Approach to Interpreting Model Predictions"; shap's exact explainers):

- ``HistGradientBoosting*`` and ``RandomForest*``: ``shap.TreeExplainer`` with ``feature_perturbation=
  "interventional"`` and ``model_output="raw"`` (Lundberg et al. 2020, "From local explanations to global
  understanding with explainable AI for trees": Interventional Tree SHAP, exact);
- ``LogisticRegression`` and ``Ridge``: ``shap.LinearExplainer`` with an ``Independent`` masker:
  ``coef_j * (z_j - mean_j)``, exact.

Both run on the pipeline's *transformed* features (after imputation, scaling, one-hot encoding), against the
background: rows of the training split drawn with ``base.seed`` (``train.shap_background_rows`` of them, recorded in
model.json's ``explainer`` section by train), passed through the same preprocessing. The contributions of the
transformed columns are then summed back to the raw column the user sent (:func:`column_groups`: the one-hot
columns of ``charge_mode`` become one ``charge_mode`` contribution), which keeps additivity.

Output space (:data:`OUTPUT_SPACES`), per model output (one per class for classification):

- ``log_odds``: gradient boosting and logistic regression classifiers, the model's raw score
  (``decision_function``). Binary: the log-odds ``log(p / (1 - p))`` of each class (the second class's score and its
  negation). Multiclass: the raw log-odds per class, whose softmax is ``predict_proba`` (defined up to a constant
  shared by all classes; the base values carry it);
- ``probability``: random forest classifiers, ``predict_proba`` itself (the trees average class probabilities);
- ``target``: regressors, ``predict`` in the target's unit.

Additivity: ``base_value + sum(contributions) == output`` for every row and output; :meth:`Explainer.explain` checks
it against the fitted estimator's own output within :data:`ADDITIVITY_TOLERANCE` relative to the row's magnitude
(:func:`additivity_gap`) and raises :class:`ExplanationError` when it fails, so no explanation leaves this module
that does not add up. Relative, because shap 0.51's interventional algorithm computes in 32-bit floats (tree_shap.h:
``float`` weights and partial sums): its error is about 1e-7 of the magnitudes it adds. Within 1e-6 absolute while
the output, base value and contributions stay within +-1; a gradient-boosting model whose raw log-odds reach 1e4
(HistGradientBoosting with scikit-learn's ``l2_regularization: 0`` on 200k+ telemetry rows: leaves with vanishing
hessians; params.yaml's default is 1.0) is off by up to 2e-3 absolute, 9e-8 relative (measured on 1,000 test rows).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import is_classifier
from sklearn.compose import ColumnTransformer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder

from lifecycle import artifact
from lifecycle.errors import DataError, LifecycleError
from lifecycle.schema import Schema

log = logging.getLogger(__name__)
ADDITIVITY_TOLERANCE = 1e-6  # |base + sum(contributions) - output| / max(1, |output|, |base| + sum|contributions|)
OUTPUT_SPACES = {
    "log_odds": "raw log-odds (decision_function): binary, log(p / (1 - p)) of each class; multiclass, one score per "
    "class whose softmax is the class probabilities",
    "probability": "class probability (predict_proba)",
    "target": "the target's unit (predict)",
}
TREE_MODELS = ("HistGradientBoostingClassifier", "HistGradientBoostingRegressor", "RandomForestClassifier",
               "RandomForestRegressor")  # fmt: skip
LINEAR_MODELS = ("LogisticRegression", "Ridge")


class ExplanationError(LifecycleError):
    """The model cannot be explained (an unsupported estimator or preprocessing, no background), or an explanation
    failed its additivity check."""


@dataclasses.dataclass(frozen=True)
class Explanation:
    """SHAP values of ``n`` rows, per raw input column, for each model output.

    ``features``: the raw input columns (the schema's features, in order), length f; ``outputs``: what each output
    explains: the classes (``classes_`` order) or ``[target]``, length k; ``output_space``: a key of
    :data:`OUTPUT_SPACES`; ``base_values``: shape (k,), the mean output over the background; ``values``: shape
    (n, f, k), the contributions; ``output``: shape (n, k), the model's output, equal to ``base_values +
    values.sum(axis=1)`` within :data:`ADDITIVITY_TOLERANCE` (relative, :func:`additivity_gap`); ``y_pred``: shape (n,), and ``proba``: shape (n, k) or
    None, from :func:`lifecycle.artifact.predict` (the prediction that is served).
    """

    features: list[str]
    outputs: list[Any]
    output_space: str
    base_values: np.ndarray
    values: np.ndarray
    output: np.ndarray
    y_pred: np.ndarray
    proba: np.ndarray | None

    def rows(self) -> list[dict[str, Any]]:
        """One JSON-ready dict per row: ``prediction``, ``probabilities`` (classification: class -> probability, as
        served), and ``base_value``, ``output`` and ``contributions`` (feature -> value): keyed by class for
        classification, plain numbers for regression."""
        names = [str(o) for o in self.outputs]
        out = []
        for i, label in enumerate(self.y_pred.tolist()):
            parts = [dict(zip(self.features, self.values[i, :, j].tolist(), strict=True)) for j in range(len(names))]
            row: dict[str, Any] = {"prediction": label}
            if self.proba is not None:
                row["probabilities"] = dict(zip(names, self.proba[i].tolist(), strict=True))
            if self.output_space == "target":
                row |= {"base_value": float(self.base_values[0]), "output": float(self.output[i, 0])}
                row["contributions"] = parts[0]
            else:
                row["base_value"] = dict(zip(names, self.base_values.tolist(), strict=True))
                row["output"] = dict(zip(names, self.output[i].tolist(), strict=True))
                row["contributions"] = dict(zip(names, parts, strict=True))
            out.append(row)
        return out


# --------------------------------------------------------------------------------------------- raw columns
def column_groups(preprocess: ColumnTransformer, n_features_out: int) -> list[tuple[str, list[int]]]:
    """Which transformed columns come from which raw input column: ``[(raw column, [transformed indices])]``, in
    the order of the ColumnTransformer's transformers; dropped columns are absent.

    Rules, per fitted transformer (its slice is ``output_indices_``): one input column owns all its outputs (a
    derived expansion of one column); outputs named like the inputs (``get_feature_names_out``) are one to one
    (imputation, scaling); a ``OneHotEncoder`` (alone or last in a Pipeline) gives each input column
    ``len(categories_[i])`` outputs (minus a dropped one). Raises :class:`ExplanationError` naming the transformer
    when none applies, or when the groups do not cover the ``n_features_out`` columns the estimator sees.
    """
    groups: list[tuple[str, list[int]]] = []
    for name, transformer, columns in preprocess.transformers_:
        if isinstance(transformer, str):  # "drop" (a remainder), or "passthrough" with no fitted step
            if transformer == "drop":
                continue
            transformer = None
        span = preprocess.output_indices_[name]
        indices = list(range(span.start, span.stop))
        cols = [str(c) for c in (columns if isinstance(columns, list | tuple) else list(columns))]
        if not indices:
            continue
        if len(cols) == 1:
            groups.append((cols[0], indices))
            continue
        names = cols if transformer is None else _names_out(transformer, cols)
        if names == cols and len(indices) == len(cols):
            groups += [(c, [i]) for c, i in zip(cols, indices, strict=True)]
            continue
        encoder = transformer.steps[-1][1] if isinstance(transformer, Pipeline) else transformer
        if isinstance(encoder, OneHotEncoder):
            widths = _one_hot_widths(encoder)
            if sum(widths) == len(indices):
                start = indices[0]
                for c, w in zip(cols, widths, strict=True):
                    groups.append((c, list(range(start, start + w))))
                    start += w
                continue
        raise ExplanationError(
            f"preprocessing step {name!r} ({type(transformer).__name__}) turns columns {cols} into {len(indices)} "
            "features that cannot be attributed to single input columns; explanations need one-to-one steps, "
            "one-hot encoders or one-column steps"
        )
    covered = sorted(i for _, idx in groups for i in idx)
    if covered != list(range(n_features_out)):
        raise ExplanationError(
            f"the preprocessing's output columns ({len(covered)} attributed) do not match the {n_features_out} "
            "features the model was fitted on; rerun `dvc repro train`"
        )
    return groups


def _names_out(transformer: Any, cols: list[str]) -> list[str] | None:
    try:
        return [str(n) for n in transformer.get_feature_names_out(cols)]
    except (AttributeError, ValueError, TypeError):
        return None


def _one_hot_widths(encoder: OneHotEncoder) -> list[int]:
    drop = getattr(encoder, "drop_idx_", None)
    return [
        len(cats) - (1 if drop is not None and drop[i] is not None else 0) for i, cats in enumerate(encoder.categories_)
    ]


def aggregation_matrix(groups: Sequence[tuple[str, Sequence[int]]], features: Sequence[str], width: int) -> np.ndarray:
    """The (width, len(features)) 0/1 matrix that sums transformed columns into the raw ``features``' columns."""
    position = {f: j for j, f in enumerate(features)}
    matrix = np.zeros((width, len(features)))
    for column, indices in groups:
        if column not in position:
            raise ExplanationError(f"preprocessing reads column {column!r}, which is not a feature of the schema")
        matrix[list(indices), position[column]] = 1.0
    return matrix


# --------------------------------------------------------------------------------------------- the explainer
def background_frame(rows: Sequence[Mapping[str, Any]], schema: Schema) -> pd.DataFrame:
    """model.json's ``explainer.background`` (records, ``None`` = missing) as a frame of the schema's features,
    typed like the training rows (numeric float64, categorical text). Raises :class:`ExplanationError` when there
    are no rows or a feature is absent."""
    if not rows:
        raise ExplanationError(
            "model.json has no explainer background rows; retrain (`dvc repro train`) to record them"
        )
    frame = pd.DataFrame(list(rows))
    missing = [c for c in schema.features if c not in frame.columns]
    if missing:
        raise ExplanationError(f"the explainer background lacks feature(s) {missing}; retrain (`dvc repro train`)")
    frame = frame[schema.features]
    for c in schema.numeric:
        frame[c] = pd.to_numeric(frame[c], errors="coerce").astype("float64")
    for c in schema.categorical:
        frame[c] = frame[c].astype(object).where(frame[c].notna(), None)
    return frame


class Explainer:
    """The exact SHAP explainer of a fitted ``Pipeline(preprocess -> model)`` against a background sample.

    ``pipeline``: as train fits it (a ``ColumnTransformer`` step ``preprocess``, then the estimator); ``background``:
    raw rows with the schema's features (shape (b, f); :func:`background_frame`); ``schema``: the training schema.
    Building it costs one transform of the background and, for trees, the explainer's set-up (milliseconds for
    hundreds of trees). Raises :class:`ExplanationError` for an estimator without an exact explainer here or a
    preprocessing whose outputs cannot be attributed to raw columns.
    """

    def __init__(self, pipeline: Pipeline, background: pd.DataFrame, schema: Schema) -> None:
        self.pipeline, self.schema = pipeline, schema
        self.preprocess, self.model = pipeline[:-1], pipeline[-1]
        self.features = list(schema.features)
        kind = type(self.model).__name__
        self.background = self._transform(background)
        width = self.background.shape[1]
        ct = self.preprocess[-1] if isinstance(self.preprocess, Pipeline) else self.preprocess
        if not isinstance(ct, ColumnTransformer):
            raise ExplanationError(f"the pipeline's preprocessing is {type(ct).__name__}, not a ColumnTransformer")
        self.matrix = aggregation_matrix(column_groups(ct, width), self.features, width)
        self.classification = is_classifier(self.model)
        self.classes = artifact.model_classes(self.model) if self.classification else []
        if kind in TREE_MODELS:
            self.method = "shap.TreeExplainer (interventional, raw output)"
            if self.classification:
                self.output_space = "probability" if kind.startswith("RandomForest") else "log_odds"
            else:
                self.output_space = "target"
            self._shap: _TreeExplainers | _LinearExplainer = _TreeExplainers(self.model, self.background)
        elif kind in LINEAR_MODELS:
            self.method = "shap.LinearExplainer (independent masker)"
            self.output_space = "log_odds" if self.classification else "target"
            self._shap = _LinearExplainer(self.model, self.background)
        else:
            raise ExplanationError(
                f"no exact SHAP explainer for {kind}; supported: {', '.join(TREE_MODELS + LINEAR_MODELS)}"
            )
        self.outputs: list[Any] = list(self.classes) if self.classification else [schema.target]
        self.base_values = self._widen(self._shap.expected_value)

    def _transform(self, X: pd.DataFrame) -> np.ndarray:
        Z = self.preprocess.transform(X)
        Z = Z.toarray() if hasattr(Z, "toarray") else np.asarray(Z)
        return np.ascontiguousarray(Z, dtype=np.float64)

    def _widen(self, a: np.ndarray) -> np.ndarray:
        """A binary log-odds model has one output (the second class's); give both classes theirs: (-a, a)."""
        if self.classification and a.shape[-1] == 1 and len(self.classes) == 2:
            return np.concatenate([-a, a], axis=-1)
        return a

    def model_output(
        self, Z: np.ndarray, y_pred: np.ndarray | None = None, proba: np.ndarray | None = None
    ) -> np.ndarray:
        """The estimator's own output in :attr:`output_space` for transformed rows ``Z``: shape (n, k).
        ``y_pred``/``proba``: :func:`lifecycle.artifact.predict`'s answer for the same ``Z`` when already computed
        (the ``probability`` and ``target`` spaces are that answer; only ``log_odds`` needs another pass)."""
        if self.output_space == "probability":
            out = self.model.predict_proba(Z) if proba is None else proba
        elif self.output_space == "log_odds":
            out = self.model.decision_function(Z)
        else:
            out = self.model.predict(Z) if y_pred is None else y_pred
        out = np.asarray(out, dtype=np.float64)
        return self._widen(out.reshape(len(Z), -1))

    def explain(self, X: pd.DataFrame | Sequence[Mapping[str, Any]]) -> Explanation:
        """SHAP values of raw rows ``X`` (shape (n, features); records or a frame with the schema's features).

        Raises :class:`lifecycle.errors.DataError` when ``X`` lacks a feature, :class:`ExplanationError` when
        ``base_value + sum(contributions)`` differs from the model's output by more than
        :data:`ADDITIVITY_TOLERANCE` relative to the row's magnitude (:func:`additivity_gap`; a bug in the explainer
        or a changed library, never a bad request).
        """
        frame = X if isinstance(X, pd.DataFrame) else pd.DataFrame(list(X))
        missing = [c for c in self.features if c not in frame.columns]
        if missing:
            raise DataError(f"rows to explain lack feature column(s) {missing}")
        Z = self._transform(frame[self.features])
        # the pipeline's own predict_proba/predict is this same estimator call on these same transformed rows
        y_pred, proba = artifact.predict(self.model, Z, self.schema.task)
        values = self._shap.shap_values(Z)
        values = np.einsum("nwk,wf->nfk", values, self.matrix)
        if self.classification and values.shape[2] == 1 and len(self.classes) == 2:
            values = np.concatenate([-values, values], axis=2)
        output = self.model_output(Z, y_pred, proba)
        gap, absolute = additivity_gap(self.base_values, values, output)
        if not gap <= ADDITIVITY_TOLERANCE:
            raise ExplanationError(
                f"SHAP values do not add up to the model's output: off by {absolute:.3g}, {gap:.3g} of the row's "
                f"magnitude > {ADDITIVITY_TOLERANCE:g} "
                f"({self.method}, {type(self.model).__name__}); check the shap and scikit-learn versions"
            )
        return Explanation(self.features, self.outputs, self.output_space, self.base_values, values, output,
                           y_pred, proba)  # fmt: skip


def additivity_gap(base_values: np.ndarray, values: np.ndarray, output: np.ndarray) -> tuple[float, float]:
    """How far ``base_values + values.sum(axis=1)`` is from ``output``: ``(relative, absolute)``, the largest over
    rows and outputs. ``base_values``: shape (k,); ``values``: (n, f, k); ``output``: (n, k). Relative to the row's
    magnitude ``max(1, |output|, |base_value| + sum(|contributions|))``, the size of the numbers the explainer adds
    (its rounding error grows with them, even when they cancel). ``(0.0, 0.0)`` for no rows."""
    if not len(output):
        return 0.0, 0.0
    error = np.abs(base_values + values.sum(axis=1) - output)
    scale = np.maximum(1.0, np.maximum(np.abs(output), np.abs(base_values) + np.abs(values).sum(axis=1)))
    return float(np.max(error / scale)), float(np.max(error))


class _TreeExplainers:
    """``shap.TreeExplainer`` objects (interventional, raw output) of a fitted tree ensemble, with the workarounds
    that make them exact; :meth:`shap_values` and :attr:`expected_value` give every output side by side.

    shap converts the estimator (its own code reads the fitted trees); the trees are handed back to it in its
    documented dict form, with two corrections, each needed for additivity with scikit-learn's output:

    - shap 0.51's interventional algorithm compares a value with a split threshold in 32-bit floats, whereas
      scikit-learn (and shap's own ``predict``) sends ``x <= threshold`` left in 64 bits: a value within a float32
      step of a threshold takes the other branch. HistGradientBoosting's thresholds are quantiles of the training
      values and often equal one of them (or an imputed median), so this is common. Each feature is therefore
      recoded as its rank among that feature's thresholds (``k = #{t < x}``, exact integers) and threshold number
      ``i`` becomes ``i + 0.5``: ``x <= t_i`` exactly when ``k < i + 0.5``, in any precision;
    - multiclass HistGradientBoosting grows one tree per class and iteration, which shap stacks into one ensemble
      whose interventional values mix the classes (shap issues #1265, #2750 for the same layout in XGBoost and
      LightGBM): each class gets its own explainer;
    - the same algorithm loses float32-like precision relative to the leaf values (a random forest regressor of a
      target near 90 missed additivity by 4e-6): each tree's root value (its mean) is subtracted from its leaves and
      added to the base offset, which changes no SHAP value (a constant per tree only moves the base value).

    The background goes in as a ``shap.maskers.Independent`` masker sized to it: given a plain array, shap wraps it in
    one with its default ``max_samples=100`` and silently explains against 100 rows drawn with its own seed, so a
    ``train.shap_background_rows`` above 100 would be ignored (and model.json's rows not the ones used).
    """

    def __init__(self, model: Any, background: np.ndarray) -> None:
        import shap

        converted = shap.TreeExplainer(model, feature_perturbation="tree_path_dependent").model
        self.input_dtype = converted.input_dtype  # scikit-learn's trees compare float32(x); HGB float64(x)
        width = background.shape[1]
        split = [(np.asarray(t.features), np.asarray(t.thresholds, dtype=np.float64)) for t in converted.trees]
        self.thresholds = [
            np.unique(np.concatenate([th[f == j] for f, th in split] or [np.empty(0)])) for j in range(width)
        ]
        k = int(getattr(converted, "num_stacked_models", 1) or 1)
        offsets = np.asarray(converted.base_offset, dtype=np.float64).reshape(-1)
        if k > 1:
            groups = [(converted.trees[c::k], offsets[c : c + 1], True) for c in range(k)]
        else:
            groups = [(converted.trees, offsets, False)]
        coded = self.encode(background)
        self.explainers = [
            shap.TreeExplainer(
                {
                    "trees": [self._tree(t, stacked) for t in trees],
                    "base_offset": offset + sum(self._root(t, stacked) for t in trees),
                    "tree_output": converted.tree_output,
                    "input_dtype": np.float64,
                    "internal_dtype": np.float64,
                },
                data=shap.maskers.Independent(coded, max_samples=len(coded)),  # all of them: see the class's doc
                feature_perturbation="interventional",
                model_output="raw",
            )
            for trees, offset, stacked in groups
        ]
        self.expected_value = np.concatenate(
            [np.atleast_1d(np.asarray(e.expected_value, dtype=np.float64)) for e in self.explainers]
        )

    def encode(self, Z: np.ndarray) -> np.ndarray:
        """Rows (n, width) -> each value's rank among its feature's thresholds (``#{t < x}``); NaN stays NaN."""
        X = np.asarray(Z).astype(self.input_dtype).astype(np.float64)
        out = np.empty_like(X)
        for j, thresholds in enumerate(self.thresholds):
            out[:, j] = np.searchsorted(thresholds, X[:, j], side="left")
        out[np.isnan(X)] = np.nan
        return out

    def _tree(self, tree: Any, stacked: bool) -> dict[str, np.ndarray]:
        """One converted tree in shap's dict form with threshold number ``i`` of its feature as ``i + 0.5``;
        ``stacked``: a one-output tree of a stacked ensemble (its first value column)."""
        features = np.asarray(tree.features)
        thresholds = np.asarray(tree.thresholds, dtype=np.float64).copy()
        for node in np.flatnonzero(features >= 0):
            feature_thresholds = self.thresholds[features[node]]
            thresholds[node] = np.searchsorted(feature_thresholds, thresholds[node], side="left") + 0.5
        values = np.asarray(tree.values, dtype=np.float64)
        values = (values[:, :1] if stacked else values) - self._root(tree, stacked)
        keys = ("children_left", "children_right", "children_default", "node_sample_weight")
        return {key: np.asarray(getattr(tree, key)) for key in keys} | {
            "features": features,
            "thresholds": thresholds,
            "values": values,
        }

    @staticmethod
    def _root(tree: Any, stacked: bool) -> np.ndarray:
        """The tree's root value (its training mean), subtracted from its leaves and added to the base offset."""
        values = np.asarray(tree.values, dtype=np.float64)
        return values[0, :1] if stacked else values[0]

    def shap_values(self, Z: np.ndarray) -> np.ndarray:
        """SHAP values of transformed rows ``Z`` (n, width) -> (n, width, outputs). shap's own additivity check is
        skipped (its tolerance is 1e-2); :meth:`Explainer.explain` checks at 1e-6 (relative)."""
        coded = self.encode(Z)
        out = []
        for e in self.explainers:
            v = np.asarray(e.shap_values(coded, check_additivity=False), dtype=np.float64)
            out.append(v[:, :, None] if v.ndim == 2 else v)
        return np.concatenate(out, axis=2)


class _LinearExplainer:
    """``shap.LinearExplainer`` with an ``Independent`` masker on the background; outputs side by side."""

    def __init__(self, model: Any, background: np.ndarray) -> None:
        import shap

        self.explainer = shap.LinearExplainer(model, shap.maskers.Independent(background, max_samples=len(background)))
        self.expected_value = np.atleast_1d(np.asarray(self.explainer.expected_value, dtype=np.float64)).reshape(-1)

    def shap_values(self, Z: np.ndarray) -> np.ndarray:
        """SHAP values of transformed rows ``Z`` (n, width) -> (n, width, outputs)."""
        v = np.asarray(self.explainer.shap_values(Z), dtype=np.float64)
        return v[:, :, None] if v.ndim == 2 else v


# --------------------------------------------------------------------------------------------- global view
def mean_abs_shap(explanation: Explanation) -> tuple[list[dict[str, Any]], dict[str, list[float]]]:
    """The global view: mean |SHAP| per raw feature over the explained rows, averaged over the model's outputs
    (classes), in the unit of the output space.

    Returns ``(rows, per_output)``: ``rows`` = ``[{"feature", "mean_abs_shap"}]`` (6 digits), most important first
    (the DVC plot's data); ``per_output`` = output name -> mean |SHAP| of each feature in ``rows`` order (their
    average over the outputs is ``mean_abs_shap``; the stacked bars of the picture).
    """
    per_output = np.abs(explanation.values).mean(axis=0)  # (f, k)
    overall = per_output.mean(axis=1)
    order = sorted(range(len(explanation.features)), key=lambda j: (-overall[j], j))
    rows = [{"feature": explanation.features[j], "mean_abs_shap": round(float(overall[j]), 6)} for j in order]
    stacked = {str(o): [float(per_output[j, k]) for j in order] for k, o in enumerate(explanation.outputs)}
    return rows, stacked
