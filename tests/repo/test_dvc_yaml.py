"""Every stage's deps in dvc.yaml list exactly the project modules its command imports, directly or not.

The import graph is derived from the source with ``ast`` (imports inside functions count too: they run), and
a package's ``__init__.py`` counts as imported with any of its modules.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src"
PACKAGE = "lifecycle"
STAGES = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]


def module_file(module: str) -> Path | None:
    base = SRC / Path(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.exists():
            return candidate
    return None


def imported_modules(path: Path, module: str) -> set[str]:
    """Project modules that ``path`` (module ``module``) imports anywhere in its body."""
    found: set[str] = set()
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1])
                prefix = f"{base}.{node.module}" if node.module else base
            else:
                prefix = node.module or ""
            # `from lifecycle import cli` imports the module lifecycle.cli
            names = [prefix, *(f"{prefix}.{alias.name}" for alias in node.names)]
        else:
            continue
        found.update(n for n in names if (n == PACKAGE or n.startswith(PACKAGE + ".")) and module_file(n))
    return found


def closure(module: str) -> set[Path]:
    """Files of ``module`` and everything it imports transitively, with their packages' __init__ files."""
    seen: set[str] = set()
    todo = [module]
    while todo:
        current = todo.pop()
        if current in seen:
            continue
        seen.add(current)
        parts = current.split(".")
        todo.extend(".".join(parts[:i]) for i in range(1, len(parts)))  # parent packages
        path = module_file(current)
        if path is not None:
            todo.extend(imported_modules(path, current))
    return {module_file(m).relative_to(ROOT) for m in seen if module_file(m)}  # type: ignore[union-attr]


def stage_module(cmd: str) -> str | None:
    match = re.search(r"python -m (lifecycle(?:\.\w+)+)", cmd)
    return match.group(1) if match else None


PYTHON_STAGES = {
    name: stage_module(" ".join(s["cmd"]) if isinstance(s["cmd"], list) else s["cmd"]) for name, s in STAGES.items()
}


@pytest.mark.parametrize("stage", sorted(n for n, m in PYTHON_STAGES.items() if m))
def test_stage_deps_match_import_graph(stage: str) -> None:
    expected = {str(p) for p in closure(PYTHON_STAGES[stage])}  # type: ignore[arg-type]
    declared = {d for d in STAGES[stage].get("deps", []) if isinstance(d, str) and d.startswith("src/")}
    missing, extra = expected - declared, declared - expected
    assert not missing, f"dvc.yaml stage {stage!r} imports but does not list as deps: {sorted(missing)}"
    assert not extra, f"dvc.yaml stage {stage!r} lists deps it never imports: {sorted(extra)}"


def test_every_stage_runs_a_project_module() -> None:
    assert all(PYTHON_STAGES.values()), f"stages without `python -m lifecycle...`: {PYTHON_STAGES}"


def test_graph_sees_transitive_and_lazy_imports() -> None:
    files = {str(p) for p in closure("lifecycle.stages.ingest")}
    assert "src/lifecycle/data/telemetry.py" in files  # via `from lifecycle import cli, telemetry`
    assert "src/lifecycle/errors.py" in files  # via lifecycle.io, transitively
    assert "src/lifecycle/__init__.py" in files
