"""The registry's parts that need git but no DVC pipeline (lifecycle.registry): where a version's files are, per
the params.yaml of its commit; the champion reset; errors. Releasing and materializing real versions is tested in
tests/e2e/test_registry.py and tests/e2e/test_s3_remote.py."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import yaml

from lifecycle import registry
from tests.conftest import ROOT, git_commit, run


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    run(["git", "init", "-q", "-b", "main"], tmp_path)
    return tmp_path


def write_params(repo: Path, params: dict) -> None:
    (repo / "params.yaml").write_text(yaml.safe_dump(params))


def test_paths_come_from_the_params_of_the_versions_commit(repo: Path) -> None:
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["paths"] |= {"model": "artifacts/m.joblib", "model_meta": "artifacts/m.json"}
    write_params(repo, params)
    git_commit(repo, "moved models")
    write_params(repo, yaml.safe_load((ROOT / "params.yaml").read_text()))  # the workspace does not count
    assert registry.paths_at(repo, "HEAD") == {
        "model": "artifacts/m.joblib",
        "model_meta": "artifacts/m.json",
        "onnx": "models/model.onnx",
    }


def test_older_params_fall_back_to_todays_defaults_for_the_keys_they_lack(repo: Path) -> None:
    write_params(repo, {"paths": {"model": "old/model.joblib"}, "train": {"n_estimators": 5}})
    git_commit(repo, "an old version")
    assert registry.paths_at(repo, "HEAD") == registry.FALLBACK_PATHS | {"model": "old/model.joblib"}
    (repo / "params.yaml").unlink()
    (repo / "README").write_text("no params here")
    git_commit(repo, "no params")
    assert registry.paths_at(repo, "HEAD") == registry.FALLBACK_PATHS


def test_reset_champion_empties_the_file_params_yaml_names(repo: Path) -> None:
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["paths"]["champion"] = "registry/champion.json"
    write_params(repo, params)
    proc = run([sys.executable, "-m", "lifecycle.registry", "reset-champion"], repo)
    path = repo / "registry/champion.json"
    assert json.loads(proc.stdout) == {"champion": "registry/champion.json"}  # relative to --repo (default .)
    assert json.loads(path.read_text()) == registry.EMPTY_CHAMPION


def test_an_unknown_version_or_bad_params_is_a_clear_error(repo: Path) -> None:
    with pytest.raises(registry.RegistryError, match=r"no tag model@v9\.9\.9; `gto show model` lists"):
        registry.resolve_version("v9.9.9", repo)
    write_params(repo, {"paths": {}})
    proc = run([sys.executable, "-m", "lifecycle.registry", "reset-champion"], repo, check=False)
    assert proc.returncode == 1
    assert "params.yaml: section 'base' is missing" in proc.stderr
    assert "Traceback" not in proc.stderr
