"""The registry's parts that need git but no DVC pipeline (lifecycle.registry): where a version's files are, per
the params.yaml of its commit; the md5s its dvc.lock records (the reference of every fetched file); the private
cache folder (planted folders are refused); the champion reset; errors. Releasing and materializing real versions is tested in
tests/e2e/test_registry.py and tests/e2e/test_s3_remote.py."""

from __future__ import annotations

import json
import os
import stat
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


# ------------------------------------------------------------------------------------------------ provenance
LOCK = """schema: '2.0'
stages:
  train:
    cmd: python -m lifecycle.stages.train
    outs:
    - path: models/model.joblib
      hash: md5
      md5: 0123456789abcdef0123456789abcdef
      size: 10
  evaluate:
    outs:
    - path: ./metrics/evaluate/plots
      hash: md5
      md5: fedcba9876543210fedcba9876543210.dir
      size: 5
      nfiles: 2
    - path: models/../models/model.json
      hash: md5
      md5: '00000000000000000000000000000001'  # DVC quotes an md5 that YAML would read as a number
      size: 1
"""


def test_the_md5s_come_from_dvc_lock_at_the_commit_not_the_workspace(repo: Path) -> None:
    (repo / "dvc.lock").write_text(LOCK)
    git_commit(repo, "a version")
    (repo / "dvc.lock").write_text(LOCK.replace("0123456789abcdef", "ffffffffffffffff"))  # the workspace does not count
    assert registry.recorded_md5s(repo, "HEAD") == {
        "models/model.joblib": "0123456789abcdef0123456789abcdef",
        "models/model.json": "00000000000000000000000000000001",
    }  # directory outputs are left out; paths normalized


def test_a_commit_without_dvc_lock_cannot_be_verified(repo: Path) -> None:
    (repo / "README").write_text("no lock")
    git_commit(repo, "no lock")
    with pytest.raises(registry.ProvenanceError, match=r"commit HEAD has no dvc\.lock .* refusing"):
        registry.recorded_md5s(repo, "HEAD")


def test_md5_file_is_dvcs_content_hash(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"abc")
    assert registry.md5_file(tmp_path / "f") == "900150983cd24fb0d6963f7d28e17f72"  # RFC 1321's test vector


# ------------------------------------------------------------------------------------------------ private folders
def test_the_cache_folder_is_created_private_under_xdg_cache_home(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    folder = registry.cache_dir("0123456789abcdef")
    assert folder == tmp_path / "cache/lifecycle-registry/0123456789ab"
    for level in (folder, folder.parent):
        assert stat.S_IMODE(level.stat().st_mode) == 0o700 and level.stat().st_uid == os.getuid()
    assert registry.cache_dir("0123456789abcdef") == folder  # an existing private folder is accepted


@pytest.mark.parametrize("mode", [0o777, 0o755, 0o750, 0o701])
def test_a_planted_cache_folder_with_another_mode_is_refused(tmp_path: Path, monkeypatch, mode: int) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    (tmp_path / "lifecycle-registry").mkdir(mode=0o700)  # the root is private: the planted leaf is what is wrong
    planted = tmp_path / "lifecycle-registry/0123456789ab"
    planted.mkdir()
    (planted / "model.joblib").write_bytes(b"planted")
    planted.chmod(mode)
    with pytest.raises(registry.RegistryError, match=rf"refusing .*0123456789ab .*has mode {mode:04o}, open to group"):
        registry.cache_dir("0123456789abcdef")
    assert (planted / "model.joblib").read_bytes() == b"planted"  # refused, not touched


def test_a_cache_root_open_to_others_is_refused(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    (tmp_path / "lifecycle-registry").mkdir(mode=0o777)
    (tmp_path / "lifecycle-registry").chmod(0o777)
    with pytest.raises(registry.RegistryError, match=r"lifecycle-registry as the folder .* has mode 0777"):
        registry.cache_dir("0123456789abcdef")


def test_a_symbolic_link_or_a_file_is_refused_as_the_cache(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(mode=0o700)
    (tmp_path / "lifecycle-registry").mkdir(mode=0o700)
    (tmp_path / "lifecycle-registry/0123456789ab").symlink_to(elsewhere)
    with pytest.raises(registry.RegistryError, match=r"it is a symbolic link"):
        registry.cache_dir("0123456789abcdef")
    (tmp_path / "lifecycle-registry/0123456789ab").unlink()
    (tmp_path / "lifecycle-registry/0123456789ab").write_text("a file")
    with pytest.raises(registry.RegistryError, match=r"cannot create the folder|is not a directory"):
        registry.cache_dir("0123456789abcdef")


@pytest.mark.skipif(os.getuid() != 0, reason="giving a folder to another user needs root")
def test_a_cache_folder_owned_by_another_user_is_refused(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    planted = tmp_path / "lifecycle-registry/0123456789ab"
    planted.mkdir(parents=True, mode=0o700)
    (tmp_path / "lifecycle-registry").chmod(0o700)
    os.chown(planted, 65534, 65534)
    with pytest.raises(registry.RegistryError, match=r"is owned by uid 65534, not by you \(uid 0\)"):
        registry.cache_dir("0123456789abcdef")


def test_a_folder_the_user_names_may_be_readable_but_not_writable_by_others(tmp_path: Path) -> None:
    named = tmp_path / "srv/model"
    assert registry.private_dir(named, strict=False) == named
    assert stat.S_IMODE(named.stat().st_mode) == 0o700  # created private
    named.chmod(0o755)
    registry.private_dir(named, strict=False)  # readable by others: fine for a folder the user chose
    for mode in (0o775, 0o757):
        named.chmod(mode)
        with pytest.raises(registry.RegistryError, match=rf"has mode {mode:04o}, open to writes by group or others"):
            registry.private_dir(named, strict=False)
