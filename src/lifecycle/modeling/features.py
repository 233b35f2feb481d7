"""build_preprocessor(schema) -> an unfitted ColumnTransformer for the schema's feature columns.

Each kind of feature column gets the steps scikit-learn users expect, all inside the one fitted pipeline, so that
evaluate, score and the server compute exactly what training did from the same raw rows:

- numeric: median imputation (and scaling for linear models);
- categorical with a fixed set of categories: one-hot, a missing or unknown value encodes as all zeros;
- categorical with too many values (``infrequent`` in the schema): the frequent values are kept and every other one,
  rare or never seen, becomes one ``infrequent_sklearn`` category (:class:`GroupInfrequent`), then one-hot: the
  effect of ``OneHotEncoder(handle_unknown="infrequent_if_exist")``, with the kept values decided at ingest and
  written in the schema, as one step that converts to ONNX exactly (:mod:`lifecycle.onnx.steps`);
- datetime: hour, day of week, month and days elapsed since the first training date (:class:`DatetimeFeatures`,
  the schema's ``features`` of the column), then median imputation (and scaling for linear models).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from lifecycle.schema import DATETIME_PARTS, Schema, parse_datetimes

INFREQUENT = "infrequent_sklearn"  # the grouped category, named as OneHotEncoder names its infrequent column
SECONDS_PER_DAY = 86400.0
UNIX_EPOCH_WEEKDAY = 3.0  # 1970-01-01 was a Thursday (Monday = 0)


# --------------------------------------------------------------------------------------------- datetimes
def epoch_seconds(values: Any) -> np.ndarray:
    """Seconds since 1970-01-01 UTC as float64, NaN where missing, shape (n,): the one conversion of a datetime
    column (datetime64, tz-aware, ISO 8601 text, ``datetime`` objects) that the pipeline and the ONNX feed share.

    Whole seconds are exact (the integer part is computed in int64 before the fraction is added, and the fraction
    never rounds up into the next second), so a time falls on its own day in every engine."""
    series = values if isinstance(values, pd.Series) else pd.Series(np.asarray(values, dtype=object).ravel())
    ns = parse_datetimes(series).to_numpy(dtype="datetime64[ns]").view("int64")
    missing = ns == np.iinfo(np.int64).min
    whole, rest = np.divmod(ns, 1_000_000_000)
    start = whole.astype(np.float64)
    seconds = start + rest.astype(np.float64) / 1e9
    seconds = np.minimum(seconds, np.nextafter(start + 1.0, -np.inf))  # 23:59:59.9999999 must not round to the next day
    seconds[missing] = np.nan
    return seconds


def datetime_part(seconds: np.ndarray, part: str, origin: np.ndarray | float = 0.0) -> np.ndarray:
    """One derived feature of epoch ``seconds`` (any shape, float64, NaN stays NaN), in float64 arithmetic that
    :mod:`lifecycle.onnx.steps` repeats operation for operation (so ONNX agrees bit for bit):

    ``hour`` 0-23 and ``day_of_week`` 0-6 (Monday = 0) in UTC; ``month`` 1-12 (the proleptic Gregorian calendar,
    H. Hinnant's ``civil_from_days``); ``elapsed_days`` = (seconds - ``origin``) / 86400. Raises ValueError for
    another part."""
    day = np.floor(seconds / SECONDS_PER_DAY)
    if part == "hour":
        return np.floor((seconds - day * SECONDS_PER_DAY) / 3600.0)
    if part == "day_of_week":
        shifted = day + UNIX_EPOCH_WEEKDAY
        return shifted - 7.0 * np.floor(shifted / 7.0)
    if part == "month":
        z = day + 719468.0
        era = np.floor(z / 146097.0)
        doe = z - era * 146097.0
        yoe = np.floor((doe - np.floor(doe / 1460.0) + np.floor(doe / 36524.0) - np.floor(doe / 146096.0)) / 365.0)
        doy = doe - (365.0 * yoe + np.floor(yoe / 4.0) - np.floor(yoe / 100.0))
        mp = np.floor((5.0 * doy + 2.0) / 153.0)
        return mp + 3.0 - 12.0 * np.floor(mp / 10.0)
    if part == "elapsed_days":
        return (seconds - origin) / SECONDS_PER_DAY
    raise ValueError(f"unknown datetime part {part!r}; known: {', '.join(DATETIME_PARTS)}")


class DatetimeFeatures(TransformerMixin, BaseEstimator):
    """Datetime columns -> numeric features ``<column>_<part>`` for each of ``parts`` (see :func:`datetime_part`),
    part after part: shape (n, k columns) -> (n, k * len(parts)), float64, NaN where the date is missing.

    Fitting learns ``origin_``: the start (UTC midnight) of each column's first date, from which
    ``elapsed_days`` counts. Input: a DataFrame (or array) of datetime64 / tz-aware / ISO 8601 text / ``datetime``
    values; time zones are converted to UTC, naive values are taken as UTC."""

    def __init__(self, parts: Sequence[str] = DATETIME_PARTS) -> None:
        self.parts = parts

    def _seconds(self, X: Any) -> np.ndarray:
        frame = X if isinstance(X, pd.DataFrame) else pd.DataFrame(np.asarray(X, dtype=object))
        return np.column_stack([epoch_seconds(frame.iloc[:, j]) for j in range(frame.shape[1])])

    def fit(self, X: Any, y: Any = None) -> DatetimeFeatures:
        unknown = [p for p in self.parts if p not in DATETIME_PARTS]
        if unknown:
            raise ValueError(f"unknown datetime part(s) {unknown}; known: {', '.join(DATETIME_PARTS)}")
        if isinstance(X, pd.DataFrame):
            self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        seconds = self._seconds(X)
        self.n_features_in_ = seconds.shape[1]
        first = np.array([float(np.nanmin(col)) if np.isfinite(col).any() else 0.0 for col in seconds.T])
        self.origin_ = np.floor(first / SECONDS_PER_DAY) * SECONDS_PER_DAY
        return self

    def transform(self, X: Any) -> np.ndarray:
        seconds = self._seconds(X)
        if seconds.shape[1] != self.n_features_in_:
            raise ValueError(f"expected {self.n_features_in_} datetime column(s), got {seconds.shape[1]}")
        return np.hstack([datetime_part(seconds, part, self.origin_) for part in self.parts])

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        names = getattr(self, "feature_names_in_", None)
        if input_features is not None:
            names = input_features
        if names is None:
            names = [f"x{j}" for j in range(self.n_features_in_)]
        return np.asarray([f"{c}_{p}" for p in self.parts for c in names], dtype=object)


# --------------------------------------------------------------------------------------------- categories
class GroupInfrequent(TransformerMixin, BaseEstimator):
    """Text columns -> the same columns with every value outside ``categories[j]`` (rare at ingest, or never seen)
    replaced by :data:`INFREQUENT`; missing values stay missing. ``categories``: one list of kept values per column
    (the schema's). Output: object array of str and NaN, shape (n, k)."""

    def __init__(self, categories: Sequence[Sequence[str]] = ()) -> None:
        self.categories = categories

    def fit(self, X: Any, y: Any = None) -> GroupInfrequent:
        if isinstance(X, pd.DataFrame):
            self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        self.n_features_in_ = np.shape(X)[1]
        if len(self.categories) != self.n_features_in_:
            raise ValueError(f"{len(self.categories)} category lists for {self.n_features_in_} column(s)")
        return self

    def transform(self, X: Any) -> np.ndarray:
        frame = X if isinstance(X, pd.DataFrame) else pd.DataFrame(np.asarray(X, dtype=object))
        out = np.empty(frame.shape, dtype=object)
        for j, kept in enumerate(self.categories):
            column = frame.iloc[:, j]
            text = column.astype(str).to_numpy(dtype=object)
            known = np.isin(text, list(kept))
            out[:, j] = np.where(column.isna().to_numpy(), np.nan, np.where(known, text, INFREQUENT))
        return out

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        names = input_features if input_features is not None else getattr(self, "feature_names_in_", None)
        return np.asarray(names if names is not None else [f"x{j}" for j in range(self.n_features_in_)], dtype=object)


# --------------------------------------------------------------------------------------------- the preprocessor
def build_preprocessor(schema: Schema, scale_numeric: bool = False) -> ColumnTransformer:
    """The preprocessing of ``schema``'s features (see the module doc); ``scale_numeric`` also standardizes numbers
    and datetime features (for linear models).

    Identifier, non-feature datetime and unknown columns are dropped, so the fitted pipeline accepts raw rows as they
    come from ingest, scoring or the API. Unknown categories at prediction time encode as all zeros (fixed category
    sets) or as the infrequent category (columns with too many values).
    """
    numeric_steps: list[tuple[str, object]] = [("impute", SimpleImputer(strategy="median"))]
    if scale_numeric:
        numeric_steps.append(("scale", StandardScaler()))
    fixed = [c for c in schema.categorical if not schema.column(c).infrequent]
    grouped = [c for c in schema.categorical if schema.column(c).infrequent]
    transformers: list[tuple[str, Any, list[str]]] = []
    if schema.numeric:
        transformers.append(("numeric", Pipeline(numeric_steps), schema.numeric))
    if fixed:
        # A missing or unseen category encodes as all zeros (handle_unknown="ignore"): no imputer needed.
        categorical = OneHotEncoder(
            categories=[list(schema.column(c).categories) for c in fixed],
            handle_unknown="ignore",
            sparse_output=False,
            dtype="float64",
        )
        transformers.append(("categorical", categorical, fixed))
    for i, name in enumerate(grouped):
        kept = list(schema.column(name).categories)
        steps = [
            ("group", GroupInfrequent([kept])),
            ("encode", OneHotEncoder(categories=[[*kept, INFREQUENT]], handle_unknown="ignore", sparse_output=False, dtype="float64")),
        ]  # fmt: skip
        transformers.append((f"infrequent{i}", Pipeline(steps), [name]))
    dates = schema.datetime_features
    if dates:
        parts = list(schema.column(dates[0]).parts)
        if any(list(schema.column(c).parts) != parts for c in dates):
            raise ValueError(f"datetime columns {dates} derive different features; ingest derives the same for all")
        date_steps: list[tuple[str, object]] = [
            ("derive", DatetimeFeatures(parts)),
            ("impute", SimpleImputer(strategy="median", keep_empty_features=True)),
        ]
        if scale_numeric:
            date_steps.append(("scale", StandardScaler()))
        transformers.append(("datetime", Pipeline(date_steps), dates))
    return ColumnTransformer(transformers, remainder="drop", verbose_feature_names_out=False)
