"""The data contract: one reviewable YAML file per dataset (``data/contracts/<dataset>.yaml``), parsed and checked.

    dataset: telemetry
    target: fault                 # its `values` are the classes
    row_id: reading_id            # optional: names the original of a quarantined duplicate
    extra_columns: fail           # fail | ignore
    duplicates: quarantine        # quarantine | fail | keep
    columns:
      state_of_health_pct: {type: float, min: 0.0, max: 100.0}
      charge_mode: {type: str, values: [slow, normal, fast]}

:func:`load_contract` reads a file, :func:`parse_contract` a parsed mapping; every error names the file, the key
and the fix. A dataset without a reviewed contract gets :func:`inferred_contract` (:func:`dataset_contract` picks):
only the checks that need no review (the schema's types, the target present and labeled, its classes, no
all-null column; no ranges, no category sets, repeated rows kept), so the pipeline runs while saying loudly that
nobody reviewed what the data should look like. The rules built from a contract live in
:mod:`lifecycle.quality.rules` (row level) and :mod:`lifecycle.quality.gx_suite` (table level).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import pandas as pd
import yaml

from lifecycle.errors import DataError
from lifecycle.schema import Schema, normalize_name

log = logging.getLogger(__name__)

ColumnType = Literal["float", "int", "bool", "str", "datetime"]
# Contract type -> the exact pandas dtype ExpectColumnValuesToBeOfType checks. Not ExpectColumnValuesToBeInTypeList:
# under pandas 3 it rejects the default `str` dtype of text columns.
GX_TYPES: dict[str, str] = {
    "float": "float64",
    "int": "int64",
    "bool": "bool",
    "str": "str",
    "datetime": "datetime64[ns]",  # GE compares the numpy scalar type: any datetime64 resolution passes
}
ALMOST_ALL_NULL = 0.999999  # inferred contracts: a column may miss values, but not all of them
_COLUMN_KEYS = {"type", "nullable", "min", "max", "values", "max_null_fraction", "description"}
_TOP_KEYS = {"dataset", "description", "columns", "target", "row_id", "extra_columns", "duplicates"}


@dataclasses.dataclass(frozen=True)
class ColumnRule:
    """One column of the contract."""

    name: str
    type: ColumnType
    nullable: bool = True  # false: a null is a row-level failure (row quarantined)
    min: Any = None  # numeric bound, or a pd.Timestamp for datetime columns (inclusive)
    max: Any = None
    values: tuple[Any, ...] | None = None  # allowed values (categories, target classes)
    max_null_fraction: float | None = None  # None: validate.max_null_fraction (nullable columns)


@dataclasses.dataclass(frozen=True)
class Contract:
    """A dataset's data contract, as reviewed in ``data/contracts/<dataset>.yaml``."""

    dataset: str
    columns: tuple[ColumnRule, ...]
    target: str | None = None
    row_id: str | None = None  # names quarantined duplicates ("duplicate of row <id>")
    extra_columns: Literal["fail", "ignore"] = "fail"
    duplicates: Literal["quarantine", "fail", "keep"] = "quarantine"
    path: str = ""
    reviewed: bool = True  # False: inferred from the schema (no file at `path`): only checks that need no review

    def column(self, name: str) -> ColumnRule:
        """The rule of column ``name``; raises KeyError when the contract has no such column."""
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(name)

    @property
    def names(self) -> list[str]:
        """The contract's column names, in contract order."""
        return [c.name for c in self.columns]

    @property
    def classes(self) -> tuple[Any, ...]:
        """The target's allowed values (the classes); () without a target or a value set."""
        if self.target is None:
            return ()
        return self.column(self.target).values or ()


def dataset_key(source: str) -> str:
    """The contract's file name for ``ingest.source``: ``telemetry``, or the file's normalized stem."""
    if source == "telemetry":
        return "telemetry"
    stem = Path(str(source).split("?")[0].rstrip("/")).name.split(".")[0]
    return normalize_name(stem)


def contract_path(contracts_dir: str | Path, source: str) -> Path:
    """``<contracts_dir>/<dataset_key(source)>.yaml``: where the contract of ``ingest.source`` lives."""
    return Path(contracts_dir) / f"{dataset_key(source)}.yaml"


def numeric_bounds(contract: Contract, columns: Sequence[str]) -> dict[str, list[float | None]]:
    """``{column: [min, max]}`` of the contract's numeric bounds for ``columns`` (``None`` = unbounded side):
    the range the training rows were held to, which the packager records in model.json for the server."""
    bounds: dict[str, list[float | None]] = {}
    for c in contract.columns:
        if c.name in columns and c.type in ("float", "int") and (c.min is not None or c.max is not None):
            bounds[c.name] = [None if c.min is None else float(c.min), None if c.max is None else float(c.max)]
    return bounds


def inferred_contract(schema: Schema, dataset: str, path: str | Path, df: pd.DataFrame | None = None) -> Contract:
    """The contract of a dataset nobody has reviewed yet (``reviewed=False``; ``path`` is where a reviewed one
    would live): the checks that need no review, so they pass on any data ingest accepted unless it is unusable.

    Every schema column with its type (the dtype of ``df``'s column when given, else the one its role gets in a
    batch: numbers float, text str, datetimes datetime), no ranges and no category sets; the target not null (rows
    without it are quarantined as unlabeled) with the classes as its values; any other column may miss values, but
    not all of them; extra columns fail; repeated rows are kept (whether they are errors needs a review).
    """
    from lifecycle.quality.rules import column_kind  # rules imports this module

    rules = []
    for c in schema.columns:
        if df is not None and c.name in df.columns:
            kind = column_kind(df[c.name])
        else:
            kind = {"numeric": "float", "datetime": "datetime"}.get(c.role, "str")
            if c.role == "target":
                kind = c.dtype if c.dtype in GX_TYPES else "str"
        if c.role == "target":
            values = tuple(schema.classes) if schema.task == "classification" else None
            rules.append(ColumnRule(c.name, kind, nullable=False, values=values))  # type: ignore[arg-type]
        else:
            rules.append(ColumnRule(c.name, kind, max_null_fraction=ALMOST_ALL_NULL))  # type: ignore[arg-type]
    return Contract(
        dataset=dataset,
        columns=tuple(rules),
        target=schema.target,
        extra_columns="fail",
        duplicates="keep",
        path=str(path),
        reviewed=False,
    )


def dataset_contract(
    contracts_dir: str | Path, source: str, schema: Schema, df: pd.DataFrame | None = None
) -> Contract:
    """The reviewed contract of ``ingest.source`` (``<contracts_dir>/<dataset>.yaml``) when it exists, else
    :func:`inferred_contract` (logged as a warning naming the file to write and the command that starts it).
    Raises :class:`DataError` for a contract file that exists but is invalid."""
    path = contract_path(contracts_dir, source)
    if path.exists():
        return load_contract(path)
    log.warning(
        "no reviewed data contract at %s: checking only what needs no review; write one with `make suite` "
        "(python -m lifecycle.quality suggest), review it and commit it",
        path,
    )
    return inferred_contract(schema, dataset_key(source), path, df)


def load_contract(path: str | Path) -> Contract:
    """Read and check a contract YAML file.

    Raises :class:`DataError` naming the file for a missing file (with the command that writes a starter), invalid
    YAML, or any rule :func:`parse_contract` refuses.
    """
    p = Path(path)
    if not p.exists():
        raise DataError(
            f"{p}: no data contract for this dataset; generate a starter with `make suite` "
            f"(python -m lifecycle.quality suggest --out {p}), review it and commit it"
        )
    try:
        raw = yaml.safe_load(p.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise DataError(f"{p}: not valid YAML ({exc})") from exc
    return parse_contract(raw, str(p))


def parse_contract(raw: Any, source: str = "contract") -> Contract:
    """Build a :class:`Contract` from parsed YAML.

    Raises :class:`DataError` naming ``source`` and the dotted key for an unknown key, an unknown type, a bound
    that is not a number (or not an ISO date for datetime columns), ``min > max``, a null fraction outside [0, 1],
    or a ``target``/``row_id`` that is not one of the columns.
    """
    if not isinstance(raw, Mapping):
        raise DataError(f"{source}: a contract is a mapping with `dataset` and `columns`")
    unknown = sorted(set(raw) - _TOP_KEYS)
    if unknown:
        raise DataError(f"{source}: unknown key(s) {unknown}; known: {', '.join(sorted(_TOP_KEYS))}")
    cols = raw.get("columns")
    if not isinstance(cols, Mapping) or not cols:
        raise DataError(f"{source}: `columns` must map each column name to its rules")
    rules = tuple(_column_rule(str(name), spec, source) for name, spec in cols.items())
    names = [r.name for r in rules]
    contract = Contract(
        dataset=str(raw.get("dataset", Path(source).stem)),
        columns=rules,
        target=raw.get("target"),
        row_id=raw.get("row_id"),
        extra_columns=raw.get("extra_columns", "fail"),
        duplicates=raw.get("duplicates", "quarantine"),
        path=source,
    )
    for key in ("target", "row_id"):
        value = getattr(contract, key)
        if value is not None and value not in names:
            raise DataError(f"{source}: {key}: {value!r} is not one of the contract's columns")
    if contract.extra_columns not in ("fail", "ignore"):
        raise DataError(f"{source}: extra_columns: {contract.extra_columns!r}; use fail or ignore")
    if contract.duplicates not in ("quarantine", "fail", "keep"):
        raise DataError(f"{source}: duplicates: {contract.duplicates!r}; use quarantine, fail or keep")
    return contract


def _column_rule(name: str, spec: Any, source: str) -> ColumnRule:
    where = f"{source}: columns.{name}"
    if not isinstance(spec, Mapping):
        raise DataError(f"{where}: expected a mapping such as {{type: float, min: 0, max: 100}}")
    unknown = sorted(set(spec) - _COLUMN_KEYS)
    if unknown:
        raise DataError(f"{where}: unknown key(s) {unknown}; known: {', '.join(sorted(_COLUMN_KEYS))}")
    kind = spec.get("type")
    if kind not in GX_TYPES:
        raise DataError(f"{where}.type: {kind!r}; use one of {', '.join(GX_TYPES)}")
    values = spec.get("values")
    if values is not None and not isinstance(values, list):
        raise DataError(f"{where}.values: expected a list of allowed values")
    lo, hi = spec.get("min"), spec.get("max")
    if kind == "datetime":
        lo, hi = (_timestamp(v, f"{where}.{k}") for v, k in ((lo, "min"), (hi, "max")))
    elif (lo is not None or hi is not None) and kind not in ("float", "int"):
        raise DataError(f"{where}: min/max apply to float, int and datetime columns, not {kind}")
    else:
        for v, k in ((lo, "min"), (hi, "max")):
            if v is not None and (isinstance(v, bool) or not isinstance(v, int | float)):
                raise DataError(f"{where}.{k}: {v!r} is not a number")
    if lo is not None and hi is not None and lo > hi:
        raise DataError(f"{where}: min {lo} is greater than max {hi}")
    mnf = spec.get("max_null_fraction")
    if mnf is not None and not (isinstance(mnf, int | float) and 0 <= mnf <= 1):
        raise DataError(f"{where}.max_null_fraction: {mnf!r} must be a number in [0, 1]")
    if values is not None and kind == "str":
        values = [str(v) for v in values]  # YAML reads `yes`/`no` as booleans; text columns compare text
    return ColumnRule(
        name=name,
        type=kind,
        nullable=bool(spec.get("nullable", True)),
        min=lo,
        max=hi,
        values=tuple(values) if values is not None else None,
        max_null_fraction=float(mnf) if mnf is not None else None,
    )


def _timestamp(value: Any, where: str) -> pd.Timestamp | None:
    if value is None:
        return None
    try:
        return pd.Timestamp(value)
    except (TypeError, ValueError) as exc:
        raise DataError(f"{where}: {value!r} is not an ISO date/time such as '2025-01-01'") from exc
