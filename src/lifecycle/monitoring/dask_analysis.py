"""The monitor stage's statistics on Dask (``score.engine: dask``), without collecting the batch to one process.

The scored batch (prediction records, Parquet) is read on the workers one partition at a time (runs of row groups,
:mod:`lifecycle.data.partitions`); each partition is reduced to counts that add up, and this process sums them
(:class:`Partial`) and computes the statistics of :mod:`lifecycle.monitoring.drift` from the sums:

- **PSI** (numeric): counts in the reference-quantile bins (:func:`lifecycle.monitoring.drift.quantile_edges`),
  the same bins and counts as the pandas path: exact.
- **KS** (numeric, and regression predictions): counts of the batch's values in the cells that the reference's
  distinct values cut the line into (:func:`lifecycle.monitoring.drift.ecdf_cells`); the KS statistic from
  those counts is the exact two-sample statistic, not a binned approximation
  (:func:`lifecycle.monitoring.drift.ks_from_cells` says why); the p-value is scipy's asymptotic formula. Memory
  per partition: ``2 x distinct reference values + 1`` counts per feature (``monitor.reference_rows`` bounds it).
- **PSI, Jensen-Shannon, chi-square** (categorical) and **prediction shares**: category counts: exact.
- **Missing rates**: missing and total counts: exact. **Regression prediction mean / std**: sums of values and of
  squares: equal within floating-point rounding (the order of the additions differs).
- **Feedback**: each partition returns its rows whose row id has a label (the labels are sent to every worker);
  the metrics are computed on those rows here, as the pandas path does.

So the numbers equal the pandas path's up to floating-point rounding (tested). The drift page's plots are drawn
from a deterministic sample of at most ``SAMPLE_ROWS`` batch rows (each partition's share, drawn with its index
as the seed); its tables are the exact statistics.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections import Counter
from typing import Any

import numpy as np
import pandas as pd

from lifecycle.cluster import ordered_results, total_threads
from lifecycle.data.partitions import Piece, plan_file, read_piece
from lifecycle.errors import DataError
from lifecycle.monitoring import drift
from lifecycle.monitoring.analysis import MonitorConfig, assemble, prediction_log_drift
from lifecycle.monitoring.feedback import feedback_metrics, row_id
from lifecycle.predictions import PREDICTION, VERSION, proba_column
from lifecycle.schema import Schema

log = logging.getLogger(__name__)

SAMPLE_ROWS = 20_000  # batch rows (at most) the drift page's plots are drawn from


@dataclasses.dataclass(frozen=True)
class Grids:
    """What every partition is counted against, from the reference (sent to the workers once)."""

    edges: dict[str, np.ndarray]  # numeric feature -> inner edges of its reference-quantile bins
    values: dict[str, np.ndarray]  # numeric feature (and PREDICTION for regression) -> sorted distinct values
    labels: pd.DataFrame  # feedback labels: row id (text) + target
    sample_share: float  # share of each partition's rows kept for the plots


@dataclasses.dataclass
class Partial:
    """Counts of one partition (or of several, summed with :meth:`merge`)."""

    rows: int = 0
    missing: Counter = dataclasses.field(default_factory=Counter)  # column -> missing values
    bins: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)  # numeric -> PSI bin counts
    cells: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)  # numeric -> ECDF cell counts
    categories: dict[str, Counter] = dataclasses.field(default_factory=dict)  # categorical -> value counts
    predictions: Counter = dataclasses.field(default_factory=Counter)  # classification: class -> rows
    pred_sum: float = 0.0  # regression: sum and sum of squares of the predictions
    pred_sumsq: float = 0.0
    versions: set[str] = dataclasses.field(default_factory=set)
    labelled: list[pd.DataFrame] = dataclasses.field(default_factory=list)  # rows with a feedback label
    sample: list[pd.DataFrame] = dataclasses.field(default_factory=list)

    def merge(self, other: Partial) -> None:
        """Add ``other``'s counts to these."""
        self.rows += other.rows
        self.missing.update(other.missing)
        for store, more in ((self.bins, other.bins), (self.cells, other.cells)):
            for k, v in more.items():
                store[k] = store[k] + v if k in store else v
        for k, c in other.categories.items():
            self.categories.setdefault(k, Counter()).update(c)
        self.predictions.update(other.predictions)
        self.pred_sum += other.pred_sum
        self.pred_sumsq += other.pred_sumsq
        self.versions |= other.versions
        self.labelled += other.labelled
        self.sample += other.sample


def count_piece(piece: Piece, schema: Schema, grids: Grids) -> Partial:
    """One partition of the scored batch reduced to its :class:`Partial` (runs on a worker)."""
    df = read_piece(piece)
    out = Partial(rows=len(df))
    for c in schema.numeric:
        v = pd.to_numeric(df[c], errors="coerce").to_numpy(dtype=float)
        out.missing[c] = int(df[c].isna().sum())
        kept = v[~np.isnan(v)]
        out.bins[c] = np.bincount(
            np.searchsorted(grids.edges[c], kept, side="right"), minlength=grids.edges[c].size + 1
        )
        out.cells[c] = drift.ecdf_cells(v, grids.values[c])
    for c in schema.categorical:
        out.missing[c] = int(df[c].isna().sum())
        out.categories[c] = Counter(df[c].dropna().astype(str).value_counts().to_dict())
    if schema.task == "classification":
        out.predictions.update(df[PREDICTION].astype(str).value_counts().to_dict())
    else:
        p = df[PREDICTION].to_numpy(dtype=float)
        out.cells[PREDICTION] = drift.ecdf_cells(p, grids.values[PREDICTION])
        kept = p[~np.isnan(p)]
        edges = grids.edges[PREDICTION]
        out.bins[PREDICTION] = np.bincount(np.searchsorted(edges, kept, side="right"), minlength=edges.size + 1)
        out.pred_sum, out.pred_sumsq = float(np.nansum(p)), float(np.nansum(p * p))
        out.missing[PREDICTION] = int(np.isnan(p).sum())
    if VERSION in df:
        out.versions = set(df[VERSION].astype(str).unique().tolist())
    if not grids.labels.empty:
        key = row_id(schema)
        keep = [key, PREDICTION, *[proba_column(c) for c in schema.classes if proba_column(c) in df]]
        out.labelled.append(df.loc[df[key].astype(str).isin(grids.labels[key]), keep])
    if grids.sample_share >= 1.0:
        out.sample.append(df)
    elif grids.sample_share > 0 and len(df):
        take = max(1, round(len(df) * grids.sample_share))
        out.sample.append(df.sample(min(take, len(df)), random_state=piece.index))
    return out


def analyse_on_dask(
    client: Any,
    scored: str,
    reference: pd.DataFrame,
    reference_pred: pd.Series,
    schema: Schema,
    cfg: MonitorConfig,
    labels: pd.DataFrame,
    test_metrics: dict[str, Any],
    log_records: pd.DataFrame | None = None,
    partition_rows: int = 100_000,
) -> tuple[dict[str, Any], list[drift.FeatureDrift], pd.DataFrame]:
    """:func:`lifecycle.monitoring.analysis.analyse` of the scored batch at ``scored`` (a Parquet file, local or
    URL) on the cluster of ``client``, partitions of about ``partition_rows`` rows: the same ``(result,
    features)``, plus the sample of batch rows the drift page plots. Logs partitions done.

    Raises :class:`DataError` when the scored batch has no rows or cannot be read.
    """
    pieces = [dataclasses.replace(p, index=i) for i, p in enumerate(plan_file(scored, partition_rows))]
    total = sum(p.rows or 0 for p in pieces)
    if total == 0:
        raise DataError("the scored batch has no rows; run the score stage on a batch with data")
    numeric_ref = {c: pd.to_numeric(reference[c], errors="coerce").to_numpy(dtype=float) for c in schema.numeric}
    values = {c: np.unique(v[~np.isnan(v)]) for c, v in numeric_ref.items()}
    if schema.task != "classification":
        r = reference_pred.to_numpy(dtype=float)
        values[PREDICTION] = np.unique(r[~np.isnan(r)])
        numeric_ref[PREDICTION] = r
    grids = Grids(
        edges={c: drift.quantile_edges(v, cfg.psi_bins) for c, v in numeric_ref.items()},
        values=values,
        labels=labels,
        sample_share=min(1.0, SAMPLE_ROWS / total),
    )
    [grids_future] = client.scatter([grids], broadcast=True, hash=False)
    log.info("monitoring %d scored rows in %d partition(s) on Dask", total, len(pieces))
    summed = Partial()
    window = 2 * total_threads(client)
    for part in ordered_results(client, count_piece, pieces, schema, grids_future, window=window,
                                what="partitions monitored"):  # fmt: skip
        summed.merge(part)

    features = [
        numeric_from_counts(c, numeric_ref[c], drift.missing_rate(reference[c]), grids, summed, cfg)
        for c in schema.numeric
    ]
    for c in schema.categorical:
        ref = reference[c].dropna().astype(str).value_counts()
        cur = pd.Series(summed.categories.get(c, Counter()), dtype="int64")
        features.append(
            drift.categorical_verdict(
                c, ref, cur, drift.missing_rate(reference[c]), summed.missing[c] / summed.rows, cfg
            )
        )
    prediction = prediction_from_counts(reference_pred, grids, summed, schema, cfg)
    key = row_id(schema)
    labelled = pd.concat(summed.labelled, ignore_index=True) if summed.labelled else pd.DataFrame({key: []})
    feedback = feedback_metrics(labelled, labels, schema)
    log_drift = None
    if log_records is not None and not log_records.empty:
        log_drift = prediction_log_drift(log_records, reference, reference_pred, schema, cfg)
    result = assemble(
        features, prediction, feedback, len(reference), summed.rows, sorted(summed.versions), test_metrics, cfg,
        log_drift, task=schema.task,
    )  # fmt: skip
    sample = pd.concat(summed.sample, ignore_index=True) if summed.sample else pd.DataFrame()
    return result, features, sample


def numeric_from_counts(
    name: str, reference: np.ndarray, m_ref: float, grids: Grids, summed: Partial, cfg: MonitorConfig
) -> drift.FeatureDrift:
    """:func:`lifecycle.monitoring.drift.numeric_drift` of one feature from the summed counts (``reference``: its
    values as numbers, NaN for missing; ``m_ref``: the reference's missing rate)."""
    ref = reference[~np.isnan(reference)]
    cur_bins = summed.bins[name]
    kept = int(cur_bins.sum())
    if kept == 0 or ref.size == 0:
        psi = ks = p = math.nan
    else:
        psi = drift.psi_from_shares(drift.bin_shares(reference, grids.edges[name]), cur_bins / kept)
        ks, p = drift.ks_from_cells(drift.ecdf_cells(ref, grids.values[name]), summed.cells[name])
    return drift.numeric_verdict(name, psi, ks, p, m_ref, summed.missing[name] / summed.rows, cfg)


def prediction_from_counts(
    reference_pred: pd.Series, grids: Grids, summed: Partial, schema: Schema, cfg: MonitorConfig
) -> drift.PredictionDrift:
    """:func:`lifecycle.monitoring.drift.prediction_drift` from the summed counts."""
    if schema.task == "classification":
        cur = pd.Series(summed.predictions, dtype="int64")
        return drift.class_share_drift(reference_pred.astype(str).value_counts(), cur, cfg, schema.classes)
    r = reference_pred.to_numpy(dtype=float)
    r = r[~np.isnan(r)]
    cells = summed.cells[PREDICTION]
    n = int(cells.sum())
    cur_bins = summed.bins[PREDICTION]
    psi = (
        drift.psi_from_shares(drift.bin_shares(r, grids.edges[PREDICTION]), cur_bins / n) if n and r.size else math.nan
    )
    stat, _ = drift.ks_from_cells(drift.ecdf_cells(r, grids.values[PREDICTION]), cells)
    mean = summed.pred_sum / n if n else math.nan
    std = float(np.sqrt(max(summed.pred_sumsq / n - mean * mean, 0.0))) if n else math.nan
    ref_summary = {"mean": float(np.mean(r)), "std": float(np.std(r))}
    return drift.prediction_verdict(psi, stat, ref_summary, {"mean": mean, "std": std}, cfg)
