"""The data contract: column roles inferred at ingest, written as JSON, read by every later stage and the server.

Roles: ``numeric`` and ``categorical`` columns are model features; ``datetime`` columns can drive a
time-based split, and are features too when the schema lists the ``features`` derived from them (hour, day of
week, month, elapsed days: computed inside the fitted pipeline, :mod:`lifecycle.modeling.features`);
``identifier`` columns (row or entity ids, per-row-unique text) are carried along but never learned from;
``target`` is what the model predicts. For classification the schema lists the target classes. A categorical
column with ``infrequent: true`` had too many distinct values to keep them all: its ``categories`` are the
frequent ones, and every other value (rare at ingest, or never seen) is one "infrequent" category.

Columns are named as :func:`normalize_name` writes them; a name in params.yaml may be written either way
(:func:`resolve_column`).
"""

from __future__ import annotations

import dataclasses
import logging
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from lifecycle.errors import DataError
from lifecycle.io import read_json

log = logging.getLogger(__name__)
Role = Literal["numeric", "categorical", "datetime", "identifier", "target"]
Task = Literal["classification", "regression"]
SCHEMA_VERSION = 1
DATETIME_PARTS = ("hour", "day_of_week", "month", "elapsed_days")  # = lifecycle.config.DATETIME_PARTS


@dataclasses.dataclass(frozen=True)
class Column:
    name: str
    role: Role
    dtype: str
    categories: tuple[
        str, ...
    ] = ()  # categorical columns: the values the model knows (the frequent ones if infrequent)
    infrequent: bool = False  # categorical: values outside `categories` are grouped as one "infrequent" category
    parts: tuple[str, ...] = ()  # datetime columns: the features derived from it (empty: not learned from)


@dataclasses.dataclass(frozen=True)
class Schema:
    target: str
    task: Task
    columns: tuple[Column, ...]
    classes: tuple[Any, ...] = ()  # classification: sorted target values

    # ----------------------------------------------------------------------------------------- views
    def names(self, *roles: Role) -> list[str]:
        return [c.name for c in self.columns if c.role in roles]

    @property
    def numeric(self) -> list[str]:
        return self.names("numeric")

    @property
    def categorical(self) -> list[str]:
        """Categorical features, with a fixed category set or with infrequent values grouped."""
        return self.names("categorical")

    @property
    def datetime_features(self) -> list[str]:
        """Datetime columns the model learns from (through the features derived from them)."""
        return [c.name for c in self.columns if c.role == "datetime" and c.parts]

    @property
    def features(self) -> list[str]:
        """The model's input columns, in schema order: numeric, categorical and datetime features."""
        return [
            c.name for c in self.columns if c.role in ("numeric", "categorical") or (c.role == "datetime" and c.parts)
        ]

    @property
    def identifiers(self) -> list[str]:
        return self.names("identifier")

    @property
    def datetimes(self) -> list[str]:
        return self.names("datetime")

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(name)

    # ----------------------------------------------------------------------------------------- JSON
    def to_dict(self) -> dict[str, Any]:
        return {
            "version": SCHEMA_VERSION,
            "target": self.target,
            "task": self.task,
            "classes": list(self.classes),
            "columns": [_column_dict(c) for c in self.columns],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Schema:
        try:
            columns = tuple(
                Column(
                    c["name"],
                    c["role"],
                    c["dtype"],
                    tuple(c.get("categories", ())),
                    bool(c.get("infrequent", False)),
                    tuple(c.get("features", ())),
                )
                for c in data["columns"]
            )
            return cls(data["target"], data["task"], columns, tuple(data.get("classes", ())))
        except (KeyError, TypeError) as exc:
            raise DataError(f"schema JSON is malformed (missing {exc}); rerun the ingest stage") from exc


def _column_dict(c: Column) -> dict[str, Any]:
    """A column as schema.json writes it: optional keys only where they say something."""
    out: dict[str, Any] = {"name": c.name, "role": c.role, "dtype": c.dtype}
    if c.role == "categorical":
        out["categories"] = list(c.categories)
        if c.infrequent:
            out["infrequent"] = True
    if c.parts:
        out["features"] = list(c.parts)
    return out


# --------------------------------------------------------------------------------------------- helpers
def normalize_name(name: str) -> str:
    """``"Fixed Acidity"`` -> ``"fixed_acidity"``: lower case, runs of non-alphanumerics become ``_``."""
    out = re.sub(r"[^0-9a-zA-Z]+", "_", str(name).strip()).strip("_").lower()
    return out or "column"


def normalize_columns(df: pd.DataFrame) -> pd.DataFrame:
    """Rename columns with :func:`normalize_name`; two columns that collide are an error naming both."""
    mapping = {c: normalize_name(c) for c in df.columns}
    seen: dict[str, str] = {}
    for old, new in mapping.items():
        if new in seen:
            raise DataError(f"columns {seen[new]!r} and {old!r} both normalize to {new!r}; rename one in the source")
        seen[new] = old
    return df.rename(columns=mapping)


def resolve_column(
    name: str,
    columns: Iterable[str],
    key: str,
    source: str = "input",
    written: Mapping[str, str] | None = None,
) -> str:
    """The column of ``columns`` that params key ``key`` names with ``name``: the column itself, the header as the
    file writes it (``written``: column -> header as written), or any spelling that :func:`normalize_name` maps to
    it (``"Survived"``, ``"Fixed Acidity"``, ``"fixed acidity"`` all name ``survived`` / ``fixed_acidity``).

    Raises :class:`DataError` naming ``source``, the key and the columns (as the file writes them) when none
    matches, or when ``name`` matches two columns.
    """
    columns = list(columns)
    written = dict(written or {})
    if name in columns:
        return name
    by_header = [c for c in columns if written.get(c) == name]
    if len(by_header) == 1:
        return by_header[0]
    wanted = normalize_name(name)
    matches = [c for c in columns if normalize_name(c) == wanted or normalize_name(written.get(c, c)) == wanted]
    if len(matches) == 1:
        return matches[0]
    shown = ", ".join(_as_written(c, written) for c in columns)
    if matches:
        raise DataError(
            f"{source}: {key}: {name!r} matches columns {matches}; write the name exactly as one of: {shown}"
        )
    close = [c for c in columns if wanted and (wanted in normalize_name(c) or normalize_name(c) in wanted)]
    hint = f" (did you mean {_as_written(close[0], written)}?)" if len(close) == 1 else ""
    if key.endswith("_columns"):  # a list of columns
        raise DataError(f"{source}: {key} lists {name!r}, which is not a column{hint}; columns: {shown}")
    raise DataError(f"{source}: {key}: column {name!r} not found{hint}; set {key} to one of: {shown}")


def _as_written(column: str, written: Mapping[str, str]) -> str:
    """``'Fixed Acidity' (or fixed_acidity)``: a column as the file's header writes it, and as normalized."""
    header = written.get(column, column)
    return repr(column) if header == column else f"{header!r} (or {column})"


_ID_NAME = re.compile(r"(^id$|_id$|^id_|uuid|guid)", re.IGNORECASE)


def infer_schema(
    df: pd.DataFrame,
    target: str,
    task: Task,
    id_columns: Iterable[str] = (),
    max_categories: int = 50,
    source: str = "input",
    *,
    min_category_rows: int = 5,
    datetime_features: Iterable[str] = (),
    written: Mapping[str, str] | None = None,
) -> Schema:
    """Infer each column's role from its dtype, name and cardinality; dates are tried before identifiers.

    - booleans are categorical; datetime columns (tz-aware or not, or ISO 8601 text) are ``datetime``, learned from
      through ``datetime_features`` (ingest passes ``ingest.datetime_features``; empty, the default here: only
      carried along); numbers are ``numeric`` unless an integer column
      named like an id (``*_id``, ``uuid``) is mostly unique;
    - text is categorical when it has at most ``max_categories`` distinct values; with more, its values seen in
      at least ``min_category_rows`` rows (at most ``max_categories``, the most frequent) are kept and the rest
      grouped (``infrequent``); text with no value that frequent (per-row-unique text: names, free text, codes) is
      an ``identifier``, carried along and never learned from;
    - ``target`` and ``id_columns`` may be written as the file's header writes them (``written``: column -> header)
      or normalized (:func:`resolve_column`). Rows without a target stay (the gate quarantines them as unlabeled).

    Raises :class:`DataError` for what no model can learn from: no rows, a missing target, a target with no value or
    a single class, an all-null column, or no feature at all; each message names the column and the fix.
    """
    if df.empty:
        raise DataError(f"{source}: no rows to learn from; point ingest.source at a file with data")
    written = dict(written or {})
    target = resolve_column(target, df.columns, "ingest.target", source, written)
    explicit_ids = {resolve_column(name, df.columns, "ingest.id_columns", source, written) for name in id_columns}
    parts = tuple(datetime_features)
    n = len(df)
    columns: list[Column] = []
    for name in df.columns:
        s = df[name]
        if name == target:
            continue
        if s.isna().all():
            raise DataError(
                f"{source}: column {_as_written(name, written)} is empty (all {n} values are null); "
                "drop it with ingest.drop_columns or fix the source"
            )
        columns.append(_infer_column(name, s, explicit_ids, max_categories, min_category_rows, parts))
    y = df[target]
    labeled = y.dropna()
    if labeled.empty:
        raise DataError(
            f"{source}: target column {_as_written(target, written)} has no values (all {n} rows are null); "
            "label the rows in the source or set ingest.target to another column"
        )
    if len(labeled) < n:
        log.warning(
            "%s: %d of %d rows have no %s (unlabeled); validate quarantines them (validate.max_unlabeled_fraction)",
            source, n - len(labeled), n, target,
        )  # fmt: skip
    classes: tuple[Any, ...] = ()
    if task == "classification":
        target_dtype = _label_dtype(labeled)
        values = sorted({_plain(v) for v in _labels(labeled, target_dtype)}, key=lambda v: (str(type(v)), v))
        if len(values) < 2:
            raise DataError(
                f"{source}: target column {target!r} has a single class ({values[0]!r}); a classifier needs at "
                "least two, or set ingest.task: regression"
            )
        if (
            pd.api.types.is_float_dtype(labeled)
            and target_dtype == "float"
            and len(values) > max(max_categories, len(labeled) // 2)
        ):
            raise DataError(
                f"{source}: target column {target!r} holds {len(values)} distinct numbers in {len(labeled)} rows, "
                "too many to be classes; set ingest.task: regression"
            )
        classes = tuple(values)
    else:
        if not pd.api.types.is_numeric_dtype(y) or pd.api.types.is_bool_dtype(y):
            raise DataError(
                f"{source}: target column {target!r} is {y.dtype}, not numeric; regression needs numbers "
                "(or set ingest.task: classification)"
            )
        target_dtype = "float"
    features = [c for c in columns if c.role in ("numeric", "categorical") or (c.role == "datetime" and c.parts)]
    if not features:
        raise DataError(
            f"{source}: no feature columns besides the target {target!r} (every other column is an identifier or "
            "a date not learned from); list fewer columns in ingest.id_columns or ingest.drop_columns"
        )
    columns.append(Column(target, "target", target_dtype))
    return Schema(target=target, task=task, columns=tuple(columns), classes=classes)


def _infer_column(
    name: str,
    s: pd.Series,
    explicit_ids: set[str],
    max_categories: int,
    min_category_rows: int,
    parts: tuple[str, ...],
) -> Column:
    """One non-target column's role (see :func:`infer_schema`)."""
    if name in explicit_ids:
        return Column(name, "identifier", "str")
    if pd.api.types.is_bool_dtype(s):
        return Column(name, "categorical", "str", tuple(sorted(map(str, s.dropna().unique()))))
    if pd.api.types.is_datetime64_any_dtype(s):
        return Column(name, "datetime", "datetime", parts=parts)
    if pd.api.types.is_numeric_dtype(s):
        whole = pd.api.types.is_integer_dtype(s) or _whole(s.dropna())
        if _ID_NAME.search(str(name)) and whole and s.nunique() > 0.5 * len(s):
            return Column(name, "identifier", "str")
        return Column(name, "numeric", "float")
    values = s.dropna().astype(str)
    if _looks_datetime(values):
        return Column(name, "datetime", "datetime", parts=parts)
    if _ID_NAME.search(str(name)):
        return Column(name, "identifier", "str")
    counts = values.value_counts()
    if len(counts) <= max_categories:
        return Column(name, "categorical", "str", tuple(sorted(counts.index)))
    frequent = counts[counts >= min_category_rows]
    if frequent.empty:
        log.info(
            "column %s: %d distinct values, none in %d rows or more: an identifier",
            name,
            len(counts),
            min_category_rows,
        )
        return Column(name, "identifier", "str")
    ranked = sorted(frequent.items(), key=lambda kv: (-kv[1], kv[0]))[:max_categories]
    kept = tuple(sorted(k for k, _ in ranked))
    log.info(
        "column %s: %d distinct values; keeping the %d seen in >= %d rows (ingest.max_categories=%d, "
        "min_category_rows=%d), the other %d grouped as infrequent",
        name, len(counts), len(kept), min_category_rows, max_categories, min_category_rows, len(counts) - len(kept),
    )  # fmt: skip
    return Column(name, "categorical", "str", kept, infrequent=True)


def _whole(values: pd.Series) -> bool:
    """True when every value of a float series is a whole number (an integer column that had blanks)."""
    v = values.to_numpy(dtype="float64", na_value=np.nan)
    return bool(len(v)) and bool(np.all(np.isfinite(v) & (v == np.round(v))))


def _label_dtype(labeled: pd.Series) -> str:
    """The target's dtype as the schema names it, from its non-null values: bool, int (whole numbers, also when
    blanks made the column float), float or str."""
    if pd.api.types.is_bool_dtype(labeled) or (
        labeled.dtype == object and labeled.map(lambda v: isinstance(v, bool | np.bool_)).all()
    ):
        return "bool"
    if pd.api.types.is_integer_dtype(labeled) or (pd.api.types.is_float_dtype(labeled) and _whole(labeled)):
        return "int"
    if pd.api.types.is_float_dtype(labeled):
        return "float"
    return "str"


def _labels(values: pd.Series, dtype: str) -> pd.Series:
    """Non-null target values as their schema dtype (whole floats as ints, text as str)."""
    if dtype == "int":
        return values.astype("int64")
    if dtype == "bool":
        return values.astype(bool)
    if dtype == "str":
        return values.astype(str)
    return values


def _plain(value: Any) -> Any:
    """numpy scalars -> Python scalars, so classes serialize to JSON."""
    return value.item() if hasattr(value, "item") else value


_ISO_DATE = re.compile(r"^\s*\d{4}-\d{2}-\d{2}")


def _looks_datetime(values: pd.Series) -> bool:
    """ISO 8601 text (``2025-03-01``, ``2025-03-01 14:05``, ``2025-03-01T14:05:00+02:00``): a sample of up to
    200 values all match and parse. Other date formats are found by :func:`lifecycle.data.readers.check_text_columns`
    (with the read_options fix)."""
    sample = values.head(200)
    if sample.empty or not sample.str.match(_ISO_DATE).all():
        return False
    parsed = parse_datetimes(sample)
    return bool(parsed.notna().all())


def parse_datetimes(values: pd.Series) -> pd.Series:
    """Datetimes as naive UTC ``datetime64[ns]``: timezone-aware values converted to UTC, naive ones taken as UTC,
    ISO 8601 text parsed (mixed offsets allowed); what does not parse is NaT."""
    if pd.api.types.is_datetime64_any_dtype(values):
        out = values
        if getattr(values.dt, "tz", None) is not None:
            out = values.dt.tz_convert("UTC").dt.tz_localize(None)
    else:
        out = pd.to_datetime(values, errors="coerce", format="ISO8601", utc=True).dt.tz_localize(None)
    return out.astype("datetime64[ns]")


def _text(s: pd.Series) -> pd.Series:
    """A column as text with nulls kept; whole floats (an integer column with blanks) without a trailing ``.0``."""
    if pd.api.types.is_float_dtype(s) and _whole(s.dropna()):
        s = s.astype("Int64")
    return s.astype("str").where(s.notna())


def coerce_frame(df: pd.DataFrame, schema: Schema) -> pd.DataFrame:
    """Give each schema column its canonical dtype: datetimes naive UTC ``datetime64[ns]``, numbers float64 (a blank
    in an integer column is a null, not a type change), categoricals and identifiers text, a classification target
    its label type (nullable ``Int64``/``boolean`` while unlabeled rows are in)."""
    out = df.copy()
    for c in schema.columns:
        if c.name not in out.columns:
            continue
        s = out[c.name]
        if c.role == "datetime":
            out[c.name] = parse_datetimes(s)
        elif c.role == "numeric":
            out[c.name] = pd.Series(s.to_numpy(dtype="float64", na_value=np.nan), index=s.index)
        elif c.role in ("categorical", "identifier") and c.dtype == "str":
            out[c.name] = _text(s)
        elif c.role == "target" and schema.task == "classification":
            out[c.name] = label_series(s, c.dtype)
    return out


def label_series(s: pd.Series, dtype: str) -> pd.Series:
    """A classification target as its schema ``dtype``: ``int`` -> int64 (``Int64`` with nulls), ``bool`` -> bool
    (``boolean`` with nulls), ``str`` -> text with nulls kept; ``float`` unchanged."""
    has_null = bool(s.isna().any())
    if dtype == "int":
        return s.astype("Int64") if has_null else s.astype("int64")
    if dtype == "bool":
        return s.astype("boolean") if has_null else s.astype(bool)
    if dtype == "str":
        return s.astype("str").where(s.notna())
    return s


def read_schema(path: str | Path) -> Schema:
    """Load the schema JSON that the ingest stage wrote."""
    return Schema.from_dict(read_json(path))
