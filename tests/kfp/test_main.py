"""python -m lifecycle.kfp without the kfp SDK (a `make setup` venv): one line naming the fix, not a traceback."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from lifecycle.errors import LifecycleError
from lifecycle.kfp.__main__ import main


@pytest.mark.parametrize("command", ["compile", "katib"])
def test_without_the_kfp_sdk_it_names_make_setup_dev(command: str, tmp_path: Path, monkeypatch) -> None:
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "kfp" else find_spec(name, *a))
    with pytest.raises(LifecycleError, match=r"kfp SDK is not installed .* run `make setup-dev`"):
        main([command, "--out", str(tmp_path / "out.yaml")])
    assert not (tmp_path / "out.yaml").exists()
