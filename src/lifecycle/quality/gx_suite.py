"""Running Great Expectations: the suites built from the contract, their run, and reading their results.

The expectations come from the same rule objects as the vectorized quarantine mask
(:func:`lifecycle.quality.rules.split_rows`): one declaration, two evaluations. :func:`run_suite` runs a suite in an
ephemeral context (:func:`gx_context`) and returns the result as deterministic JSON (:func:`clean_json`); the verdict
on those results is :func:`lifecycle.quality.gx.judge`. great_expectations is imported inside the functions, late on
purpose (:mod:`lifecycle.quality.gx_import`, :mod:`lifecycle.quality.lazy_imports`).
"""

from __future__ import annotations

import datetime as dt
import math
import os
import sys
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from lifecycle.config import Validate
from lifecycle.quality.contract import GX_TYPES, Contract
from lifecycle.quality.gx_fingerprint import skip_batch_fingerprint
from lifecycle.quality.lazy_imports import defer_imports
from lifecycle.quality.rules import RowRule, format_set
from lifecycle.schema import Schema


# --------------------------------------------------------------------------------------------- suites
def row_expectation(rule: RowRule) -> Any:
    """The GE expectation of a row rule; its ``meta`` carries the rule id and level."""
    import great_expectations as gx

    meta = {"rule": rule.id, "level": "row"}
    E = gx.expectations
    if rule.kind == "between":
        lo, hi = (v.to_pydatetime() if isinstance(v, pd.Timestamp) else v for v in (rule.min, rule.max))
        return E.ExpectColumnValuesToBeBetween(column=rule.column, min_value=lo, max_value=hi, meta=meta)
    if rule.kind == "in_set":
        return E.ExpectColumnValuesToBeInSet(column=rule.column, value_set=list(rule.values), meta=meta)
    if rule.kind == "not_null":
        return E.ExpectColumnValuesToNotBeNull(column=rule.column, meta=meta)
    return E.ExpectCompoundColumnsToBeUnique(column_list=list(rule.columns), meta=meta)


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


def gx_context() -> Any:
    """An ephemeral (in-memory) GE context: no analytics, no progress bars, no temporary docs site, no per-batch
    fingerprint (:mod:`lifecycle.quality.gx_fingerprint`)."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
    if "great_expectations" not in sys.modules:
        defer_imports()
    import great_expectations as gx
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    skip_batch_fingerprint()
    config = DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False),
        analytics_enabled=False,
        progress_bars=ProgressBarsConfig(globally=False, metric_calculations=False),
    )
    return gx.get_context(mode="ephemeral", project_config=config)


def run_suite(context: Any, name: str, expectations: list[Any], df: pd.DataFrame) -> dict[str, Any]:
    """Run ``expectations`` as suite ``name`` through a ValidationDefinition on ``df``; the result as JSON
    (:func:`clean_json`: deterministic)."""
    import great_expectations as gx

    batch = context.data_sources.add_pandas(f"{name}_source").add_dataframe_asset(name)
    definition = batch.add_batch_definition_whole_dataframe("whole")
    suite = context.suites.add(gx.ExpectationSuite(name=name, expectations=expectations))
    vd = context.validation_definitions.add(gx.ValidationDefinition(name=name, data=definition, suite=suite))
    result = vd.run(batch_parameters={"dataframe": df}, result_format="SUMMARY")
    return clean_json(result.to_json_dict())


_VOLATILE = {"run_id", "validation_time", "ge_load_time", "validation_id", "id", "batch_id", "checkpoint_id"}


def clean_json(obj: Any) -> Any:
    """Drop run ids, times and uuids; NaN -> None; order results by rule, so equal data gives equal bytes."""
    if isinstance(obj, Mapping):
        out = {str(k): clean_json(v) for k, v in obj.items() if k not in _VOLATILE}
        if "results" in out and isinstance(out["results"], list):
            out["results"].sort(key=lambda r: str(r.get("expectation_config", {}).get("meta", {}).get("rule", "")))
        return out
    if isinstance(obj, list | tuple):
        return [clean_json(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, np.generic):
        return clean_json(obj.item())
    if isinstance(obj, pd.Timestamp | dt.datetime | dt.date):
        return obj.isoformat()
    return obj


# --------------------------------------------------------------------------------------------- reading results
def by_rule(result: Mapping[str, Any], rules: Sequence[RowRule]) -> list[dict[str, Any]]:
    """The results of a row suite's run, one per rule of ``rules`` and in their order."""
    by = {r["expectation_config"]["meta"]["rule"]: r for r in result["results"]}
    return [by[r.id] for r in rules]


def exception_message(res: Mapping[str, Any]) -> str:
    """The message of the exception GE raised while evaluating one expectation; "" when it raised none."""
    info = res.get("exception_info") or {}
    if "raised_exception" in info:
        return str(info.get("exception_message") or "") if info.get("raised_exception") else ""
    for value in info.values():  # keyed by metric when several metrics raised
        if isinstance(value, Mapping) and value.get("raised_exception"):
            return str(value.get("exception_message"))
    return ""


def table_terms(res: Mapping[str, Any]) -> tuple[str, Any, str]:
    """One table-level expectation's result in words: (threshold, observed value, detail)."""
    cfg = res["expectation_config"]
    kw, kind = cfg["kwargs"], cfg["type"]
    result = res.get("result") or {}
    observed = result.get("observed_value")
    raised = exception_message(res)
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
        threshold = f"every class of {format_set(kw['value_set'])} present"
        missing = result.get("partial_missing_list") or []
        detail = f"missing {format_set(missing)}" if missing else ""
        observed = None
    elif kind == "expect_column_to_exist":
        threshold, detail = "the column to exist", "the data has no such column; fix the source or the contract"
    else:
        threshold, detail = str(kw), ""
    if raised:
        detail = f"{detail}; GE raised {raised}".strip("; ")
    return threshold, observed, detail
