"""build_preprocessor(schema) -> an unfitted ColumnTransformer for the schema's feature columns."""

from __future__ import annotations

from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from lifecycle.schema import Schema


def build_preprocessor(schema: Schema, scale_numeric: bool = False) -> ColumnTransformer:
    """Impute (median) and optionally scale numeric columns; one-hot encode categorical columns.

    Identifier, datetime and unknown columns are dropped, so the fitted pipeline accepts raw rows as they
    come from ingest, scoring or the API. Unknown categories at prediction time encode as all zeros.
    """
    numeric_steps: list[tuple[str, object]] = [("impute", SimpleImputer(strategy="median"))]
    if scale_numeric:
        numeric_steps.append(("scale", StandardScaler()))
    # A missing or unseen category encodes as all zeros (handle_unknown="ignore"): no imputer needed.
    categorical = OneHotEncoder(
        categories=[list(schema.column(c).categories) for c in schema.categorical],
        handle_unknown="ignore",
        sparse_output=False,
        dtype="float64",
    )
    transformers = []
    if schema.numeric:
        transformers.append(("numeric", Pipeline(numeric_steps), schema.numeric))
    if schema.categorical:
        transformers.append(("categorical", categorical, schema.categorical))
    return ColumnTransformer(transformers, remainder="drop", verbose_feature_names_out=False)
