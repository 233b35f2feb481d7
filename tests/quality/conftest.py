"""Fixtures of the quality tests: the telemetry contract, params.yaml's validate section, messy telemetry."""

from __future__ import annotations

from pathlib import Path

import pytest

from lifecycle.config import Validate, load_params
from lifecycle.data import telemetry
from lifecycle.data.ingest import prepare
from lifecycle.quality.contract import Contract, load_contract

ROOT = Path(__file__).resolve().parents[2]
TELEMETRY = ROOT / "data/contracts/telemetry.yaml"


@pytest.fixture(scope="module")
def cfg() -> Validate:
    return load_params(ROOT / "params.yaml").validate


@pytest.fixture(scope="module")
def messy():
    """Telemetry as ingest writes it, with the simulator's glitches and duplicates (raised so every rule fires)."""
    params = load_params(ROOT / "params.yaml")
    raw = telemetry.generate(4000, seed=11, missing_rate=0.01, glitch_rate=0.01, duplicate_rate=0.01)
    return prepare(raw, params.ingest, "telemetry")


@pytest.fixture(scope="module")
def contract() -> Contract:
    return load_contract(TELEMETRY)
