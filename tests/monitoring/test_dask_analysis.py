"""Drift on Dask (lifecycle.monitoring.dask_analysis): counts summed over partitions give the pandas path's numbers."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
import pytest
from distributed import Client, LocalCluster
from scipy import stats
from tests.monitoring.fitted import TEST_METRICS, analyse, labels_of, scored_batch

from lifecycle.monitoring import drift
from lifecycle.monitoring.dask_analysis import analyse_on_dask

pytestmark = pytest.mark.xdist_group("dask")


# --------------------------------------------------------------------------------------------- exact KS from counts
@pytest.mark.parametrize("seed", range(6))
def test_ks_from_cell_counts_is_scipys_two_sample_ks(seed: int) -> None:
    """Continuous, rounded (ties) and shifted values, NaNs, batch values outside the reference's range, the batch
    split into parts whose counts are summed: the statistic and p-value of ks_2samp(method="asymp")."""
    rng = np.random.default_rng(seed)
    ref = rng.normal(0, 1, 800 + 97 * seed)
    cur = rng.normal(0.1 * seed, 1 + 0.1 * seed, 1500)
    if seed % 2:
        ref, cur = np.round(ref, 1), np.round(cur, 1)  # many ties, and batch values that equal reference values
    ref[::50] = np.nan
    cur[::70] = np.nan
    grid = np.unique(ref[~np.isnan(ref)])
    parts = np.array_split(cur, 7)
    cells = sum(drift.ecdf_cells(p, grid) for p in parts)
    d, p = drift.ks_from_cells(drift.ecdf_cells(ref, grid), cells)
    expected = stats.ks_2samp(ref[~np.isnan(ref)], cur[~np.isnan(cur)], method="asymp")
    assert d == pytest.approx(expected.statistic, abs=1e-12)
    assert p == pytest.approx(expected.pvalue, rel=1e-9, abs=1e-300)


def test_ks_from_cells_is_nan_for_an_empty_side() -> None:
    grid = np.array([1.0, 2.0])
    assert all(math.isnan(x) for x in drift.ks_from_cells(drift.ecdf_cells(np.array([np.nan]), grid),
                                                         drift.ecdf_cells(np.array([1.0]), grid)))  # fmt: skip


# --------------------------------------------------------------------------------------------- whole analysis
@pytest.fixture(scope="module")
def client() -> Iterator[Client]:
    with (
        LocalCluster(n_workers=2, threads_per_worker=1, host="127.0.0.1", dashboard_address=None) as cluster,
        Client(cluster) as c,
    ):
        yield c


def assert_close(pandas: Any, dask: Any, where: str = "") -> None:
    """Equal structures; floats equal within 1e-9 (relative) or 1e-12 (absolute)."""
    if isinstance(pandas, dict):
        assert pandas.keys() == dask.keys(), where
        for k in pandas:
            assert_close(pandas[k], dask[k], f"{where}.{k}")
    elif isinstance(pandas, list):
        assert len(pandas) == len(dask), where
        for i, (a, b) in enumerate(zip(pandas, dask, strict=True)):
            assert_close(a, b, f"{where}[{i}]")
    elif isinstance(pandas, float) and not isinstance(dask, bool):
        assert dask == pytest.approx(pandas, rel=1e-9, abs=1e-12, nan_ok=True), where
    else:
        assert pandas == dask, where


@pytest.mark.parametrize(("version", "seed"), [("v1", 5), ("v2", 6)])
def test_same_monitor_result_as_the_pandas_path(setup, client, tmp_path, version, seed) -> None:
    """A fresh (v1) and a drifted (v2) batch with missing values and feedback labels, in 5 partitions."""
    scored = scored_batch(setup, version, seed, rows=3000)
    scored.loc[::40, "ambient_temp_c"] = np.nan
    scored.loc[::35, "charge_mode"] = None
    labels = labels_of(version, seed, rows=3000).iloc[::3].astype({"reading_id": str})
    path = tmp_path / "predictions.parquet"
    scored.to_parquet(path, row_group_size=700, index=False)
    expected, expected_features = analyse(setup, pd.read_parquet(path), labels)
    cfg = setup["params"].monitor
    result, features, sample = analyse_on_dask(
        client, str(path), setup["reference"], setup["ref_pred"], setup["schema"], cfg, labels, TEST_METRICS,
        partition_rows=700,
    )  # fmt: skip
    assert_close(expected, result)
    assert [f.feature for f in features] == [f.feature for f in expected_features]
    assert result["feedback"]["rows"] == 1000
    assert result["retrain"] is (version == "v2")
    assert len(sample) == len(scored)  # below SAMPLE_ROWS: every row is plotted


def test_an_empty_scored_batch_is_a_clear_error(setup, client, tmp_path) -> None:
    path = tmp_path / "empty.parquet"
    scored_batch(setup, "v1", 1, rows=50).iloc[:0].to_parquet(path, index=False)
    from lifecycle.errors import DataError

    with pytest.raises(DataError, match="the scored batch has no rows"):
        analyse_on_dask(
            client, str(path), setup["reference"], setup["ref_pred"], setup["schema"], setup["params"].monitor,
            labels_of("v1", 1)[:0], TEST_METRICS,
        )  # fmt: skip
