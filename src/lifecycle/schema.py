"""The data contract: column roles inferred at ingest, written as JSON, read by every later stage and the server.

Roles: ``numeric`` and ``categorical`` columns are model features; ``datetime`` columns can drive a
time-based split; ``identifier`` columns (row or entity ids) are carried along but never learned from;
``target`` is what the model predicts. For classification the schema lists the target classes.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from lifecycle.errors import DataError
from lifecycle.io import read_json

Role = Literal["numeric", "categorical", "datetime", "identifier", "target"]
Task = Literal["classification", "regression"]
SCHEMA_VERSION = 1


@dataclasses.dataclass(frozen=True)
class Column:
    name: str
    role: Role
    dtype: str
    categories: tuple[str, ...] = ()  # categorical columns: the values seen at ingest


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
        return self.names("categorical")

    @property
    def features(self) -> list[str]:
        return self.names("numeric", "categorical")

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
            "columns": [
                {"name": c.name, "role": c.role, "dtype": c.dtype}
                | ({"categories": list(c.categories)} if c.role == "categorical" else {})
                for c in self.columns
            ],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Schema:
        try:
            columns = tuple(
                Column(c["name"], c["role"], c["dtype"], tuple(c.get("categories", ()))) for c in data["columns"]
            )
            return cls(data["target"], data["task"], columns, tuple(data.get("classes", ())))
        except (KeyError, TypeError) as exc:
            raise DataError(f"schema JSON is malformed (missing {exc}); rerun the ingest stage") from exc


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


_ID_NAME = re.compile(r"(^id$|_id$|^id_|uuid|guid)", re.IGNORECASE)


def infer_schema(
    df: pd.DataFrame,
    target: str,
    task: Task,
    id_columns: Iterable[str] = (),
    max_categories: int = 50,
    source: str = "input",
) -> Schema:
    """Infer each column's role from its dtype, name and cardinality.

    Raises :class:`DataError` for what no model can learn from: no rows, a missing target, a target with
    NaN or a single class, an all-null column, or a text column too varied to be a category.
    """
    if df.empty:
        raise DataError(f"{source}: no rows to learn from; point ingest.source at a file with data")
    if target not in df.columns:
        raise DataError(
            f"{source}: target column {target!r} not found; set ingest.target to one of: "
            f"{', '.join(map(str, df.columns))}"
        )
    explicit_ids = set(id_columns)
    for name in explicit_ids:
        if name not in df.columns:
            raise DataError(f"{source}: ingest.id_columns lists {name!r}, which is not a column")
    n = len(df)
    columns: list[Column] = []
    for name in df.columns:
        s = df[name]
        if name == target:
            continue
        if s.isna().all():
            raise DataError(
                f"{source}: column {name!r} is empty (all {n} values are null); "
                "drop it with ingest.drop_columns or fix the source"
            )
        if name in explicit_ids:
            columns.append(Column(name, "identifier", _dtype(s)))
        elif pd.api.types.is_bool_dtype(s):
            columns.append(Column(name, "categorical", "str", tuple(sorted(map(str, s.dropna().unique())))))
        elif pd.api.types.is_datetime64_any_dtype(s):
            columns.append(Column(name, "datetime", "datetime"))
        elif pd.api.types.is_numeric_dtype(s):
            is_id = _ID_NAME.search(str(name)) and pd.api.types.is_integer_dtype(s) and s.nunique() > 0.5 * n
            columns.append(Column(name, "identifier" if is_id else "numeric", _dtype(s)))
        else:
            values = s.dropna().astype(str)
            nunique = values.nunique()
            if _ID_NAME.search(str(name)) or (nunique > max_categories and nunique > 0.5 * len(values)):
                columns.append(Column(name, "identifier", "str"))
            elif _looks_datetime(values):
                columns.append(Column(name, "datetime", "datetime"))
            elif nunique <= max_categories:
                columns.append(Column(name, "categorical", "str", tuple(sorted(values.unique()))))
            else:
                raise DataError(
                    f"{source}: column {name!r} has {nunique} distinct text values (more than "
                    f"ingest.max_categories={max_categories}); raise that limit, list it in ingest.id_columns, "
                    "or drop it with ingest.drop_columns"
                )
    y = df[target]
    if y.isna().any():
        raise DataError(
            f"{source}: target column {target!r} has {int(y.isna().sum())} null values; "
            "drop or label those rows in the source"
        )
    classes: tuple[Any, ...] = ()
    if task == "classification":
        values = sorted(y.unique().tolist(), key=lambda v: (str(type(v)), v))
        if len(values) < 2:
            raise DataError(
                f"{source}: target column {target!r} has a single class ({values[0]!r}); a classifier needs at "
                "least two, or set ingest.task: regression"
            )
        classes = tuple(_plain(v) for v in values)
        target_dtype = _dtype(y)
    else:
        if not pd.api.types.is_numeric_dtype(y):
            raise DataError(
                f"{source}: target column {target!r} is {y.dtype}, not numeric; regression needs numbers "
                "(or set ingest.task: classification)"
            )
        target_dtype = "float"
    features = [c for c in columns if c.role in ("numeric", "categorical")]
    if not features:
        raise DataError(f"{source}: no numeric or categorical feature columns besides the target {target!r}")
    columns.append(Column(target, "target", target_dtype))
    return Schema(target=target, task=task, columns=tuple(columns), classes=classes)


def _dtype(s: pd.Series) -> str:
    if pd.api.types.is_bool_dtype(s):
        return "bool"
    if pd.api.types.is_integer_dtype(s):
        return "int"
    if pd.api.types.is_float_dtype(s):
        return "float"
    if pd.api.types.is_datetime64_any_dtype(s):
        return "datetime"
    return "str"


def _plain(value: Any) -> Any:
    """numpy scalars -> Python scalars, so classes serialize to JSON."""
    return value.item() if hasattr(value, "item") else value


def _looks_datetime(values: pd.Series) -> bool:
    sample = values.head(200)
    if sample.empty or not sample.str.contains(r"\d{4}-\d{2}-\d{2}", regex=True).all():
        return False
    parsed = pd.to_datetime(sample, errors="coerce", format="ISO8601")
    return bool(parsed.notna().all())


def coerce_frame(df: pd.DataFrame, schema: Schema) -> pd.DataFrame:
    """Give each schema column its canonical dtype (datetime parsed, categoricals as str)."""
    out = df.copy()
    for c in schema.columns:
        if c.name not in out.columns:
            continue
        if c.role == "datetime" and not pd.api.types.is_datetime64_any_dtype(out[c.name]):
            out[c.name] = pd.to_datetime(out[c.name], errors="coerce", format="ISO8601")
        elif c.role in ("categorical", "identifier") and c.dtype == "str":
            out[c.name] = out[c.name].astype("str").where(out[c.name].notna())
    return out


def read_schema(path: str | Path) -> Schema:
    """Load the schema JSON that the ingest stage wrote."""
    return Schema.from_dict(read_json(path))
