"""The data quality verdict: Great Expectations' results judged, and the result types (:class:`QualityResult`).

Who computes what: the per-row quarantine mask is vectorized pandas (:func:`lifecycle.quality.rules.split_rows`),
built from the same rule objects that build the Great Expectations suites (:mod:`lifecycle.quality.gx_suite`: one
declaration, two evaluations). :func:`judge` gives GE's verdict on the table-level suite (run on the clean rows: what
goes downstream) and takes the statistics and example values of the row-level suite. With
``validate.row_expectations_on: flagged`` (the default) the row-level suite runs on the rows the mask flagged
plus every copy of a duplicated row, and GE's counts must equal the mask's (a disagreement fails the gate as an
internal error); with ``all`` GE re-checks every row (slower; see docs/benchmarks.md). The suite functions this
module uses (``gx_context``, ``run_suite``, ``clean_json``, ``row_expectation``, ``table_expectations``) remain
importable from here.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, Literal

import numpy as np
import pandas as pd

from lifecycle.config import Params, Validate
from lifecycle.errors import GateError
from lifecycle.quality.contract import GX_TYPES, Contract, contract_path, load_contract
from lifecycle.quality.gx_suite import (
    by_rule,
    clean_json,
    exception_message,
    gx_context,
    row_expectation,
    run_suite,
    table_expectations,
    table_terms,
)
from lifecycle.quality.rules import REASON, RowRule, RowSplit, format_value, plain, split_rows
from lifecycle.schema import Schema

EXAMPLES = 5  # example values per failed rule in messages and reports


# --------------------------------------------------------------------------------------------- results
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
        """One line: expectation, column, and what broke it (counts of ``rows`` and examples, or observed value)."""
        where = f" on {self.column}" if self.column else ""
        head = f"{self.expectation}{where}"
        if self.level == "row":
            ex = f"; e.g. {', '.join(format_value(v) for v in self.examples[:EXAMPLES])}" if self.examples else ""
            return f"{head}: {self.unexpected_count} of {rows} rows ({self.unexpected_percent:.3g}%) break {self.threshold}{ex}"
        observed = f"; observed {self.observed}" if self.observed not in (None, "") else ""
        return f"{head}: expected {self.threshold}{observed}{'; ' + self.detail if self.detail else ''}"


@dataclasses.dataclass
class QualityResult:
    """What :func:`judge` decided, and why."""

    clean: pd.DataFrame
    quarantined: pd.DataFrame  # the input's columns + REASON
    checks: list[Check]
    table_failures: list[str]  # human-readable, one per failed table-level rule (incl. the bad-row fraction)
    success: bool
    metrics: dict[str, Any]
    gx_result: dict[str, Any]  # {"table": <GE result JSON>, "rows": <GE result JSON>}, volatile fields removed
    source: str = ""
    contract_path: str = ""
    contract_reviewed: bool = True
    target: str | None = None
    notes: list[str] = dataclasses.field(default_factory=list)  # said with the verdict, pass or fail

    @property
    def contract_name(self) -> str:
        """The contract as messages and reports name it."""
        if self.contract_reviewed:
            return self.contract_path or "?"
        return f"none reviewed: checks inferred from the schema; {self.contract_path} does not exist"

    def summary(self, report_hint: str = "") -> str:
        """The terminal message: every failed rule with column, row count, examples and threshold."""
        rows = self.metrics.get("rows_checked", 0)
        status = "passed" if self.success else "FAILED"
        unlabeled = self.metrics.get("rows_unlabeled", 0)
        lines = [
            f"{self.source or 'data'}: data quality gate {status} (contract {self.contract_name}): "
            f"{rows} rows checked, {len(self.clean)} clean, {len(self.quarantined)} quarantined"
            + (f" ({unlabeled} unlabeled)" if unlabeled else "")
        ]
        lines += [f"  ! {note}" for note in self.notes]
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


# --------------------------------------------------------------------------------------------- verdict
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
    :func:`~lifecycle.quality.rules.split_rows` (pandas) and :func:`judge` (GE), for callers that work in between.
    """
    return judge(split_rows(df, contract), schema, contract, cfg, source, table_checks=table_checks)


def check_frame(df: pd.DataFrame, schema: Schema, params: Params, contracts_dir: str | None = None) -> pd.DataFrame:
    """The validate stage's gate in memory, no files: the clean rows of ``df`` (contract of ``ingest.source`` in
    ``contracts_dir``, default ``paths.contracts``); raises :class:`GateError` when the gate fails."""
    contract = load_contract(contract_path(contracts_dir or params.paths.contracts, params.ingest.source))
    result = validate_frame(df, schema, contract, params.validate, source="in-memory frame")
    result.raise_if_failed()
    return result.clean


def judge(
    split: RowSplit,
    schema: Schema,
    contract: Contract,
    cfg: Validate,
    source: str = "",
    *,
    table_checks: bool = True,
) -> QualityResult:
    """The Great Expectations phase: the verdict on :func:`~lifecycle.quality.rules.split_rows`' result (see
    :func:`validate_frame`). Runs GE twice (table suite on the clean rows, row suite on the flagged rows or all)."""
    df, rules, masks, bad, clean, quarantined = (
        split.df, split.rules, split.masks, split.bad, split.clean, split.quarantined
    )  # fmt: skip
    n = len(df)
    failures: list[str] = []
    checks: list[Check] = []

    context = gx_context()
    table_exps = table_expectations(contract, schema, cfg)
    if not table_checks:
        table_exps = [e for e in table_exps if e.meta["rule"].rsplit(".", 1)[1] in ("columns", "exists", "type")]
    table_json = run_suite(context, f"{contract.dataset}.table", table_exps, clean)
    row_exps = [row_expectation(r) for r in rules]
    if cfg.row_expectations_on == "all":
        row_frame = df
    else:
        suspect = bad.copy()
        for r in rules:
            suspect |= masks[r.id].to_numpy()
        row_frame = df.iloc[np.flatnonzero(suspect)]
    rows_json = run_suite(context, f"{contract.dataset}.rows", row_exps, row_frame)

    missing = set(split.missing)
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
    for r, res in zip(rules, by_rule(rows_json, rules), strict=True):
        count = int(masks[r.id].sum())
        gx_count = int(res.get("result", {}).get("unexpected_count") or 0)
        raised = exception_message(res)
        check = Check(
            rule=r.id,
            level="row",
            expectation=res["expectation_config"]["type"],
            column=r.column,
            threshold=r.threshold,
            success=count == 0,
            unexpected_count=count,
            unexpected_percent=round(100.0 * count / n, 6) if n else 0.0,
            examples=_examples(df, masks[r.id], r),
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
    unlabeled_rule = next((r.id for r in rules if r.unlabeled), None)
    unlabeled = masks[unlabeled_rule].to_numpy() if unlabeled_rule else np.zeros(n, dtype=bool)
    other = np.zeros(n, dtype=bool)  # rows quarantined for anything but a missing target
    for key, mask in masks.items():
        if (
            key != unlabeled_rule
            and key != "rows.unique"
            and not (key == "rows.repeat" and contract.duplicates == "fail")
        ):
            other |= mask.to_numpy()
    bad_fraction = float(other.sum()) / n if n else 0.0
    if table_checks and bad_fraction > cfg.max_bad_row_fraction:
        flagged = quarantined[other[bad]] if len(quarantined) == int(bad.sum()) else quarantined
        top = flagged[REASON].str.split("; ").explode()
        top = top[~top.str.startswith("unlabeled: ")].str.replace(r"=.*? (outside|not in) ", r" \1 ", regex=True)
        common = ", ".join(f"{k} ({v})" for k, v in top.value_counts().head(3).items())
        failures.append(
            f"{int(other.sum())} of {n} rows ({bad_fraction:.2%}) break row-level rules, more than "
            f"validate.max_bad_row_fraction={cfg.max_bad_row_fraction}; most common: {common}"
        )
    unlabeled_fraction = float(unlabeled.sum()) / n if n else 0.0
    if table_checks and unlabeled_fraction > cfg.max_unlabeled_fraction:
        failures.append(
            f"{int(unlabeled.sum())} of {n} rows ({unlabeled_fraction:.2%}) have no {contract.target} (unlabeled), "
            f"more than validate.max_unlabeled_fraction={cfg.max_unlabeled_fraction}; label them in the source, "
            "or raise the limit if the labelled rows are enough"
        )
    notes: list[str] = []
    if not contract.reviewed:
        notes.append(
            f"NO REVIEWED DATA CONTRACT for {contract.dataset!r}: only the checks that need no review ran (types, "
            "target present and labeled, classes and their row counts, row count, all-null columns); no ranges, "
            f"category sets or duplicate rule. Write one: `make suite` (python -m lifecycle.quality suggest --out "
            f"{contract.path}), review it, commit it"
        )
        repeats = int(df.duplicated().sum()) if n else 0
        if repeats:
            notes.append(f"{repeats} of {n} rows repeat an earlier row: kept (a reviewed contract may quarantine them)")
    success = not failures
    metrics = {
        "success": success,
        "contract_reviewed": contract.reviewed,
        "rows_checked": n,
        "rows_clean": len(clean),
        "rows_quarantined": len(quarantined),
        "rows_unlabeled": int(unlabeled.sum()),
        "quarantine_fraction": round(fraction, 6),
        "table_failures": len(failures),
    }  # the headline numbers (DVC metrics); every rule's unexpected_percent is in the report's checks
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
        contract_reviewed=contract.reviewed,
        target=contract.target,
        notes=notes,
    )


# --------------------------------------------------------------------------------------------- helpers
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


def _examples(df: pd.DataFrame, mask: pd.Series, rule: RowRule) -> list[Any]:
    if not mask.any():
        return []
    if rule.kind == "unique_rows":
        ids = df.loc[mask, rule.columns[0]].head(EXAMPLES)
        return [plain(v) for v in ids]
    values = df.loc[mask, rule.column]
    return [clean_json(plain(v)) for v in values.drop_duplicates().head(EXAMPLES)]


def _table_check(res: Mapping[str, Any]) -> Check:
    cfg = res["expectation_config"]
    threshold, observed, detail = table_terms(res)
    return Check(
        rule=cfg["meta"]["rule"],
        level="table",
        expectation=cfg["type"],
        column=cfg["kwargs"].get("column"),
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
        detail=", ".join(f"class {format_value(k)} has {v} row(s)" for k, v in low.items()),
    )
    checks.append(check)
    return [check.describe(len(clean)) + " after quarantine"] if low else []
