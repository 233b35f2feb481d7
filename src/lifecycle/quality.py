"""The data quality gate: a reviewable YAML data contract, checked with Great Expectations, bad rows quarantined.

The contract (``data/contracts/<dataset>.yaml``, one per dataset, reviewed in pull requests) declares each
column's type, nullability, numeric range, value set or datetime window, the target's classes, and what to do
with duplicated rows. :func:`load_contract` reads it; :func:`validate_frame` turns it into two Great
Expectations suites and decides:

* **row-level rules** (a value out of range, an unknown category, a timestamp outside the window, a null in a
  non-nullable column, a repeated row) quarantine the rows that break them, each with a readable ``reason``;
  the clean rows go on as long as the quarantined fraction is at most ``validate.max_bad_row_fraction``;
* **table-level rules** (a missing or unexpected column, a wrong dtype, too few or too many rows, too many
  nulls in a column, a target class gone or below ``validate.min_class_rows``) fail the whole batch.

Who computes what: the per-row quarantine mask is vectorized pandas, built from the same rule objects that
build the Great Expectations suites (one declaration, two evaluations). Great Expectations gives the verdict
on the table-level suite (run on the clean rows: what goes downstream) and the statistics and example values
of the row-level suite. With ``validate.row_expectations_on: flagged`` (the default) the row-level suite runs on
the rows the mask flagged plus every copy of a duplicated row, and GE's counts must equal the mask's (a
disagreement fails the gate as an internal error); with ``all`` GE re-checks every row (slower; see
docs/benchmarks.md).

    python -m lifecycle.quality suggest [--params params.yaml] [--data RAW] [--schema SCHEMA] [--out YAML] [--force]
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import gc
import importlib
import importlib.util
import logging
import math
import os
import sys
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import yaml

from lifecycle import cli
from lifecycle.config import Validate, load_params
from lifecycle.errors import DataError, GateError
from lifecycle.io import dumps_json, read_parquet, write_text
from lifecycle.schema import Schema, normalize_name, read_schema

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
REASON = "reason"
EXAMPLES = 5  # example values per failed rule in messages and reports
_COLUMN_KEYS = {"type", "nullable", "min", "max", "values", "max_null_fraction", "description"}
_TOP_KEYS = {"dataset", "description", "columns", "target", "row_id", "extra_columns", "duplicates"}


# --------------------------------------------------------------------------------------------- contract
@dataclasses.dataclass(frozen=True)
class ColumnRule:
    """One column of the contract."""

    name: str
    type: ColumnType
    nullable: bool = True  # false: a null is a row-level failure (row quarantined)
    min: Any = None  # numeric bound, or an ISO date/time for datetime columns (inclusive)
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

    def column(self, name: str) -> ColumnRule:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(name)

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def classes(self) -> tuple[Any, ...]:
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


def load_contract(path: str | Path) -> Contract:
    """Read and check a contract YAML; errors name the file, the key and the fix."""
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
    """Build a :class:`Contract` from parsed YAML (see :func:`load_contract`)."""
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


# --------------------------------------------------------------------------------------------- rules
@dataclasses.dataclass(frozen=True)
class RowRule:
    """A row-level rule: evaluated as a pandas mask (quarantine) and as a GE expectation (statistics)."""

    id: str  # e.g. "state_of_health_pct.between"; metric key
    kind: Literal["between", "in_set", "not_null", "unique_rows"]
    column: str | None
    columns: tuple[str, ...] = ()  # unique_rows: the compared columns
    min: Any = None
    max: Any = None
    values: tuple[Any, ...] = ()

    @property
    def threshold(self) -> str:
        if self.kind == "between":
            return f"[{_fmt(self.min) if self.min is not None else '-inf'}, {_fmt(self.max) if self.max is not None else 'inf'}]"
        if self.kind == "in_set":
            return _fmt_set(self.values)
        if self.kind == "not_null":
            return "not null"
        return "no repeated rows"

    def expectation(self) -> Any:
        import great_expectations as gx

        meta = {"rule": self.id, "level": "row"}
        if self.kind == "between":
            lo, hi = (v.to_pydatetime() if isinstance(v, pd.Timestamp) else v for v in (self.min, self.max))
            return gx.expectations.ExpectColumnValuesToBeBetween(
                column=self.column, min_value=lo, max_value=hi, meta=meta
            )
        if self.kind == "in_set":
            return gx.expectations.ExpectColumnValuesToBeInSet(
                column=self.column, value_set=list(self.values), meta=meta
            )
        if self.kind == "not_null":
            return gx.expectations.ExpectColumnValuesToNotBeNull(column=self.column, meta=meta)
        return gx.expectations.ExpectCompoundColumnsToBeUnique(column_list=list(self.columns), meta=meta)

    def mask(self, df: pd.DataFrame) -> pd.Series:
        """True where the row breaks the rule (nulls break only ``not_null``, as in GE)."""
        s = df[self.column]
        if self.kind == "between":
            bad = pd.Series(False, index=df.index)
            if self.min is not None:
                bad |= s < self.min
            if self.max is not None:
                bad |= s > self.max
            return bad & s.notna()
        if self.kind == "in_set":
            return s.notna() & ~s.isin(list(self.values))
        return s.isna()

    def reasons(self, df: pd.DataFrame) -> pd.Series:
        """``column=value <rule>`` for the rows of ``df`` (already known to break the rule)."""
        if self.kind == "not_null":
            return pd.Series(f"{self.column} is null", index=df.index)
        text = df[self.column].map(_fmt)
        what = "outside" if self.kind == "between" else "not in"
        return f"{self.column}=" + text + f" {what} {self.threshold}"


def _fmt(value: Any) -> str:
    if isinstance(value, pd.Timestamp | dt.datetime):
        ts = pd.Timestamp(value)
        return ts.strftime("%Y-%m-%d") if ts == ts.normalize() else ts.isoformat()
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, float | np.floating) and float(value).is_integer() and abs(value) < 1e15:
        return f"{float(value):.1f}"
    return str(value)


def _fmt_set(values: Sequence[Any], limit: int = 12) -> str:
    shown = ", ".join(_fmt(v) for v in list(values)[:limit])
    more = f", ... ({len(values)} values)" if len(values) > limit else ""
    return f"{{{shown}{more}}}"


def row_rules(contract: Contract) -> list[RowRule]:
    """The contract's row-level rules, in contract order (duplicates last)."""
    rules: list[RowRule] = []
    for c in contract.columns:
        if not c.nullable:
            rules.append(RowRule(f"{c.name}.not_null", "not_null", c.name))
        if c.min is not None or c.max is not None:
            rules.append(RowRule(f"{c.name}.between", "between", c.name, min=c.min, max=c.max))
        if c.values is not None:
            rules.append(RowRule(f"{c.name}.in_set", "in_set", c.name, values=c.values))
    if contract.duplicates != "keep":
        rules.append(RowRule("rows.unique", "unique_rows", None, columns=tuple(contract.names)))
    return rules


def dtype_matches(series: pd.Series, kind: str) -> bool:
    """The pandas side of ExpectColumnValuesToBeOfType(type_=GX_TYPES[kind]): the same exact-type test."""
    expected = GX_TYPES[kind]
    if kind == "str":
        return series.dtype.type is str
    return series.dtype.type is np.dtype(expected).type


def table_expectations(contract: Contract, schema: Schema, cfg: Validate) -> list[Any]:
    """Table-level suite, run on the clean rows: columns, dtypes, row count, null fractions, classes present."""
    import great_expectations as gx

    E = gx.expectations
    exps: list[Any] = []

    def meta(rule: str) -> dict[str, str]:
        return {"rule": rule, "level": "table"}

    if contract.extra_columns == "fail":
        exps.append(
            E.ExpectTableColumnsToMatchSet(column_set=contract.names, exact_match=True, meta=meta("table.columns"))
        )
    for c in contract.columns:
        exps.append(E.ExpectColumnToExist(column=c.name, meta=meta(f"{c.name}.exists")))
        exps.append(E.ExpectColumnValuesToBeOfType(column=c.name, type_=GX_TYPES[c.type], meta=meta(f"{c.name}.type")))
        if c.nullable:
            limit = cfg.max_null_fraction if c.max_null_fraction is None else c.max_null_fraction
            exps.append(
                E.ExpectColumnProportionOfNonNullValuesToBeBetween(
                    column=c.name, min_value=round(1.0 - limit, 12), meta=meta(f"{c.name}.null_fraction")
                )
            )
    exps.append(
        E.ExpectTableRowCountToBeBetween(min_value=cfg.min_rows, max_value=cfg.max_rows, meta=meta("table.row_count"))
    )
    if contract.target and contract.classes and schema.task == "classification":
        exps.append(
            E.ExpectColumnDistinctValuesToContainSet(
                column=contract.target, value_set=list(contract.classes), meta=meta(f"{contract.target}.classes")
            )
        )
    return exps


# --------------------------------------------------------------------------------------------- result
@dataclasses.dataclass
class Check:
    """One rule's outcome, for messages, reports and metrics."""

    rule: str
    level: Literal["row", "table"]
    expectation: str
    column: str | None
    threshold: str
    success: bool
    unexpected_count: int = 0
    unexpected_percent: float = 0.0
    examples: list[Any] = dataclasses.field(default_factory=list)
    observed: Any = None
    detail: str = ""

    def describe(self, rows: int) -> str:
        where = f" on {self.column}" if self.column else ""
        head = f"{self.expectation}{where}"
        if self.level == "row":
            ex = f"; e.g. {', '.join(_fmt(v) for v in self.examples[:EXAMPLES])}" if self.examples else ""
            return f"{head}: {self.unexpected_count} of {rows} rows ({self.unexpected_percent:.3g}%) break {self.threshold}{ex}"
        observed = f"; observed {self.observed}" if self.observed not in (None, "") else ""
        return f"{head}: expected {self.threshold}{observed}{'; ' + self.detail if self.detail else ''}"


@dataclasses.dataclass
class QualityResult:
    """What :func:`validate_frame` decided, and why."""

    clean: pd.DataFrame
    quarantined: pd.DataFrame  # the input's columns + REASON
    checks: list[Check]
    table_failures: list[str]  # human-readable, one per failed table-level rule (incl. the bad-row fraction)
    success: bool
    metrics: dict[str, Any]
    gx_result: dict[str, Any]  # {"table": <GE result JSON>, "rows": <GE result JSON>}, volatile fields removed
    source: str = ""
    contract_path: str = ""

    def summary(self, report_hint: str = "") -> str:
        """The terminal message: every failed rule with column, row count, examples and threshold."""
        rows = self.metrics.get("rows_checked", 0)
        status = "passed" if self.success else "FAILED"
        lines = [
            f"{self.source or 'data'}: data quality gate {status} (contract {self.contract_path or '?'}): "
            f"{rows} rows checked, {len(self.clean)} clean, {len(self.quarantined)} quarantined"
        ]
        lines += [f"  - {msg}" for msg in self.table_failures]
        quarantined = [c for c in self.checks if c.level == "row" and c.unexpected_count]
        if quarantined:
            lines.append("  row-level rules (rows quarantined):" if self.success else "  row-level rules:")
            lines += [f"    * {c.describe(rows)}" for c in quarantined]
        if report_hint:
            lines.append(f"  {report_hint}")
        return "\n".join(lines)

    def raise_if_failed(self, report_hint: str = "") -> None:
        """Raise :class:`GateError` with :meth:`summary` when the gate failed."""
        if not self.success:
            raise GateError(self.summary(report_hint))


def raise_if_failed(result: QualityResult, report_hint: str = "") -> None:
    """Module-level spelling of :meth:`QualityResult.raise_if_failed`."""
    result.raise_if_failed(report_hint)


# --------------------------------------------------------------------------------------------- validation
# Imported by `import great_expectations` (as `from scipy import stats`) only for the KL-divergence and KS-test
# expectations, which the contracts never use: ~1 s of the ~3.5 s import. (altair, ~0.4 s more, cannot be
# deferred this way: GE imports it with `import altair`, which reads the module's __spec__ and so loads it.)
DEFERRED_IMPORTS = ("scipy.stats",)


def defer_imports(names: Sequence[str] = DEFERRED_IMPORTS) -> list[str]:
    """Make ``names`` lazy modules (:class:`importlib.util.LazyLoader`): executed on first attribute access.

    Semantics do not change (``from scipy import stats`` still works; ``stats.entropy`` loads scipy.stats then);
    only the cost moves to the first real use, which the contracts' expectations never make. Modules already
    imported, or not installed, are left alone. Returns the names that were made lazy. (Python 3.11's lazy
    modules take no lock on that first use: the stage makes it, if ever, from one thread.)
    """
    deferred = []
    for name in names:
        if name in sys.modules:
            continue
        spec = importlib.util.find_spec(name)
        if spec is None or spec.loader is None:
            continue
        spec.loader = importlib.util.LazyLoader(spec.loader)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
        parent, _, child = name.rpartition(".")
        if parent:
            setattr(sys.modules[parent], child, module)
        deferred.append(name)
    return deferred


def prefetch_gx() -> threading.Thread:
    """Start importing Great Expectations in a background thread and return it.

    The import takes ~1.5-2 s of mostly Python bytecode (with :func:`defer_imports` and the collector off, see
    :func:`_import_gx_without_gc`; ~3.5 s without); started first, it overlaps
    the Parquet read and the pandas masks (C++ and numpy loops that release the GIL), and the first
    ``import great_expectations`` in :func:`gx_context` simply waits for it (Python's per-module import lock).
    """
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
    if "great_expectations" in sys.modules:
        thread = threading.Thread(target=lambda: None, name="gx-import", daemon=True)
    else:
        defer_imports()
        thread = threading.Thread(target=_import_gx_without_gc, name="gx-import", daemon=True)
        gc.disable()
    thread.start()
    return thread


def _import_gx_without_gc() -> None:
    """Import GE with the cyclic garbage collector off, then freeze what the import made and turn it back on.

    The import creates ~10^6 container objects; with the collector on, each 700 allocations start a collection
    and the older generations are traversed again and again (~0.4 s of the import). The import makes no garbage
    cycles worth collecting; ``gc.freeze`` moves the modules out of later collections' way.
    """
    try:
        importlib.import_module("great_expectations")
    finally:
        gc.freeze()
        gc.enable()


def gx_context() -> Any:
    """An ephemeral (in-memory) GE context: no analytics, no progress bars, no temporary docs site."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
    if "great_expectations" not in sys.modules:
        defer_imports()
    import great_expectations as gx
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )
    from great_expectations.execution_engine import pandas_execution_engine

    # GE fingerprints every pandas batch under 1 GB with an md5 over hash_pandas_object(every row): a batch
    # marker only, yet at 1M rows it costs about as much as the whole table suite (pandas 3's arrow strings hash
    # slowly). DVC already hashes the data, so skip it (the result then has no `pandas_data_fingerprint`).
    pandas_execution_engine.HASH_THRESHOLD = 0
    config = DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False),
        analytics_enabled=False,
        progress_bars=ProgressBarsConfig(globally=False, metric_calculations=False),
    )
    return gx.get_context(mode="ephemeral", project_config=config)


def run_suite(context: Any, name: str, expectations: list[Any], df: pd.DataFrame) -> dict[str, Any]:
    """Run ``expectations`` as suite ``name`` through a ValidationDefinition on ``df``; the result as JSON."""
    import great_expectations as gx

    batch = context.data_sources.add_pandas(f"{name}_source").add_dataframe_asset(name)
    definition = batch.add_batch_definition_whole_dataframe("whole")
    suite = context.suites.add(gx.ExpectationSuite(name=name, expectations=expectations))
    vd = context.validation_definitions.add(gx.ValidationDefinition(name=name, data=definition, suite=suite))
    result = vd.run(batch_parameters={"dataframe": df}, result_format="SUMMARY")
    return _clean_json(result.to_json_dict())


_VOLATILE = {"run_id", "validation_time", "ge_load_time", "validation_id", "id", "batch_id", "checkpoint_id"}


def _clean_json(obj: Any) -> Any:
    """Drop run ids, times and uuids; NaN -> None; order results by rule, so equal data gives equal bytes."""
    if isinstance(obj, Mapping):
        out = {str(k): _clean_json(v) for k, v in obj.items() if k not in _VOLATILE}
        if "results" in out and isinstance(out["results"], list):
            out["results"].sort(key=lambda r: str(r.get("expectation_config", {}).get("meta", {}).get("rule", "")))
        return out
    if isinstance(obj, list | tuple):
        return [_clean_json(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, np.generic):
        return _clean_json(obj.item())
    if isinstance(obj, pd.Timestamp | dt.datetime | dt.date):
        return obj.isoformat()
    return obj


def validate_frame(
    df: pd.DataFrame,
    schema: Schema,
    contract: Contract,
    cfg: Validate,
    source: str = "",
    *,
    table_checks: bool = True,
) -> QualityResult:
    """Check ``df`` against ``contract``: split clean and quarantined rows, decide pass/fail with GE.

    ``table_checks=False`` skips row-count, null-fraction, class and bad-row-fraction rules (e.g. for one chunk of
    a larger batch, whose totals the caller checks); column presence and types are always checked. The two phases are
    :func:`split_rows` (pandas) and :func:`judge` (Great Expectations), for callers that work in between.
    """
    return judge(split_rows(df, contract), schema, contract, cfg, source, table_checks=table_checks)


@dataclasses.dataclass
class RowSplit:
    """The pandas phase: the contract's row rules as masks, the reasons, and the clean/quarantined rows."""

    df: pd.DataFrame  # the input, index reset
    rules: list[RowRule]  # the row rules whose columns exist with the declared type
    masks: dict[str, pd.Series]  # rule id -> breaking rows (rows.unique: every copy; rows.repeat: the repeats)
    bad: np.ndarray  # quarantined rows
    clean: pd.DataFrame
    quarantined: pd.DataFrame  # input columns + REASON


def split_rows(df: pd.DataFrame, contract: Contract) -> RowSplit:
    """Evaluate the contract's row-level rules with vectorized pandas; no Great Expectations involved."""
    n = len(df)
    df = df.reset_index(drop=True)

    # Which row rules can run: their columns exist with the declared type (else the table suite reports it).
    typed = {c.name for c in contract.columns if c.name in df.columns and dtype_matches(df[c.name], c.type)}
    rules = [r for r in row_rules(contract) if (r.column in typed if r.column else set(r.columns) <= typed)]
    masks: dict[str, pd.Series] = {}
    first_of = pd.Series(dtype="int64")
    for r in rules:
        if r.kind == "unique_rows":
            masks[r.id], masks["rows.repeat"], first_of = duplicate_masks(df, list(r.columns))
        else:
            masks[r.id] = r.mask(df)
    quarantine_masks = {k: m for k, m in masks.items() if k != "rows.unique"}
    if contract.duplicates == "fail":
        quarantine_masks.pop("rows.repeat", None)
    bad = np.zeros(n, dtype=bool)
    for m in quarantine_masks.values():
        bad |= m.to_numpy()
    bad_idx = np.flatnonzero(bad)

    # Reasons, for the flagged rows only (vectorized over that subset).
    reasons = pd.Series("", index=pd.RangeIndex(n)[bad_idx], dtype=object)
    sub = df.iloc[bad_idx]
    for r in rules:
        key = "rows.repeat" if r.kind == "unique_rows" else r.id
        if key not in quarantine_masks:
            continue
        hit = quarantine_masks[key].to_numpy()[bad_idx]
        if not hit.any():
            continue
        rows = sub[hit]
        if r.kind == "unique_rows":
            firsts = first_of.loc[rows.index].to_numpy()
            ids = df[contract.row_id].to_numpy()[firsts] if contract.row_id else firsts
            text = pd.Series([f"duplicate of row {_plain_id(i)}" for i in ids], index=rows.index)
        else:
            text = r.reasons(rows)
        current = reasons.loc[rows.index]
        reasons.loc[rows.index] = np.where(current == "", text, current + "; " + text)
    quarantined = df.iloc[bad_idx].assign(**{REASON: reasons.to_numpy()})
    clean = df.iloc[np.flatnonzero(~bad)].reset_index(drop=True)

    return RowSplit(
        df=df, rules=rules, masks=masks, bad=bad, clean=clean, quarantined=quarantined.reset_index(drop=True)
    )


def judge(
    split: RowSplit,
    schema: Schema,
    contract: Contract,
    cfg: Validate,
    source: str = "",
    *,
    table_checks: bool = True,
) -> QualityResult:
    """The Great Expectations phase: the verdict on :func:`split_rows`' result (see :func:`validate_frame`)."""
    df, rules, masks, bad, clean, quarantined = (
        split.df, split.rules, split.masks, split.bad, split.clean, split.quarantined
    )  # fmt: skip
    n = len(df)
    failures: list[str] = []
    checks: list[Check] = []

    # Great Expectations: table-level verdict on the clean rows, row-level statistics on the flagged rows.
    context = gx_context()
    table_exps = table_expectations(contract, schema, cfg)
    if not table_checks:
        table_exps = [e for e in table_exps if e.meta["rule"].rsplit(".", 1)[1] in ("columns", "exists", "type")]
    table_json = run_suite(context, f"{contract.dataset}.table", table_exps, clean)
    row_exps = [r.expectation() for r in rules]
    if cfg.row_expectations_on == "all":
        row_frame = df
    else:
        suspect = bad.copy()
        for r in rules:
            suspect |= masks[r.id].to_numpy()
        row_frame = df.iloc[np.flatnonzero(suspect)]
    rows_json = run_suite(context, f"{contract.dataset}.rows", row_exps, row_frame)

    missing = {c for c in contract.names if c not in df.columns}
    columns_failed = any(
        not r["success"] for r in table_json["results"] if r["expectation_config"]["meta"]["rule"] == "table.columns"
    )
    for res in table_json["results"]:
        check = _table_check(res)
        checks.append(check)
        if check.success or (check.column in missing and not check.rule.endswith(".exists")):
            continue  # a missing column: one message, not one per rule on it
        if check.rule.endswith(".exists") and columns_failed:
            continue
        if check.rule.endswith(".type") and check.column in df.columns:
            check.detail = _type_detail(df[check.column], contract.column(check.column).type)
        failures.append(check.describe(n))
    for r, res in zip(rules, _by_rule(rows_json, rules), strict=True):
        count = int(masks[r.id].sum())
        gx_count = int(res.get("result", {}).get("unexpected_count") or 0)
        raised = _exception(res)
        examples = _examples(df, masks[r.id], r)
        check = Check(
            rule=r.id,
            level="row",
            expectation=res["expectation_config"]["type"],
            column=r.column,
            threshold=r.threshold,
            success=count == 0,
            unexpected_count=count,
            unexpected_percent=round(100.0 * count / n, 6) if n else 0.0,
            examples=examples,
        )
        checks.append(check)
        if raised:
            failures.append(f"{check.expectation} on {r.column or list(r.columns)}: Great Expectations raised {raised}")
        elif gx_count != count:
            failures.append(
                f"internal: Great Expectations counts {gx_count} rows breaking {r.id}, the quarantine mask {count}; "
                "the gate fails safe, please report this"
            )
        if r.kind == "unique_rows" and contract.duplicates == "fail" and count:
            failures.append(check.describe(n) + " (contract duplicates: fail)")

    if table_checks and contract.target and contract.classes and schema.task == "classification":
        failures += _class_counts(clean, contract, cfg, checks)
    if table_checks and clean.empty:  # one message instead of one per null-fraction and class rule
        structural = [
            c.describe(n)
            for c in checks
            if not c.success and c.level == "table" and c.rule.endswith((".type", "columns"))
        ]
        failures = [
            f"no rows to pass on ({n} read, {n - len(clean)} quarantined): the data is empty or every row is bad; "
            "fix the source or rerun `dvc repro ingest`",
            *structural,
        ]
    fraction = len(quarantined) / n if n else 0.0
    if table_checks and fraction > cfg.max_bad_row_fraction:
        top = quarantined[REASON].str.split("; ").explode().str.replace(r"=.*? (outside|not in) ", r" \1 ", regex=True)
        common = ", ".join(f"{k} ({v})" for k, v in top.value_counts().head(3).items())
        failures.append(
            f"{len(quarantined)} of {n} rows ({fraction:.2%}) break row-level rules, more than "
            f"validate.max_bad_row_fraction={cfg.max_bad_row_fraction}; most common: {common}"
        )
    success = not failures
    metrics = {
        "success": success,
        "rows_checked": n,
        "rows_clean": len(clean),
        "rows_quarantined": len(quarantined),
        "quarantine_fraction": round(fraction, 6),
        "table_failures": len(failures),
        "unexpected_percent": {c.rule: c.unexpected_percent for c in checks if c.level == "row"},
    }
    gx_result = {
        "row_expectations_on": cfg.row_expectations_on,
        "rows_evaluated_by_gx": len(row_frame),
        "table": table_json,
        "rows": rows_json,
    }
    return QualityResult(
        clean=clean,
        quarantined=quarantined,
        checks=checks,
        table_failures=failures,
        success=success,
        metrics=metrics,
        gx_result=gx_result,
        source=source,
        contract_path=contract.path,
    )


def _type_detail(s: pd.Series, kind: str) -> str:
    """Why a column has the wrong dtype: for numbers stored as text, the values that are not numbers."""
    if kind in ("float", "int") and not pd.api.types.is_numeric_dtype(s):
        values = s.dropna()
        bad = values[pd.to_numeric(values, errors="coerce").isna()]
        if len(bad):
            shown = ", ".join(repr(v) for v in bad.drop_duplicates().head(EXAMPLES).tolist())
            return (
                f"{len(bad)} value(s) are not numbers, e.g. {shown}; fix the source or declare them missing "
                "(ingest.read_options.na_values)"
            )
    if kind == "int" and pd.api.types.is_float_dtype(s):
        return "an integer column with missing values is read as float; declare `type: float` in the contract"
    return f"fix the source or the contract's `type` ({', '.join(GX_TYPES)})"


def duplicate_masks(df: pd.DataFrame, columns: list[str]) -> tuple[pd.Series, pd.Series, pd.Series]:
    """Rows equal to another row on ``columns``: (every copy, the repeats after the first, repeat -> first position).

    Exact and cheap: rows equal on all columns are equal on the numeric ones, so those (fast to hash) pick the
    candidates, and only the candidates are hashed on every column (text hashing is the slow part).
    """
    n = len(df)
    cheap = [c for c in columns if pd.api.types.is_numeric_dtype(df[c]) or pd.api.types.is_datetime64_any_dtype(df[c])]
    if cheap:
        candidates = pd.util.hash_pandas_object(df[cheap], index=False).duplicated(keep=False).to_numpy()
    else:
        candidates = np.ones(n, dtype=bool)
    positions = np.flatnonzero(candidates)
    hashes = pd.Series(pd.util.hash_pandas_object(df.iloc[positions][columns], index=False).to_numpy(), index=positions)
    every = np.zeros(n, dtype=bool)
    every[positions] = hashes.duplicated(keep=False).to_numpy()
    repeat_sub = hashes.duplicated(keep="first").to_numpy()
    repeats = np.zeros(n, dtype=bool)
    repeats[positions] = repeat_sub
    first_by_hash = pd.Series(positions[~repeat_sub], index=hashes.to_numpy()[~repeat_sub])
    first_of = pd.Series(first_by_hash.loc[hashes.to_numpy()[repeat_sub]].to_numpy(), index=positions[repeat_sub])
    return pd.Series(every, index=df.index), pd.Series(repeats, index=df.index), first_of


def _plain_id(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def _by_rule(result: Mapping[str, Any], rules: Sequence[RowRule]) -> list[dict[str, Any]]:
    by = {r["expectation_config"]["meta"]["rule"]: r for r in result["results"]}
    return [by[r.id] for r in rules]


def _exception(res: Mapping[str, Any]) -> str:
    info = res.get("exception_info") or {}
    if "raised_exception" in info:
        return str(info.get("exception_message") or "") if info.get("raised_exception") else ""
    for value in info.values():  # keyed by metric when several metrics raised
        if isinstance(value, Mapping) and value.get("raised_exception"):
            return str(value.get("exception_message"))
    return ""


def _examples(df: pd.DataFrame, mask: pd.Series, rule: RowRule) -> list[Any]:
    if not mask.any():
        return []
    if rule.kind == "unique_rows":
        ids = df.loc[mask, rule.columns[0]].head(EXAMPLES)
        return [_plain_id(v) for v in ids]
    values = df.loc[mask, rule.column]
    return [_clean_json(_plain_id(v)) for v in values.drop_duplicates().head(EXAMPLES)]


def _table_check(res: Mapping[str, Any]) -> Check:
    cfg = res["expectation_config"]
    kw, kind = cfg["kwargs"], cfg["type"]
    result = res.get("result") or {}
    observed = result.get("observed_value")
    raised = _exception(res)
    if kind == "expect_table_columns_to_match_set":
        mismatched = (result.get("details") or {}).get("mismatched") or {}
        parts = [f"{k} {v}" for k, v in sorted(mismatched.items())]
        threshold = f"exactly the contract's {len(kw['column_set'])} columns"
        detail = ("; ".join(parts) + "; add them to the contract or drop them (ingest.drop_columns)") if parts else ""
        observed = None
    elif kind == "expect_column_values_to_be_of_type":
        threshold, detail = f"dtype {kw['type_']}", ""
    elif kind == "expect_column_proportion_of_non_null_values_to_be_between":
        threshold = f"non-null fraction >= {kw['min_value']:g} (max null fraction {1 - kw['min_value']:.3g})"
        observed = f"non-null fraction {observed:.4g}" if isinstance(observed, int | float) else observed
        detail = ""
    elif kind == "expect_table_row_count_to_be_between":
        threshold = f"row count in [{kw.get('min_value')}, {kw.get('max_value') or 'inf'}] (validate.min_rows/max_rows)"
        detail = "after quarantine"
    elif kind == "expect_column_distinct_values_to_contain_set":
        threshold = f"every class of {_fmt_set(kw['value_set'])} present"
        missing = result.get("partial_missing_list") or []
        detail = f"missing {_fmt_set(missing)}" if missing else ""
        observed = None
    elif kind == "expect_column_to_exist":
        threshold, detail = "the column to exist", "the data has no such column; fix the source or the contract"
    else:
        threshold, detail = str(kw), ""
    if raised:
        detail = f"{detail}; GE raised {raised}".strip("; ")
    return Check(
        rule=cfg["meta"]["rule"],
        level="table",
        expectation=kind,
        column=kw.get("column"),
        threshold=threshold,
        success=bool(res["success"]),
        observed=observed,
        detail=detail if not res["success"] else "",
    )


def _class_counts(clean: pd.DataFrame, contract: Contract, cfg: Validate, checks: list[Check]) -> list[str]:
    """Every class keeps at least validate.min_class_rows clean rows (GE core has no per-value count rule)."""
    target = contract.target
    if target not in clean.columns:
        return []
    counts = clean[target].value_counts()
    low = {c: int(counts.get(c, 0)) for c in contract.classes if counts.get(c, 0) < cfg.min_class_rows}
    check = Check(
        rule=f"{target}.class_rows",
        level="table",
        expectation="class_rows_at_least (pandas value_counts)",
        column=target,
        threshold=f">= {cfg.min_class_rows} rows per class (validate.min_class_rows)",
        success=not low,
        observed={str(k): int(v) for k, v in counts.items()},
        detail=", ".join(f"class {_fmt(k)} has {v} row(s)" for k, v in low.items()),
    )
    checks.append(check)
    return [check.describe(len(clean)) + " after quarantine"] if low else []


# --------------------------------------------------------------------------------------------- reports
def report_json(result: QualityResult) -> dict[str, Any]:
    """reports/validation.json: GE's results plus the gate's decision, deterministic."""
    return {
        "source": result.source,
        "contract": result.contract_path,
        "success": result.success,
        "metrics": result.metrics,
        "failures": result.table_failures,
        "checks": [_clean_json(dataclasses.asdict(c)) for c in result.checks],
        "great_expectations": result.gx_result,
    }


def report_markdown(result: QualityResult, quarantine_path: str = "") -> str:
    """reports/validation.md: the verdict, failures, and one table row per rule."""
    m = result.metrics
    lines = [
        "# Data validation report",
        "",
        f"- Source: `{result.source}`",
        f"- Contract: `{result.contract_path}`",
        f"- Verdict: **{'PASSED' if result.success else 'FAILED'}**",
        f"- Rows checked: {m['rows_checked']}; clean: {m['rows_clean']}; quarantined: {m['rows_quarantined']} "
        f"({m['quarantine_fraction']:.4%})" + (f" -> `{quarantine_path}`" if quarantine_path else ""),
        "",
    ]
    if result.table_failures:
        lines += ["## Why it failed", "", *[f"- {f}" for f in result.table_failures], ""]
    lines += [
        "## Row-level rules (breaking rows are quarantined)",
        "",
        "| rule | expectation | threshold | rows | % | examples |",
        "|---|---|---|---:|---:|---|",
    ]
    for c in (c for c in result.checks if c.level == "row"):
        ex = ", ".join(_fmt(v) for v in c.examples[:EXAMPLES])
        lines.append(
            f"| {c.rule} | {c.expectation} | {_md(c.threshold)} | {c.unexpected_count} | {c.unexpected_percent:.4g} | {_md(ex)} |"
        )
    lines += [
        "",
        "## Table-level rules (on the clean rows)",
        "",
        "| rule | status | expected | observed |",
        "|---|---|---|---|",
    ]
    for c in (c for c in result.checks if c.level == "table"):
        observed = "" if c.observed is None else str(c.observed)
        status = "ok" if c.success else f"**FAILED** {c.detail}"
        lines.append(f"| {c.rule} | {_md(status)} | {_md(c.threshold)} | {_md(observed)} |")
    if len(result.quarantined):
        lines += ["", "## Most common quarantine reasons", ""]
        for reason, count in result.quarantined[REASON].value_counts().head(10).items():
            lines.append(f"- {count} x {reason}")
    return "\n".join(lines) + "\n"


def _md(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def write_reports(result: QualityResult, json_path: str | Path, md_path: str | Path, quarantine_path: str = "") -> None:
    """Write both reports atomically."""
    write_text(json_path, dumps_json(report_json(result)))
    write_text(md_path, report_markdown(result, quarantine_path))


# --------------------------------------------------------------------------------------------- suggest
def suggest_contract(df: pd.DataFrame, schema: Schema, dataset: str, margin: float = 0.1) -> str:
    """A starter contract (YAML text with comments) from the schema and the data's profile, to review.

    Numeric bounds cover the observed values that are not outliers: values beyond the 0.1 %/99.9 % quantiles
    by more than their spread are treated as glitches and left out (the comment lists them), then the bounds
    are widened by ``margin`` of the spread and rounded outward. Categorical values and target classes are the
    observed sets; datetime windows the observed days. Replace ranges by physical limits where you know them.
    """
    lines = [
        f"# Data contract for dataset {dataset!r}: generated by `python -m lifecycle.quality suggest` from",
        f"# {len(df)} rows. REVIEW before committing: bounds are the observed profile, not physical truth.",
        "# Row-level rules (min/max, values, nullable: false, duplicates) quarantine the rows that break them;",
        "# table-level rules (columns, types, null fractions, row count, classes) fail the whole batch.",
        f"dataset: {dataset}",
        f"target: {schema.target}",
    ]
    ids = [c for c in schema.identifiers if c in df.columns and df[c].is_unique]
    if ids:
        lines.append(f"row_id: {ids[0]}")
    repeats = int(df.duplicated().sum())
    if repeats > 0.01 * len(df) and not ids:
        dup = f"duplicates: keep          # {repeats} of {len(df)} rows repeat an earlier row; with no row id they may be legit"
    else:
        dup = f"duplicates: quarantine    # quarantine (repeats after the first) | fail | keep; {repeats} repeats seen"
    lines += ["extra_columns: fail       # fail | ignore: a column the contract does not list", dup, "columns:"]
    for col in schema.columns:
        s = df[col.name]
        kind = _kind(s)
        spec: dict[str, Any] = {"type": kind}
        comment = ""
        if col.role in ("identifier", "target"):
            spec["nullable"] = False
        if col.role == "target" and schema.task == "classification":
            spec["values"] = [_plain_id(v) for v in schema.classes]
            comment = "target classes: each must keep validate.min_class_rows rows"
        elif kind in ("float", "int") and s.notna().any():
            lo, hi, note = _suggest_range(s, margin, kind)
            spec["min"], spec["max"] = lo, hi
            comment = note
        elif kind == "datetime" and s.notna().any():
            spec["min"] = str(s.min().floor("D").date())
            spec["max"] = str((s.max().floor("D") + pd.Timedelta(days=1)).date())
            comment = "observed days; widen max to admit newer data"
        elif col.role == "categorical":
            spec["values"] = sorted({str(v) for v in s.dropna().unique()})
        null = float(s.isna().mean())
        if null:
            comment = (comment + "; " if comment else "") + f"observed null fraction {null:.4f}"
        body = ", ".join(f"{k}: {v if k == 'type' else _yaml_scalar(v)}" for k, v in spec.items())
        lines.append(f"  {col.name}: {{{body}}}" + (f"  # {comment}" if comment else ""))
    return "\n".join(lines) + "\n"


def _kind(s: pd.Series) -> str:
    for kind in ("float", "int", "bool", "str"):
        if dtype_matches(s, kind):
            return kind
    if pd.api.types.is_datetime64_any_dtype(s):
        return "datetime"
    return "str"


def _suggest_range(s: pd.Series, margin: float, kind: str) -> tuple[float, float, str]:
    v = s.dropna().astype(float)
    q_lo, q_hi = float(v.quantile(0.001)), float(v.quantile(0.999))
    spread = (q_hi - q_lo) or max(abs(q_hi), 1.0)
    inside = v[(v >= q_lo - spread) & (v <= q_hi + spread)]
    outliers = v[(v < q_lo - spread) | (v > q_hi + spread)]
    lo, hi = float(inside.min()) - margin * spread, float(inside.max()) + margin * spread
    if q_lo >= 0 > lo:  # a non-negative quantity (a few negative glitches aside) stays non-negative
        lo = 0.0
    step = 10.0 ** (math.floor(math.log10(spread)) - 1)
    lo, hi = math.floor(lo / step) * step, math.ceil(hi / step) * step
    lo, hi = (float(round(x, 10)) for x in (lo, hi))
    if kind == "int":
        lo, hi = float(math.floor(lo)), float(math.ceil(hi))
    note = f"observed [{_fmt_num(v.min())}, {_fmt_num(v.max())}]"
    if len(outliers):
        shown = ", ".join(_fmt_num(x) for x in sorted(set(outliers.tolist()))[:5])
        note += f"; {len(outliers)} outlier(s) left out (glitches?): {shown}"
    return lo, hi, note


def _fmt_num(x: float) -> str:
    return f"{x:.6g}"


def _yaml_scalar(value: Any) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(_yaml_scalar(v) for v in value) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, int):
        return str(value)
    return yaml.safe_dump(str(value), default_style='"').strip().removesuffix("...").strip()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("suggest", help="write a starter contract from the schema and the data's profile")
    p.add_argument("--params", default="params.yaml")
    p.add_argument("--data", help="raw table (default: paths.raw)")
    p.add_argument("--schema", help="schema JSON (default: paths.schema)")
    p.add_argument("--out", help="contract YAML (default: paths.contracts/<dataset>.yaml)")
    p.add_argument("--dataset", help="dataset name (default: from ingest.source)")
    p.add_argument("--margin", type=float, default=0.1, help="widen numeric bounds by this share of the spread")
    p.add_argument("--force", action="store_true", help="overwrite an existing contract")
    args = parser.parse_args(argv)

    params = load_params(args.params)
    dataset = args.dataset or dataset_key(params.ingest.source)
    out = Path(args.out) if args.out else contract_path(params.paths.contracts, params.ingest.source)
    if out.exists() and not args.force:
        raise DataError(f"{out}: a contract exists already; review it by hand, or pass --force (make suite FORCE=1)")
    data = args.data or params.paths.raw
    schema = read_schema(args.schema or params.paths.schema)
    df = read_parquet(data, "raw data (run `dvc repro ingest` first)")
    text = suggest_contract(df, schema, dataset, args.margin)
    parse_contract(yaml.safe_load(text), str(out))  # what we write must load
    write_text(out, text)
    log.info("wrote a starter contract for %s (%d columns, from %d rows of %s) to %s; review it and commit it",
             dataset, len(schema.columns), len(df), data, out)  # fmt: skip


if __name__ == "__main__":
    cli.run(main)
