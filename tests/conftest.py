"""Shared fixtures: a scratch copy of the repository as a real git + DVC project, and small params."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
# What a fresh clone holds: the tracked sources, not the pipeline outputs or the caches.
COPY_IGNORE = shutil.ignore_patterns(
    ".venv", ".git", "__pycache__", ".pytest_cache", ".ruff_cache", "tmp", "cache", "*.joblib", "*.parquet",
    "*.onnx", "reports", "bench",
)  # fmt: skip
SMALL = {
    "ingest": {"rows": 4000},
    "train": {"hist_gradient_boosting": {"max_iter": 30}, "random_forest": {"n_estimators": 20}},
}

os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
os.environ.setdefault("MPLBACKEND", "Agg")


def small_params(model: str = "hist_gradient_boosting", max_iter: int = 30) -> Any:
    """params.yaml as lifecycle.config reads it, with ``train.model`` = ``model`` and a small HistGradientBoosting
    (``max_iter`` iterations): the in-process fits of the stage and API tests."""
    from lifecycle.config import load_params

    params = load_params(ROOT / "params.yaml")
    hgb = params.train.hist_gradient_boosting.model_copy(update={"max_iter": max_iter})
    train = params.train.model_copy(update={"model": model, "hist_gradient_boosting": hgb})
    return params.model_copy(update={"train": train})


def deep_update(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """Recursively merge ``changes`` into ``base`` (in place) and return it."""
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            deep_update(base[key], value)
        else:
            base[key] = value
    return base


def set_params(repo: Path, changes: dict[str, Any]) -> None:
    """Apply nested ``changes`` to ``repo``/params.yaml."""
    path = repo / "params.yaml"
    params = yaml.safe_load(path.read_text())
    path.write_text(yaml.safe_dump(deep_update(params, changes), sort_keys=False))


def run(cmd: list[str] | str, cwd: Path, check: bool = True, **kw: Any) -> subprocess.CompletedProcess[str]:
    """Run a command with the venv's tools first on PATH; output captured as text."""
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", **kw.pop("env", {})}
    proc = subprocess.run(cmd, cwd=cwd, env=env, text=True, capture_output=True, shell=isinstance(cmd, str), **kw)
    if check and proc.returncode != 0:
        raise AssertionError(f"{cmd} exited {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}")
    return proc


def git_commit(repo: Path, message: str = "commit") -> None:
    run(["git", "add", "-A"], repo)
    run(["git", "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", message], repo)


def copy_sources(dest: Path) -> None:
    """Copy what a fresh clone would hold: files git tracks or would track (not ignored), minus COPY_IGNORE."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT, capture_output=True, check=False,
    )  # fmt: skip
    if listed.returncode != 0:  # not a git checkout: copy the tree
        shutil.copytree(ROOT, dest, ignore=COPY_IGNORE)
        return
    for name in sorted(set(listed.stdout.decode().split("\0")) - {""}):
        source = ROOT / name
        parts = Path(name).parts
        if not source.is_file() or any(COPY_IGNORE(str(ROOT), [p]) for p in parts):
            continue
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)


def make_repo(dest: Path, params: dict[str, Any] | None = None, commit: bool = True) -> Path:
    """Copy the project's sources to ``dest`` (as a fresh clone would have them), git init, set params, commit."""
    copy_sources(dest)
    for lock in ("dvc.lock",):
        (dest / lock).unlink(missing_ok=True)
    set_params(dest, deep_update(yaml.safe_load(yaml.safe_dump(SMALL)), params or {}))
    run(["git", "init", "-q", "-b", "main"], dest)
    if commit:
        git_commit(dest, "initial")
    return dest


@pytest.fixture
def repo_factory(tmp_path: Path) -> Callable[..., Path]:
    """``repo_factory(params=None, name="repo")`` -> a committed scratch repo with small params."""
    counter = iter(range(1000))

    def factory(params: dict[str, Any] | None = None, name: str = "repo", commit: bool = True) -> Path:
        return make_repo(tmp_path / f"{name}{next(counter)}", params, commit)

    return factory


@pytest.fixture
def one_thread() -> Iterator[None]:
    """One BLAS/OpenMP thread for the test (``pytestmark = pytest.mark.usefixtures("one_thread")``): on a busy
    2-core machine HistGradientBoosting's threads spin and a tiny fit takes 10x longer; results do not depend on it."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        yield


@pytest.fixture(scope="session")
def built_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small scratch repo on which `dvc repro` has run once (shared, read-only for tests)."""
    repo = make_repo(tmp_path_factory.mktemp("built") / "repo")
    run(["dvc", "repro", "--quiet"], repo)
    return repo


def python_module(module: str, *args: str, cwd: Path, check: bool = False) -> subprocess.CompletedProcess[str]:
    """Run ``python -m module args`` in ``cwd`` with the venv's interpreter."""
    return run([sys.executable, "-m", module, *args], cwd, check=check)
