"""Unit tests for the EV battery telemetry simulator (``lifecycle.data.telemetry``)."""

from __future__ import annotations

import io
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from lifecycle.data import telemetry as tel

ROWS = 20_000


def _clean(rows: int = ROWS, version: str = "v1", seed: int = 1) -> pd.DataFrame:
    return tel.generate(rows, version, seed, missing_rate=0.0, glitch_rate=0.0, duplicate_rate=0.0)


def _out_of_range(df: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({c: (df[c] < lo) | (df[c] > hi) for c, (lo, hi) in tel.PHYSICAL_LIMITS.items()})


def _psi(ref: np.ndarray, cur: np.ndarray) -> float:
    edges = np.unique(np.quantile(ref, np.linspace(0.0, 1.0, 11)))
    edges[0], edges[-1] = -np.inf, np.inf
    p = np.clip(np.histogram(ref, edges)[0] / len(ref), 1e-6, None)
    q = np.clip(np.histogram(cur, edges)[0] / len(cur), 1e-6, None)
    return float(np.sum((q - p) * np.log(q / p)))


def _drift_pvalue(a: pd.Series, b: pd.Series) -> float:
    if a.dtype.kind == "f":
        return float(stats.ks_2samp(a.dropna(), b.dropna()).pvalue)
    table = pd.concat([a.value_counts(), b.value_counts()], axis=1).fillna(0)
    return float(stats.chi2_contingency(table.to_numpy()).pvalue)


@pytest.fixture(scope="module")
def v1() -> pd.DataFrame:
    return _clean(seed=1)


@pytest.fixture(scope="module")
def v2() -> pd.DataFrame:
    return _clean(version="v2", seed=2)


def test_same_arguments_give_identical_frames_and_parquet_bytes():
    a = tel.generate(5_000, "v2", seed=7)
    b = tel.generate(5_000, "v2", seed=7)
    pd.testing.assert_frame_equal(a, b)
    buffers = [io.BytesIO(), io.BytesIO()]
    for df, buf in zip((a, b), buffers, strict=True):
        df.to_parquet(buf, index=False)
    assert buffers[0].getvalue() == buffers[1].getvalue()


def test_different_seeds_differ():
    a, b = tel.generate(5_000, seed=1), tel.generate(5_000, seed=2)
    assert not a["state_of_health_pct"].equals(b["state_of_health_pct"])
    assert not a["vehicle_id"].equals(b["vehicle_id"])


def test_does_not_touch_global_numpy_state():
    np.random.seed(123)
    before = np.random.get_state()[1].copy()
    tel.generate(1_000)
    assert np.array_equal(np.random.get_state()[1], before)


def test_columns_dtypes_and_value_types():
    df = tel.generate(5_000, "v1", seed=3)
    assert list(df.columns) == list(tel.COLUMNS)
    assert df.columns[-1] == tel.TARGET
    assert df[tel.DATETIME_COLUMN].dtype == "datetime64[ns]"
    for col in tel.NUMERIC_COLUMNS:
        assert df[col].dtype == np.float64, col
    for col in (*tel.ID_COLUMNS, *tel.CATEGORICAL_COLUMNS, tel.TARGET):
        assert all(type(v) is str for v in df[col]), col
    assert set(df["charge_mode"]) == {"slow", "normal", "fast"}
    assert set(df["chemistry"]) == {"NMC", "LFP"}
    assert set(df["climate_zone"]) == set(tel.CLIMATE_ZONES)
    assert df["reading_id"].str.fullmatch(r"v1-\d{8}").all()
    assert df["vehicle_id"].str.fullmatch(r"EV-\d{5}").all()
    assert df["vehicle_id"].nunique() <= 250  # ~rows / 20 vehicles


@pytest.mark.parametrize(("version", "year"), [("v1", 2025), ("v2", 2026)])
def test_recorded_at_lies_in_the_fleet_year(version, year):
    ts = tel.generate(2_000, version, seed=4)[tel.DATETIME_COLUMN]
    assert ts.min() >= pd.Timestamp(f"{year}-01-01")
    assert ts.max() < pd.Timestamp(f"{year + 1}-01-01")
    assert ts.dt.tz is None


@pytest.mark.parametrize("rows", [1, 2, 49, 1_001])
def test_length_is_exactly_rows(rows):
    assert len(tel.generate(rows, duplicate_rate=0.5)) == rows


def test_missing_rate_hits_only_numeric_sensor_cells():
    df = tel.generate(ROWS, seed=5, missing_rate=0.05, glitch_rate=0.0, duplicate_rate=0.0)
    frac = df[list(tel.NUMERIC_COLUMNS)].isna().to_numpy().mean()
    assert frac == pytest.approx(0.05, abs=0.004)
    assert df.drop(columns=list(tel.NUMERIC_COLUMNS)).notna().all().all()


def test_glitch_rows_are_outside_physical_limits():
    df = tel.generate(ROWS, seed=6, missing_rate=0.0, glitch_rate=0.01, duplicate_rate=0.0)
    bad = _out_of_range(df)
    assert bad.any(axis=1).sum() == round(ROWS * 0.01)
    assert bad.sum(axis=1).max() == 1  # one glitched sensor per row
    assert bad.any(axis=0).sum() >= 6  # glitches spread over the sensors


def test_duplicates_are_exact_copies_and_counted_in_rows():
    df = tel.generate(ROWS, seed=7, duplicate_rate=0.02)
    assert len(df) == ROWS
    assert df.duplicated().sum() == int(ROWS * 0.02)
    assert df["reading_id"].duplicated().sum() == int(ROWS * 0.02)
    first_dup = np.flatnonzero(df.duplicated().to_numpy())
    assert first_dup.min() < ROWS // 2  # copies are spread out, not all appended at the end


def test_clean_values_lie_within_physical_limits(v1, v2):
    for df in (v1, v2):
        assert not _out_of_range(df).any().any()
        assert df[list(tel.NUMERIC_COLUMNS)].notna().all().all()
        assert (df["charge_cycles"] == df["charge_cycles"].round()).all()


def test_all_classes_present_with_plausible_mix(v1):
    share = v1[tel.TARGET].value_counts(normalize=True)
    assert set(share.index) == set(tel.CLASSES)
    assert 0.55 <= share["none"] <= 0.70
    for fault in tel.CLASSES[1:]:
        assert share[fault] >= 0.08, fault


def test_physics_relations(v1):
    assert v1["charge_cycles"].corr(v1["state_of_health_pct"]) < -0.5
    assert v1["state_of_health_pct"].corr(v1["internal_resistance_mohm"]) < -0.5
    by_mode = v1.groupby("charge_mode")["cell_temp_max_c"].mean()
    assert by_mode["slow"] < by_mode["normal"] < by_mode["fast"]
    volts = v1.groupby("chemistry")["pack_voltage_v"]
    assert volts.min()["NMC"] >= 340
    assert volts.max()["NMC"] <= 410
    assert volts.min()["LFP"] >= 310
    assert volts.max()["LFP"] <= 370
    fault_temp = v1.groupby(tel.TARGET)["cell_temp_max_c"].mean()
    assert fault_temp.idxmax() == "overheating"


def test_v2_drifts_the_drifted_features(v1, v2):
    for col in tel.DRIFTED_FEATURES:
        assert _drift_pvalue(v1[col], v2[col]) < 1e-6, col
    assert v2["ambient_temp_c"].mean() - v1["ambient_temp_c"].mean() == pytest.approx(6.0, abs=1.0)
    assert (v1["charge_mode"] == "fast").mean() == pytest.approx(0.20, abs=0.03)
    assert (v2["charge_mode"] == "fast").mean() == pytest.approx(0.45, abs=0.03)
    assert v2["charge_cycles"].mean() / v1["charge_cycles"].mean() == pytest.approx(1.4, abs=0.1)
    assert v2["climate_zone"].isin(["hot", "desert"]).mean() > v1["climate_zone"].isin(["hot", "desert"]).mean()


def test_v2_leaves_the_stable_features_alone(v1, v2):
    assert not set(tel.STABLE_FEATURES) & set(tel.DRIFTED_FEATURES)
    assert {"state_of_charge_pct", "chemistry"} <= set(tel.STABLE_FEATURES)
    for col in tel.STABLE_FEATURES:
        assert _drift_pvalue(v1[col], v2[col]) > 0.01, col
        if v1[col].dtype.kind == "f":
            assert _psi(v1[col].to_numpy(), v2[col].to_numpy()) < 0.02, col


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"version": "v3"}, "version"),
        ({"rows": 0}, "rows"),
        ({"rows": 10.5}, "rows"),
        ({"missing_rate": 1.0}, "missing_rate"),
        ({"missing_rate": float("nan")}, "missing_rate"),
        ({"glitch_rate": -0.1}, "glitch_rate"),
        ({"duplicate_rate": 1.5}, "duplicate_rate"),
    ],
)
def test_invalid_arguments_raise_value_error_naming_the_argument(kwargs, name):
    with pytest.raises(ValueError, match=rf"^{name}=") as info:
        tel.generate(**kwargs)
    assert "use" in str(info.value)


def _cli(*args: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "lifecycle.data.telemetry", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_cli_writes_table(tmp_path, suffix):
    out = tmp_path / "sub" / f"telemetry{suffix}"
    proc = _cli("--fleet", "v2", "--rows", "3000", "--seed", "9", "--out", str(out), "--glitch-rate", "0.01")
    assert proc.returncode == 0, proc.stderr
    expected = tel.generate(3000, "v2", seed=9, glitch_rate=0.01)
    if suffix == ".parquet":
        pd.testing.assert_frame_equal(pd.read_parquet(out), expected, check_dtype=False)
    else:
        got = pd.read_csv(out)
        assert list(got.columns) == list(tel.COLUMNS)
        assert len(got) == 3000
        assert got["reading_id"].tolist() == expected["reading_id"].tolist()
    assert "3000 rows" in proc.stderr


def test_cli_rejects_unknown_suffix(tmp_path):
    out = tmp_path / "telemetry.json"
    proc = _cli("--rows", "100", "--out", str(out))
    assert proc.returncode == 2
    assert ".json" in proc.stderr
    assert ".parquet" in proc.stderr
    assert not out.exists()


def test_cli_rejects_bad_rate_with_exit_2(tmp_path):
    proc = _cli("--rows", "100", "--out", str(tmp_path / "t.csv"), "--missing-rate", "1.5")
    assert proc.returncode == 2
    assert "missing_rate=1.5" in proc.stderr


def test_cli_version_prints_the_package_version_and_fleet_picks_the_fleet():
    from lifecycle import __version__

    proc = _cli("--version")
    assert proc.returncode == 0
    assert proc.stdout.strip() == f"lifecycle {__version__}"


@pytest.mark.parametrize("fleet", ["v1", "v2"])
def test_cli_old_version_flag_with_a_fleet_is_refused_with_the_new_flag(tmp_path, fleet):
    out = tmp_path / "x.csv"
    proc = _cli("--version", fleet, "--out", str(out))
    assert proc.returncode == 2
    assert f"--fleet {fleet}" in proc.stderr
    assert not out.exists()


def test_cli_help_shows_the_defaults():
    proc = _cli("--help")
    assert proc.returncode == 0
    for default in ("(default: v1)", "(default: 50000)", "(default: 42)", "(default: 0.01)", "(default: 0.002)"):
        assert default in proc.stdout
