"""lifecycle.data.split: seeded stratified hold-out, hold-out by time, and what cannot be split."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.model_selection import train_test_split

from lifecycle.config import Split
from lifecycle.data.split import split
from lifecycle.errors import DataError
from lifecycle.schema import infer_schema


def frame(n: int = 40) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "x": [float(i) for i in range(n)],
            "at": pd.date_range("2026-01-01", periods=n, freq="h")[::-1],  # newest first
            "label": ["a", "b", "b", "b"] * (n // 4),
        }
    )


def test_stratified_split_is_seeded_and_keeps_class_shares() -> None:
    df = frame(80)
    schema = infer_schema(df, "label", "classification")
    cfg = Split(test_size=0.25, stratify=True, time_column=None)
    train, test = split(df, schema, cfg, seed=3)
    again, _ = split(df, schema, cfg, seed=3)
    pd.testing.assert_frame_equal(train, again)
    assert (len(train), len(test)) == (60, 20)
    assert test["label"].value_counts().to_dict() == {"b": 15, "a": 5}  # 1:3, as in the whole table
    assert list(test.index) == list(range(20))


@pytest.mark.parametrize(
    "labels",
    [
        ["zeta", "Alpha", "alpha", "beta", "beta", "zeta", "zeta", "zeta"],  # unsorted, case differs
        [3, 1, 2, 2, 10, 10, 10, 1],  # integers: 10 after 2, as numbers sort
        pd.array(["ok", "worn", "ok", "failed", "ok", "ok", "worn", "failed"], dtype="string[pyarrow]"),
    ],
)
@pytest.mark.parametrize("seed", [0, 7])
def test_stratifying_by_class_codes_holds_out_the_rows_the_labels_would(labels, seed: int) -> None:
    """split stratifies by the target's class codes (fast) and must hold out exactly the rows that scikit-learn's
    train_test_split holds out when stratified by the labels themselves."""
    n = 400
    target = pd.Series(np.resize(np.asarray(labels, dtype=object), n)).sample(frac=1, random_state=seed)
    df = pd.DataFrame({"x": np.arange(n, dtype=float), "label": target.to_numpy()})
    if isinstance(labels, pd.api.extensions.ExtensionArray):
        df["label"] = df["label"].astype(labels.dtype)
    schema = infer_schema(df, "label", "classification")
    train, test = split(df, schema, Split(test_size=0.3, stratify=True, time_column=None), seed=seed)
    want_train, want_test = train_test_split(df, test_size=0.3, random_state=seed, stratify=df["label"])
    assert train["x"].tolist() == want_train["x"].tolist() and test["x"].tolist() == want_test["x"].tolist()


def test_time_split_holds_out_the_latest_rows() -> None:
    df = frame()
    schema = infer_schema(df, "label", "classification")
    train, test = split(df, schema, Split(test_size=0.1, stratify=True, time_column="at"), seed=3)
    assert len(test) == 4
    assert train["at"].max() < test["at"].min()
    assert test["at"].max() == df["at"].max()


def test_time_column_must_be_a_datetime_column() -> None:
    df = frame()
    schema = infer_schema(df, "label", "classification")
    with pytest.raises(DataError, match=r"split\.time_column: 'x' is not a datetime column"):
        split(df, schema, Split(test_size=0.1, stratify=True, time_column="x"), seed=3)


def test_a_class_of_one_row_cannot_be_stratified() -> None:
    df = pd.concat([frame(), pd.DataFrame({"x": [99.0], "at": [pd.Timestamp("2025-01-01")], "label": ["c"]})])
    schema = infer_schema(df, "label", "classification")
    with pytest.raises(DataError, match=r"class\(es\) \['c'\] .* set split\.stratify: false"):
        split(df, schema, Split(test_size=0.25, stratify=True, time_column=None), seed=3)


def test_one_row_cannot_be_split() -> None:
    df = frame().iloc[:1]
    schema = infer_schema(frame(), "label", "classification")
    with pytest.raises(DataError, match=r"1 row\(s\) left after validation"):
        split(df, schema, Split(test_size=0.25, stratify=False, time_column=None), seed=3)
