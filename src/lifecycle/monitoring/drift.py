"""Drift statistics: a batch (or a prediction log) against the training reference. Pure functions, no I/O.

Per feature:

- numeric: PSI on ten reference-quantile bins, and the two-sample Kolmogorov-Smirnov statistic and p-value;
- categorical: PSI over the categories, the Jensen-Shannon distance (base 2, in [0, 1]) and the chi-square
  test of the reference-versus-batch contingency table;
- both: the missing-value rate in the reference and in the batch, and their difference.

A feature is flagged when an *effect size* crosses its threshold (PSI, or the KS statistic / JS distance
together with a significant test). Effect sizes, not p-values alone: with tens of thousands of reference rows
every test is "significant" for differences no one cares about, and telemetry rows are clustered by vehicle,
so a p-value on its own raises false alarms on fresh data from the same fleet.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Sequence
from typing import Any, Literal, Protocol

import numpy as np
import pandas as pd
from scipy import stats
from scipy.spatial import distance

EPS = 1e-4  # floor of a bin's share in PSI, so an empty bin costs a finite amount
MISSING = "(missing)"


class Thresholds(Protocol):
    """What :func:`compare` needs from ``params.monitor``."""

    psi_bins: int
    psi_threshold: float
    ks_threshold: float
    js_threshold: float
    p_value: float
    max_missing_delta: float
    prediction_psi_threshold: float


@dataclasses.dataclass(frozen=True)
class FeatureDrift:
    """Drift statistics of one column; ``reasons`` is empty when nothing crossed a threshold."""

    feature: str
    kind: Literal["numeric", "categorical"]
    psi: float
    statistic: float  # KS statistic (numeric) or Jensen-Shannon distance (categorical)
    p_value: float  # KS (numeric) or chi-square (categorical) p-value
    missing_reference: float
    missing_current: float
    drifted: bool
    missing_drifted: bool
    reasons: tuple[str, ...] = ()

    @property
    def missing_delta(self) -> float:
        """Missing-value rate of the batch minus the reference's (in [-1, 1])."""
        return self.missing_current - self.missing_reference

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready statistics (rounded to 6 digits, NaN -> null), named by the test: ``ks``/``ks_p_value``
        (numeric) or ``js``/``chi2_p_value`` (categorical)."""
        test = "ks" if self.kind == "numeric" else "js"
        p_name = "ks_p_value" if self.kind == "numeric" else "chi2_p_value"
        return {
            "kind": self.kind,
            "psi": _r(self.psi),
            test: _r(self.statistic),
            p_name: _sig(self.p_value),
            "missing_reference": _r(self.missing_reference),
            "missing_current": _r(self.missing_current),
            "missing_delta": _r(self.missing_delta),
            "drifted": self.drifted,
            "missing_drifted": self.missing_drifted,
            "reasons": list(self.reasons),
        }


def _r(x: float) -> float | None:
    """Round for JSON; NaN (an undefined statistic) becomes null."""
    return None if x is None or not math.isfinite(x) else round(float(x), 6)


def _sig(x: float) -> float | None:
    """A p-value for JSON: 4 significant digits, so 1.1e-189 stays 1.1e-189 instead of rounding to 0.0; NaN -> null."""
    return None if x is None or not math.isfinite(x) else float(f"{float(x):.4g}")


# --------------------------------------------------------------------------------------------- statistics
def quantile_edges(reference: np.ndarray, bins: int = 10) -> np.ndarray:
    """Inner edges of ``bins`` equal-frequency bins of ``reference`` (ties merged, so maybe fewer bins)."""
    ref = reference[~np.isnan(reference)]
    if ref.size == 0:
        return np.array([], dtype=float)
    return np.unique(np.quantile(ref, np.linspace(0.0, 1.0, bins + 1)[1:-1]))


def bin_shares(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Share of the non-missing ``values`` in each bin that ``edges`` (inner edges) define."""
    v = values[~np.isnan(values)]
    counts = np.bincount(np.searchsorted(edges, v, side="right"), minlength=edges.size + 1)
    return counts / max(v.size, 1)


def psi_from_shares(expected: np.ndarray, actual: np.ndarray) -> float:
    """Population stability index: sum((a - e) * ln(a / e)) over the bins, shares floored at ``EPS``.

    The credit-scoring formula (Siddiqi, *Credit Risk Scorecards*, 2006; Yurdakul, *Statistical properties of the
    population stability index*, 2018): < 0.1 stable, 0.1-0.2 moderate, > 0.2 a significant shift.
    """
    e = np.clip(np.asarray(expected, dtype=float), EPS, None)
    a = np.clip(np.asarray(actual, dtype=float), EPS, None)
    return float(np.sum((a - e) * np.log(a / e)))


def psi_numeric(reference: np.ndarray, current: np.ndarray, bins: int = 10) -> float:
    """PSI of ``current`` against ``reference`` on the reference's quantile bins (missing values excluded)."""
    ref, cur = np.asarray(reference, dtype=float), np.asarray(current, dtype=float)
    if np.isnan(cur).all() or np.isnan(ref).all():
        return math.nan
    edges = quantile_edges(ref, bins)
    return psi_from_shares(bin_shares(ref, edges), bin_shares(cur, edges))


def ks_test(reference: np.ndarray, current: np.ndarray) -> tuple[float, float]:
    """Two-sample Kolmogorov-Smirnov statistic (the largest distance between the two empirical CDFs, in [0, 1])
    and its asymptotic p-value (``scipy.stats.ks_2samp``, ``method="asymp"``) on the non-missing values; NaN for
    an empty side."""
    ref, cur = np.asarray(reference, dtype=float), np.asarray(current, dtype=float)
    ref, cur = ref[~np.isnan(ref)], cur[~np.isnan(cur)]
    if ref.size == 0 or cur.size == 0:
        return math.nan, math.nan
    result = stats.ks_2samp(ref, cur, method="asymp")
    return float(result.statistic), float(result.pvalue)


def category_counts(reference: pd.Series, current: pd.Series) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Aligned counts of each category (missing values excluded) in the reference and the batch."""
    ref = reference.dropna().astype(str).value_counts()
    cur = current.dropna().astype(str).value_counts()
    levels = sorted(set(ref.index) | set(cur.index))
    return levels, ref.reindex(levels, fill_value=0).to_numpy(), cur.reindex(levels, fill_value=0).to_numpy()


def psi_categorical(reference: pd.Series, current: pd.Series) -> float:
    """PSI over the categories (a category unseen in the reference counts as its own bin)."""
    _, ref, cur = category_counts(reference, current)
    if ref.sum() == 0 or cur.sum() == 0:
        return math.nan
    return psi_from_shares(ref / ref.sum(), cur / cur.sum())


def jensen_shannon(reference: pd.Series, current: pd.Series) -> float:
    """Jensen-Shannon distance (base 2: 0 = same distribution, 1 = disjoint) of the category shares: the square
    root of the JS divergence (``scipy.spatial.distance.jensenshannon``); NaN for an empty side."""
    _, ref, cur = category_counts(reference, current)
    if ref.sum() == 0 or cur.sum() == 0:
        return math.nan
    return float(distance.jensenshannon(ref / ref.sum(), cur / cur.sum(), base=2))


def chi_square(reference: pd.Series, current: pd.Series) -> tuple[float, float]:
    """Chi-square test of homogeneity of the category counts (reference vs batch; ``scipy.stats.chi2_contingency``
    without continuity correction): ``(statistic, p-value)``, ``(0.0, 1.0)`` with fewer than two categories."""
    _, ref, cur = category_counts(reference, current)
    table = np.vstack([ref, cur])
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2 or ref.sum() == 0 or cur.sum() == 0:
        return 0.0, 1.0
    stat, p, _, _ = stats.chi2_contingency(table, correction=False)
    return float(stat), float(p)


def missing_rate(values: pd.Series) -> float:
    """Share of missing values (in [0, 1]); NaN for no values."""
    return float(values.isna().mean()) if len(values) else math.nan


# --------------------------------------------------------------------------------------------- per feature
def numeric_drift(name: str, reference: pd.Series, current: pd.Series, cfg: Thresholds) -> FeatureDrift:
    """Drift of a numeric column: drifted when PSI >= ``cfg.psi_threshold``, or KS >= ``cfg.ks_threshold`` with
    p < ``cfg.p_value``; a missing-rate change alone (|delta| >= ``cfg.max_missing_delta``) is reported but does
    not count as drift. Values that are not numbers count as missing."""
    ref = pd.to_numeric(reference, errors="coerce").to_numpy(dtype=float)
    cur = pd.to_numeric(current, errors="coerce").to_numpy(dtype=float)
    psi = psi_numeric(ref, cur, cfg.psi_bins)
    ks, p = ks_test(ref, cur)
    reasons = []
    if psi >= cfg.psi_threshold:
        reasons.append(f"PSI {psi:.3f} >= monitor.psi_threshold {cfg.psi_threshold}")
    if ks >= cfg.ks_threshold and p < cfg.p_value:
        reasons.append(f"KS statistic {ks:.3f} >= monitor.ks_threshold {cfg.ks_threshold} (p={p:.2g})")
    return _finish(name, "numeric", psi, ks, p, reference, current, reasons, cfg)


def categorical_drift(name: str, reference: pd.Series, current: pd.Series, cfg: Thresholds) -> FeatureDrift:
    """Drift of a categorical column: drifted when PSI >= ``cfg.psi_threshold``, or the JS distance >=
    ``cfg.js_threshold`` with chi-square p < ``cfg.p_value``; missing rates as :func:`numeric_drift`."""
    psi = psi_categorical(reference, current)
    js = jensen_shannon(reference, current)
    _, p = chi_square(reference, current)
    reasons = []
    if psi >= cfg.psi_threshold:
        reasons.append(f"PSI {psi:.3f} >= monitor.psi_threshold {cfg.psi_threshold}")
    if js >= cfg.js_threshold and p < cfg.p_value:
        reasons.append(f"Jensen-Shannon distance {js:.3f} >= monitor.js_threshold {cfg.js_threshold} (p={p:.2g})")
    return _finish(name, "categorical", psi, js, p, reference, current, reasons, cfg)


def _finish(
    name: str,
    kind: Literal["numeric", "categorical"],
    psi: float,
    statistic: float,
    p: float,
    reference: pd.Series,
    current: pd.Series,
    reasons: list[str],
    cfg: Thresholds,
) -> FeatureDrift:
    m_ref, m_cur = missing_rate(reference), missing_rate(current)
    missing_drifted = abs(m_cur - m_ref) >= cfg.max_missing_delta
    if missing_drifted:
        reasons.append(
            f"missing rate {m_cur:.3f} vs {m_ref:.3f} in the reference "
            f"(|delta| >= monitor.max_missing_delta {cfg.max_missing_delta})"
        )
    drifted = bool(reasons) and not (missing_drifted and len(reasons) == 1)
    return FeatureDrift(name, kind, psi, statistic, p, m_ref, m_cur, drifted, missing_drifted, tuple(reasons))


def compare(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    numeric: Iterable[str],
    categorical: Iterable[str],
    cfg: Thresholds,
) -> list[FeatureDrift]:
    """Drift of every listed column of ``current`` against ``reference`` (columns in the order given)."""
    out = [numeric_drift(c, reference[c], current[c], cfg) for c in numeric]
    out += [categorical_drift(c, reference[c], current[c], cfg) for c in categorical]
    return out


# --------------------------------------------------------------------------------------------- predictions
@dataclasses.dataclass(frozen=True)
class PredictionDrift:
    """Drift of the model's output: predicted-class shares (classification) or predicted values (regression)."""

    psi: float
    statistic: float  # JS distance of class shares, or KS statistic of the values
    reference: dict[str, float]  # class -> share, or summary statistics of the values
    current: dict[str, float]
    drifted: bool
    reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "psi": _r(self.psi),
            "statistic": _r(self.statistic),
            "reference": {k: _r(v) for k, v in self.reference.items()},
            "current": {k: _r(v) for k, v in self.current.items()},
            "drifted": self.drifted,
            "reason": self.reason,
        }


def prediction_drift(
    reference: pd.Series, current: pd.Series, task: str, cfg: Thresholds, classes: Sequence[Any] = ()
) -> PredictionDrift:
    """Compare the distribution of predictions on the batch with the one on the reference rows."""
    if task == "classification":
        levels = sorted({str(c) for c in classes} | set(reference.astype(str)) | set(current.astype(str)))
        ref = reference.astype(str).value_counts(normalize=True).reindex(levels, fill_value=0.0)
        cur = current.astype(str).value_counts(normalize=True).reindex(levels, fill_value=0.0)
        psi = psi_from_shares(ref.to_numpy(), cur.to_numpy())
        stat = float(distance.jensenshannon(ref.to_numpy(), cur.to_numpy(), base=2))
        ref_summary, cur_summary = ref.to_dict(), cur.to_dict()
    else:
        r, c = reference.to_numpy(dtype=float), current.to_numpy(dtype=float)
        psi = psi_numeric(r, c, cfg.psi_bins)
        stat, _ = ks_test(r, c)
        ref_summary = {"mean": float(np.nanmean(r)), "std": float(np.nanstd(r))}
        cur_summary = {"mean": float(np.nanmean(c)), "std": float(np.nanstd(c))}
    drifted = bool(psi >= cfg.prediction_psi_threshold)
    reason = f"prediction PSI {psi:.3f} >= monitor.prediction_psi_threshold {cfg.prediction_psi_threshold}"
    return PredictionDrift(psi, stat, ref_summary, cur_summary, drifted, reason if drifted else "")
