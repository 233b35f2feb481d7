"""Settings come from SERVE_* variables and are checked when read."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from lifecycle.serve.settings import Settings


def test_settings_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("SERVE_MAX_ROWS", "7")
    monkeypatch.setenv("SERVE_ENGINE", "sklearn")
    monkeypatch.setenv("SERVE_NUMERIC_LIMITS", '{"charge_cycles": [0, 5000]}')
    s = Settings()
    assert (s.max_rows, s.engine, s.numeric_limits) == (7, "sklearn", {"charge_cycles": (0.0, 5000.0)})
    monkeypatch.setenv("SERVE_ENGINE", "gpu")
    with pytest.raises(ValidationError, match="engine"):
        Settings()


def test_challenger_mode_needs_its_files():
    with pytest.raises(ValidationError, match="SERVE_CHALLENGER_MODEL_PATH"):
        Settings(challenger_mode="shadow")
