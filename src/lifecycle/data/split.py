"""Split: hold out the test rows, by time or by a seeded (stratified) sample."""

from __future__ import annotations

import logging

import pandas as pd
from sklearn.model_selection import train_test_split

from lifecycle.config import Split
from lifecycle.errors import DataError
from lifecycle.schema import Schema, resolve_column

log = logging.getLogger(__name__)


def split(df: pd.DataFrame, schema: Schema, cfg: Split, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(train, test)`` rows of ``df``, each with a fresh 0..n-1 index.

    ``test_size`` (a fraction) of the rows are held out: the latest ones (at least one) when ``cfg.time_column`` is
    set (sorted stably, missing times first; the column may be written as the file's header writes it or
    normalized), else a sample drawn with ``seed`` by
    scikit-learn's ``train_test_split``, stratified by the target for classification when ``cfg.stratify`` (by its
    class codes, which give the same rows as the labels, faster).
    Raises :class:`~lifecycle.errors.DataError` for fewer than 2 rows, a ``time_column`` that is not a datetime
    column of ``schema``, or a class with fewer than 2 rows to stratify.
    """
    if len(df) < 2:
        raise DataError(f"split: {len(df)} row(s) left after validation; at least 2 are needed")
    if cfg.time_column is not None:
        names = [c.name for c in schema.columns]
        time_column = resolve_column(cfg.time_column, names, "split.time_column", "params.yaml")
        if time_column not in schema.datetimes:
            raise DataError(
                f"params.yaml: split.time_column: {cfg.time_column!r} is not a datetime column; "
                f"datetime columns in the schema: {schema.datetimes or 'none'} (or set it to null)"
            )
        ordered = df.sort_values(time_column, kind="stable", na_position="first").reset_index(drop=True)
        cut = len(ordered) - max(1, round(len(ordered) * cfg.test_size))
        train, test = ordered.iloc[:cut], ordered.iloc[cut:]
        log.info("time split on %s at %s", time_column, test[time_column].iloc[0])
        return train.reset_index(drop=True), test.reset_index(drop=True)
    stratify = None
    if cfg.stratify and schema.task == "classification":
        counts = df[schema.target].value_counts()
        rare = counts[counts < 2]
        if not rare.empty:
            raise DataError(
                f"split: class(es) {rare.index.tolist()} of target {schema.target!r} have fewer than 2 rows, "
                "too few to stratify; set split.stratify: false or add rows"
            )
        # The class codes, not the labels: train_test_split's np.unique sorts its input, and sorting millions of
        # strings took most of the split (profile at 1M rows, issue 20). pandas' categories are sorted as
        # np.unique sorts the labels, so the codes number the classes alike and the split is the same rows.
        stratify = pd.Categorical(df[schema.target]).codes
    train, test = train_test_split(df, test_size=cfg.test_size, random_state=seed, stratify=stratify)
    return train.reset_index(drop=True), test.reset_index(drop=True)
