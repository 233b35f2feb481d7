"""Seeded simulator of EV battery telemetry, the project's built-in dataset.

One row is a battery-pack snapshot from one vehicle. ``generate`` builds a fleet (chemistry, climate zone,
pack age and charging habits are fixed per vehicle), draws snapshots from it with simple, physically
plausible relations, labels each snapshot with a fault class from noisy latent scores, and then adds the
mess real telemetry has: missing sensor cells, out-of-range sensor glitches and duplicated rows.

``version="v1"`` is the reference fleet (2025). ``"v2"`` is the same fleet a year later (2026): a hotter
climate, more fast charging and older packs; ``DRIFTED_FEATURES`` and ``STABLE_FEATURES`` say which
columns that moves. Everything is drawn from one ``np.random.default_rng(seed)``, so the same arguments
always give the same frame.

    python -m lifecycle.data.telemetry --fleet v2 --rows 50000 --seed 7 --out data/raw/telemetry.parquet
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from scipy import special

from lifecycle.io import write_table

logger = logging.getLogger(__name__)

TARGET = "fault"
CLASSES = ("none", "degradation", "overheating", "cell_imbalance")
ID_COLUMNS = ("reading_id", "vehicle_id")
DATETIME_COLUMN = "recorded_at"
CHARGE_MODES = ("slow", "normal", "fast")
CHEMISTRIES = ("NMC", "LFP")
CLIMATE_ZONES = ("cold", "temperate", "hot", "desert")
CATEGORICAL_COLUMNS = ("charge_mode", "chemistry", "climate_zone")
PHYSICAL_LIMITS: dict[str, tuple[float, float]] = {
    "state_of_health_pct": (0.0, 100.0),
    "state_of_charge_pct": (0.0, 100.0),
    "cell_temp_max_c": (-40.0, 90.0),
    "ambient_temp_c": (-45.0, 60.0),
    "pack_voltage_v": (200.0, 500.0),
    "cell_voltage_imbalance_mv": (0.0, 1000.0),
    "internal_resistance_mohm": (0.0, 1000.0),
    "charge_cycles": (0.0, 10000.0),
}
NUMERIC_COLUMNS = tuple(PHYSICAL_LIMITS)
COLUMNS = (*ID_COLUMNS, DATETIME_COLUMN, *NUMERIC_COLUMNS, *CATEGORICAL_COLUMNS, TARGET)
DRIFTED_FEATURES: tuple[str, ...] = (
    "ambient_temp_c",
    "climate_zone",
    "charge_mode",
    "charge_cycles",
    "state_of_health_pct",
    "internal_resistance_mohm",
    "cell_temp_max_c",
    "cell_voltage_imbalance_mv",
)
STABLE_FEATURES: tuple[str, ...] = ("state_of_charge_pct", "chemistry", "pack_voltage_v")

_LEVELS = {  # category codes -> names
    "charge_mode": CHARGE_MODES,
    "chemistry": CHEMISTRIES,
    "climate_zone": CLIMATE_ZONES,
    TARGET: CLASSES,
}
_FLEETS = {
    "v1": {"year": 2025, "zones": (0.25, 0.40, 0.20, 0.15), "fast": 0.20, "warming": 0.0, "extra_age": 0.0},
    "v2": {"year": 2026, "zones": (0.15, 0.30, 0.30, 0.25), "fast": 0.45, "warming": 2.2, "extra_age": 1.0},
}
_ZONE_MEAN_C = np.array([2.0, 12.0, 24.0, 28.0])  # yearly mean ambient temperature per climate zone
_ZONE_SWING_C = np.array([12.0, 9.0, 6.0, 10.0])  # seasonal amplitude per climate zone
_FADE = np.array([14.0, 8.0])  # SoH points lost per 1000 cycles (NMC, LFP) at unit stress
_R0_MOHM = np.array([70.0, 85.0])  # internal resistance of a new pack (NMC, LFP)
_MODE_RISE_C = np.array([2.0, 5.0, 9.0])  # cell temperature rise over ambient (slow, normal, fast)
_MODE_LOAD = np.array([0.3, 0.6, 1.6])  # relative current; I^2R heating scales with it
# Latent fault scores: (value - threshold) / scale, plus N(0, _LABEL_NOISE) per class.
_DEGRADATION = (83.0, 2.5)  # SoH below threshold
_OVERHEATING = (42.0, 3.0)  # cell temperature above threshold
_IMBALANCE = (30.0, 5.0)  # cell voltage imbalance above threshold
_LABEL_NOISE = 0.9
# Out-of-range readings typical of sensor faults: unset registers, open circuits, sign errors.
_GLITCH_VALUES = {
    "state_of_health_pct": (250.0, -1.0),
    "state_of_charge_pct": (255.0, -1.0),
    "cell_temp_max_c": (-273.0, 999.0),
    "ambient_temp_c": (-273.0, 999.0),
    "pack_voltage_v": (0.0, 6553.5),
    "cell_voltage_imbalance_mv": (-1.0, 65535.0),
    "internal_resistance_mohm": (-12.5, 9999.0),
    "charge_cycles": (-1.0, 65535.0),
}


def _validate(rows: int, version: str, rates: dict[str, float]) -> None:
    if version not in _FLEETS:
        known = ", ".join(_FLEETS)
        raise ValueError(f"version={version!r} is not a known fleet version; use one of: {known}")
    if isinstance(rows, bool) or not isinstance(rows, int | np.integer) or rows < 1:
        raise ValueError(f"rows={rows!r} must be an integer >= 1; use a positive count such as rows=50_000")
    for name, rate in rates.items():
        if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0.0 <= rate < 1.0:
            raise ValueError(f"{name}={rate!r} must be a float in [0, 1); use e.g. {name}=0.01 (0 = off)")


def _exact_shares(rng: np.random.Generator, n: int, shares: tuple[float, ...]) -> np.ndarray:
    """Category codes in exactly the given proportions, randomly assigned (no fleet-level sampling noise)."""
    bounds = np.round(np.cumsum(shares) * n).astype(np.int64)
    return np.searchsorted(bounds, rng.permutation(n), side="right")


def _stratified(rng: np.random.Generator, n: int) -> np.ndarray:
    """Uniform(0, 1) draws, one per stratum of width 1/n, shuffled: a fleet spread without sampling noise."""
    return (rng.permutation(n) + rng.random(n)) / n


def _simulate(rng: np.random.Generator, n: int, fleet: dict) -> dict[str, np.ndarray]:
    n_veh = max(50, n // 20)
    chem = _exact_shares(rng, n_veh, (0.6, 0.4))
    zone = _exact_shares(rng, n_veh, fleet["zones"])
    age = 0.2 + 4.0 * _stratified(rng, n_veh) + fleet["extra_age"]  # pack age in years on January 1st
    cycles_per_year = 260.0 * np.exp(0.3 * special.ndtri(_stratified(rng, n_veh)))
    fast = fleet["fast"]  # fleet share of fast charging; per-vehicle preference ~ Beta with that mean
    fast_pref = special.betaincinv(10.0 * fast, 10.0 * (1.0 - fast), _stratified(rng, n_veh))
    cell_quality = np.exp(0.25 * special.ndtri(_stratified(rng, n_veh)))  # multiplies the fade rate
    zone_temp = _ZONE_MEAN_C[zone] + fleet["warming"]

    veh = rng.integers(0, n_veh, n)
    start = np.datetime64(f"{fleet['year']}-01-01", "s")
    year_s = int((np.datetime64(f"{fleet['year'] + 1}-01-01", "s") - start).astype(np.int64))
    t_s = np.sort(rng.integers(0, year_s, n))
    frac = t_s / year_s
    recorded = (start + t_s.astype("timedelta64[s]")).astype("datetime64[ns]")

    z, c, pf = zone[veh], chem[veh], fast_pref[veh]
    season = np.cos(2.0 * np.pi * (frac - 0.55))  # +1 in late July, -1 in late January
    ambient = zone_temp[veh] + _ZONE_SWING_C[z] * season + rng.normal(0.0, 4.0, n)
    u = rng.random(n)
    mode = np.where(u < pf, 2, np.where(u < pf + 0.375 * (1.0 - pf), 0, 1))
    pack_age = age[veh] + frac
    cycles = np.round(cycles_per_year[veh] * pack_age)
    stress = (1.0 + 0.02 * (zone_temp[veh] - 12.0) + 0.8 * pf) * cell_quality[veh]
    soh = 100.0 - _FADE[c] * (cycles / 1000.0) ** 0.9 * stress + rng.normal(0.0, 0.8, n)
    soh = np.clip(soh, 40.0, 100.0)
    cold = np.clip(15.0 - ambient, 0.0, None)
    resistance = _R0_MOHM[c] * (1.0 + 0.05 * (100.0 - soh)) * (1.0 + 0.012 * cold)
    resistance *= rng.lognormal(0.0, 0.05, n)
    cell_temp = ambient + _MODE_RISE_C[mode] + 0.08 * resistance * _MODE_LOAD[mode] + rng.normal(0.0, 2.0, n)
    soc = np.clip(rng.beta(2.0, 1.5, n) * 100.0, 1.0, 100.0)
    s = soc / 100.0
    nmc_v = 345.0 + 55.0 * s**0.8
    lfp_v = 320.0 + 12.0 * (1.0 - np.exp(-s / 0.05)) + 18.0 * s + 15.0 * np.clip(s - 0.95, 0.0, None) / 0.05
    voltage = np.where(c == 0, nmc_v, lfp_v) + rng.normal(0.0, 1.5, n)
    imbalance = (3.0 + 5.0 * pack_age) * rng.lognormal(0.0, 0.3, n)
    imbalance += np.where(rng.random(n) < 0.12, rng.pareto(2.0, n) * 30.0, 0.0)  # heavy tail of weak cells

    scores = np.column_stack(
        [
            np.zeros(n),
            (_DEGRADATION[0] - soh) / _DEGRADATION[1],
            (cell_temp - _OVERHEATING[0]) / _OVERHEATING[1],
            (imbalance - _IMBALANCE[0]) / _IMBALANCE[1],
        ]
    )
    scores[:, 1:] += rng.normal(0.0, _LABEL_NOISE, (n, 3))
    return {
        "vehicle": veh,
        DATETIME_COLUMN: recorded,
        "state_of_health_pct": soh,
        "state_of_charge_pct": soc,
        "cell_temp_max_c": np.clip(cell_temp, -38.0, 85.0),
        "ambient_temp_c": np.clip(ambient, -40.0, 55.0),
        "pack_voltage_v": voltage,
        "cell_voltage_imbalance_mv": np.clip(imbalance, 0.5, 900.0),
        "internal_resistance_mohm": np.clip(resistance, 5.0, 900.0),
        "charge_cycles": np.clip(cycles, 0.0, 9000.0),
        "charge_mode": mode,
        "chemistry": c,
        "climate_zone": z,
        TARGET: scores.argmax(axis=1),
    }


def _ids(prefix: str, numbers: np.ndarray, width: int) -> pd.Series:
    text = pc.utf8_lpad(pc.cast(pa.array(numbers), pa.string()), width, "0")
    return pc.binary_join_element_wise(prefix, text, "").to_pandas()


def generate(
    rows: int = 50_000,
    version: str = "v1",
    seed: int = 42,
    missing_rate: float = 0.01,
    glitch_rate: float = 0.002,
    duplicate_rate: float = 0.005,
) -> pd.DataFrame:
    """Simulate ``rows`` battery snapshots of fleet ``version`` ("v1" or "v2"), messed up by the given rates.

    ``missing_rate`` is the fraction of numeric sensor cells set to NaN, ``glitch_rate`` the fraction of rows
    with one sensor value replaced by an out-of-range reading (outside ``PHYSICAL_LIMITS``) and
    ``duplicate_rate`` the fraction of the ``rows`` output rows that are exact copies of other rows.
    """
    rates = {"missing_rate": missing_rate, "glitch_rate": glitch_rate, "duplicate_rate": duplicate_rate}
    _validate(rows, version, rates)
    rng = np.random.default_rng(seed)
    n_dup = int(rows * duplicate_rate)  # < rows because duplicate_rate < 1
    n = rows - n_dup
    data = _simulate(rng, n, _FLEETS[version])

    for col in NUMERIC_COLUMNS:
        data[col][rng.random(n) < missing_rate] = np.nan
    glitch_rows = rng.choice(n, size=round(n * glitch_rate), replace=False)
    glitch_cols = rng.integers(0, len(NUMERIC_COLUMNS), glitch_rows.size)
    glitch_pick = rng.integers(0, 2, glitch_rows.size)
    for j, col in enumerate(NUMERIC_COLUMNS):
        hit = glitch_cols == j
        data[col][glitch_rows[hit]] = np.asarray(_GLITCH_VALUES[col])[glitch_pick[hit]]

    order = np.insert(np.arange(n), rng.integers(0, n + 1, n_dup), rng.integers(0, n, n_dup))
    frame = {
        "reading_id": _ids(f"{version}-", order, 8),
        "vehicle_id": _ids("EV-", data["vehicle"][order], 5),
    }
    for col in COLUMNS[2:]:
        values = data[col][order]
        frame[col] = pa.array(_LEVELS[col]).take(values).to_pandas() if col in _LEVELS else values
    return pd.DataFrame(frame)


class _HelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """``--help`` keeps the module docstring's layout and shows every option's default."""


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point: generate a telemetry batch and write it as CSV or Parquet.

    ``--fleet`` picks the fleet version (v1, v2); ``--version`` prints the package's version, as elsewhere.
    Exits 2 (argparse) on a bad argument, naming it and the fix.
    """
    from lifecycle import __version__

    parser = argparse.ArgumentParser(
        prog="python -m lifecycle.data.telemetry", description=__doc__, formatter_class=_HelpFormatter
    )
    parser.add_argument("--version", action="version", version=f"lifecycle {__version__}")
    parser.add_argument("--fleet", default="v1", choices=sorted(_FLEETS), help="fleet version: v2 is v1 a year later")
    parser.add_argument("--rows", type=int, default=50_000, help="number of rows, duplicates included")
    parser.add_argument("--seed", type=int, default=42, help="random seed")
    parser.add_argument("--out", type=Path, required=True, help="output file, .csv or .parquet")
    parser.add_argument("--missing-rate", type=float, default=0.01, help="fraction of sensor cells set NaN")
    parser.add_argument("--glitch-rate", type=float, default=0.002, help="fraction of rows with a glitch")
    parser.add_argument("--duplicate-rate", type=float, default=0.005, help="fraction of duplicated rows")
    args_list = list(sys.argv[1:] if argv is None else argv)
    for i, arg in enumerate(args_list[:-1]):
        if arg == "--version" and args_list[i + 1] in _FLEETS:  # the flag's meaning before it was renamed
            parser.error(f"--version {args_list[i + 1]}: the fleet is chosen with --fleet {args_list[i + 1]} "
                         "(--version prints the package version)")  # fmt: skip
    args = parser.parse_args(args_list)
    if args.out.suffix.lower() not in {".csv", ".parquet"}:
        parser.error(f"--out {args.out}: unsupported suffix {args.out.suffix!r}; end the path in .csv or .parquet")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    started = time.perf_counter()
    try:
        rates = {"missing_rate": args.missing_rate, "glitch_rate": args.glitch_rate}
        df = generate(args.rows, args.fleet, args.seed, duplicate_rate=args.duplicate_rate, **rates)
    except ValueError as exc:
        parser.error(str(exc))
    write_table(df, args.out)
    elapsed = time.perf_counter() - started
    logger.info("wrote %d rows of fleet %s to %s in %.2f s", len(df), args.fleet, args.out, elapsed)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
