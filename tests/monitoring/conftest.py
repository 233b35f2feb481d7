"""The monitoring tests' fitted model, built once per test process (see tests/monitoring/fitted.py)."""

from __future__ import annotations

from typing import Any

import pytest
from tests.monitoring.fitted import fitted


@pytest.fixture(scope="session")
def setup(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A small model fitted on v1 telemetry and its files (read-only for the tests)."""
    return fitted(tmp_path_factory.mktemp("monitoring"))
