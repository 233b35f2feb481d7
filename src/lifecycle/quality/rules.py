"""The contract's row-level rules, and THE one evaluator of them: vectorized pandas masks, a reason per bad row.

:func:`row_rules` turns a :class:`~lifecycle.quality.contract.Contract` into :class:`RowRule` objects; the same
objects build the Great Expectations row suite (:func:`lifecycle.quality.gx_suite.row_expectation`). :func:`split_rows`
evaluates them on a frame and splits it into clean and quarantined rows (with a ``reason`` each). Both the
validate stage (one frame) and batch scoring (chunk after chunk, file after file) use it.

Repeated rows are found with one hashing scheme, :func:`row_hashes` (pandas' 64-bit ``hash_pandas_object`` of the
duplicate rule's columns, row by row, index ignored): within a frame by :func:`duplicate_masks`, and across the
chunks and files of a batch by :class:`SeenRows`, which remembers the hashes of the rows already let through.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd
import pyarrow as pa

from lifecycle.quality.contract import GX_TYPES, Contract

REASON = "reason"  # the quarantine's column: why the row was quarantined, "; "-joined when it broke several rules


# --------------------------------------------------------------------------------------------- formatting
def format_value(value: Any) -> str:
    """A value as reasons and messages show it: dates as ``2025-01-01``, text quoted, whole floats as ``250.0``."""
    if isinstance(value, pd.Timestamp | dt.datetime):
        ts = pd.Timestamp(value)
        return ts.strftime("%Y-%m-%d") if ts == ts.normalize() else ts.isoformat()
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, float | np.floating) and float(value).is_integer() and abs(value) < 1e15:
        return f"{float(value):.1f}"
    return str(value)


def format_set(values: Sequence[Any], limit: int = 12) -> str:
    """``{'a', 'b', ... (n values)}``: at most ``limit`` values shown."""
    shown = ", ".join(format_value(v) for v in list(values)[:limit])
    more = f", ... ({len(values)} values)" if len(values) > limit else ""
    return f"{{{shown}{more}}}"


def plain(value: Any) -> Any:
    """A numpy scalar as the Python value (for messages and JSON); anything else unchanged."""
    return value.item() if isinstance(value, np.generic) else value


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
    unlabeled: bool = (
        False  # not_null on the target: its rows are counted as unlabeled (validate.max_unlabeled_fraction)
    )

    @property
    def threshold(self) -> str:
        """The rule as text: ``[0.0, 100.0]``, ``{'a', 'b'}``, ``not null`` or ``no repeated rows``."""
        if self.kind == "between":
            lo = format_value(self.min) if self.min is not None else "-inf"
            return f"[{lo}, {format_value(self.max) if self.max is not None else 'inf'}]"
        if self.kind == "in_set":
            return format_set(self.values)
        if self.kind == "not_null":
            return "not null"
        return "no repeated rows"

    def mask(self, df: pd.DataFrame) -> pd.Series:
        """True where the row breaks the rule (nulls break only ``not_null``, as in GE); not for ``unique_rows``
        (see :func:`duplicate_masks`)."""
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
            prefix = "unlabeled: " if self.unlabeled else ""
            return pd.Series(f"{prefix}{self.column} is null", index=df.index)
        text = df[self.column].map(format_value)
        what = "outside" if self.kind == "between" else "not in"
        return f"{self.column}=" + text + f" {what} {self.threshold}"


def row_rules(contract: Contract) -> list[RowRule]:
    """The contract's row-level rules, in contract order (duplicates last, unless ``duplicates: keep``). The target
    is never nullable: a row without it cannot train (quarantined as unlabeled, counted apart)."""
    rules: list[RowRule] = []
    for c in contract.columns:
        if c.name == contract.target:
            rules.append(RowRule(f"{c.name}.not_null", "not_null", c.name, unlabeled=True))
        elif not c.nullable:
            rules.append(RowRule(f"{c.name}.not_null", "not_null", c.name))
        if c.min is not None or c.max is not None:
            rules.append(RowRule(f"{c.name}.between", "between", c.name, min=c.min, max=c.max))
        if c.values is not None:
            rules.append(RowRule(f"{c.name}.in_set", "in_set", c.name, values=c.values))
    if contract.duplicates != "keep":
        rules.append(RowRule("rows.unique", "unique_rows", None, columns=tuple(contract.names)))
    return rules


def dtype_matches(series: pd.Series, kind: str) -> bool:
    """The pandas side of ExpectColumnValuesToBeOfType(type_=GX_TYPES[kind]): the same exact-type test (pandas'
    nullable ``Int64``/``boolean`` match ``int``/``bool``: their scalar type is numpy's)."""
    if kind == "str":
        return series.dtype.type is str
    return series.dtype.type is np.dtype(GX_TYPES[kind]).type


def column_kind(series: pd.Series) -> str:
    """The contract type (float, int, bool, str, datetime) that :func:`dtype_matches` accepts for ``series``."""
    for kind in ("float", "int", "bool", "str"):
        if dtype_matches(series, kind):
            return kind
    if pd.api.types.is_datetime64_any_dtype(series):
        return "datetime"
    return "str"


# --------------------------------------------------------------------------------------------- repeated rows
def row_hashes(df: pd.DataFrame, columns: Sequence[str]) -> np.ndarray:
    """One uint64 per row of ``df``: pandas' ``hash_pandas_object`` over ``columns`` (in that order), index ignored.

    The one row-hashing scheme of the gate: a row's hash depends on its own values only, so hashes of a subset of
    rows, of another chunk or of another file compare with each other (equal rows, equal hashes; unequal rows
    collide with probability ~n²/2⁶⁴).
    """
    return pd.util.hash_pandas_object(df[list(columns)], index=False).to_numpy()


def duplicate_masks(
    df: pd.DataFrame, columns: list[str], hashes: np.ndarray | None = None
) -> tuple[pd.Series, pd.Series, pd.Series]:
    """Rows equal to another row on ``columns``: (every copy, the repeats after the first, repeat -> first position).

    ``hashes``: every row's :func:`row_hashes`, when the caller needs them anyway. Without, exact and cheaper: rows
    equal on all columns are equal on the numeric ones, so those (fast to hash) pick the candidates, and only the
    candidates are hashed on every column (text hashing is the slow part).
    """
    n = len(df)
    if hashes is not None:
        positions = np.arange(n)
    else:
        cheap = [
            c for c in columns if pd.api.types.is_numeric_dtype(df[c]) or pd.api.types.is_datetime64_any_dtype(df[c])
        ]
        if cheap:
            candidates = pd.Series(row_hashes(df, cheap)).duplicated(keep=False).to_numpy()
        else:
            candidates = np.ones(n, dtype=bool)
        positions = np.flatnonzero(candidates)
        hashes = row_hashes(df.iloc[positions], columns)
    by_position = pd.Series(hashes, index=positions)
    every = np.zeros(n, dtype=bool)
    every[positions] = by_position.duplicated(keep=False).to_numpy()
    repeat_sub = by_position.duplicated(keep="first").to_numpy()
    repeats = np.zeros(n, dtype=bool)
    repeats[positions] = repeat_sub
    first_by_hash = pd.Series(positions[~repeat_sub], index=hashes[~repeat_sub])
    first_of = pd.Series(first_by_hash.loc[hashes[repeat_sub]].to_numpy(), index=positions[repeat_sub])
    return pd.Series(every, index=df.index), pd.Series(repeats, index=df.index), first_of


class SeenRows:
    """The rows an evaluation let through in earlier chunks (and files) of a batch, so that :func:`split_rows`
    quarantines a row repeated in a later chunk as training's gate does over its whole file ("duplicate of row
    <id>"; within a chunk the contract's own rule finds it).

    Keeps the sorted :func:`row_hashes` of those rows, the batch position of each, and their ids in Arrow arrays:
    the peak at 10M telemetry rows went from 1.18 to 1.61 GB (the arrays are copied as they grow), against 6.2 GB
    for reading the whole file. Only clean rows are remembered: a repeat of a row quarantined for another reason
    is quarantined for that same reason, without the "duplicate" note.
    """

    def __init__(self, row_id: str | None) -> None:
        self.row_id = row_id
        self.hashes = np.empty(0, dtype=np.uint64)
        self.first = np.empty(0, dtype=np.int64)  # batch position (among remembered rows) of each hash's row
        self.ids: list[pa.Array] = []  # the remembered rows' ids, one array per chunk
        self.starts: list[int] = []  # batch position of each array's first row
        self.count = 0

    def _id(self, position: int) -> Any:
        k = int(np.searchsorted(self.starts, position, side="right")) - 1
        return self.ids[k][position - self.starts[k]].as_py()

    def split(self, hashes: np.ndarray, ids: pd.Series | None) -> tuple[np.ndarray, list[str]]:
        """Which of the rows with ``hashes`` (and ``ids``: their ``row_id`` values, if the frame has that column)
        were let through before: ``(hit, "duplicate of row <id>" per hit)``. The others are remembered."""
        order = np.argsort(hashes, kind="stable")
        at_sorted = np.searchsorted(self.hashes, hashes[order])  # sorted queries: one pass over the array
        at = np.empty_like(at_sorted)
        at[order] = at_sorted
        hit = np.zeros(len(hashes), dtype=bool)
        if len(self.hashes):
            inside = at < len(self.hashes)
            hit[inside] = self.hashes[at[inside]] == hashes[inside]
        reasons = [f"duplicate of row {self._id(int(i))}" for i in self.first[at[hit]]]
        keep = order[~hit[order]]  # the new rows, in hash order
        rank = np.cumsum(~hit) - 1  # each new row's position among the new rows (batch order)
        self.first = np.insert(self.first, at[keep], self.count + rank[keep])
        self.hashes = np.insert(self.hashes, at[keep], hashes[keep])
        new = int((~hit).sum())
        if ids is not None:
            self.ids.append(pa.array(ids.iloc[np.flatnonzero(~hit)]))
        else:  # no id column: the row's position in the batch's clean rows
            self.ids.append(pa.array(np.arange(self.count, self.count + new)))
        self.starts.append(self.count)
        self.count += new
        return hit, reasons


# --------------------------------------------------------------------------------------------- the evaluator
@dataclasses.dataclass
class RowSplit:
    """The pandas phase: the contract's row rules as masks, the reasons, and the clean/quarantined rows."""

    df: pd.DataFrame  # the input, index reset
    rules: list[RowRule]  # the row rules whose columns exist with the declared type
    masks: dict[str, pd.Series]  # rule id -> breaking rows (rows.unique: every copy; rows.repeat: the repeats)
    bad: np.ndarray  # quarantined rows (bool, one per row)
    clean: pd.DataFrame
    quarantined: pd.DataFrame  # input columns + REASON
    missing: list[str]  # the contract's columns absent from the frame
    mistyped: list[str]  # the contract's columns present with another dtype (see dtype_matches)


def split_rows(df: pd.DataFrame, contract: Contract, *, seen: SeenRows | None = None) -> RowSplit:
    """Evaluate the contract's row-level rules on ``df`` (n rows) with vectorized pandas; no Great Expectations.

    A rule runs when its columns exist with the declared type (otherwise the table-level rules report them; see
    ``missing``/``mistyped``). The quarantined rows keep ``df``'s columns plus ``reason`` (``column=value outside
    [lo, hi]``, ``... not in {...}``, ``column is null``, ``duplicate of row <row_id or position>``; several
    joined by ``"; "``), in ``df`` order; with ``duplicates: fail`` repeats are flagged (``masks``) but not
    quarantined. ``seen``: the batch's :class:`SeenRows`; clean rows it has seen before are quarantined too
    (after the others, as ``duplicate of row <id>``), and the remaining clean rows are remembered.
    """
    n = len(df)
    df = df.reset_index(drop=True)
    missing = [c for c in contract.names if c not in df.columns]
    mistyped = [c.name for c in contract.columns if c.name in df.columns and not dtype_matches(df[c.name], c.type)]
    typed = set(contract.names) - set(missing) - set(mistyped)
    rules = [r for r in row_rules(contract) if (r.column in typed if r.column else set(r.columns) <= typed)]
    masks: dict[str, pd.Series] = {}
    first_of = pd.Series(dtype="int64")
    hashes = None
    for r in rules:
        if r.kind == "unique_rows":
            if seen is not None and contract.duplicates == "quarantine":
                hashes = row_hashes(df, r.columns)  # every row's: the earlier chunks are compared with them too
            masks[r.id], masks["rows.repeat"], first_of = duplicate_masks(df, list(r.columns), hashes)
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
            text = pd.Series([f"duplicate of row {plain(i)}" for i in ids], index=rows.index)
        else:
            text = r.reasons(rows)
        current = reasons.loc[rows.index]
        reasons.loc[rows.index] = np.where(current == "", text, current + "; " + text)
    quarantined = df.iloc[bad_idx].assign(**{REASON: reasons.to_numpy()})

    if hashes is not None and seen is not None:  # rows let through by an earlier chunk of the batch
        kept = np.flatnonzero(~bad)
        ids = df[seen.row_id].iloc[kept] if seen.row_id in df.columns else None
        hit, text = seen.split(hashes[kept], ids)
        if hit.any():
            repeated = df.iloc[kept[hit]].assign(**{REASON: text})
            quarantined = pd.concat([quarantined, repeated]) if len(quarantined) else repeated
            bad[kept[hit]] = True
    clean = df.iloc[np.flatnonzero(~bad)].reset_index(drop=True)
    return RowSplit(
        df=df,
        rules=rules,
        masks=masks,
        bad=bad,
        clean=clean,
        quarantined=quarantined.reset_index(drop=True),
        missing=missing,
        mistyped=mistyped,
    )
