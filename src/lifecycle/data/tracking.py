"""What experiments and clones can see: the input files git or DVC track, and the ones they cannot.

``dvc exp run --temp`` / ``--queue`` runs in a copy of the repository made from git: files git tracks (committed,
staged, or modified) and files DVC tracks (the output of a ``.dvc`` file git tracks, or of a stage) are there; an
untracked file is not, however visibly it sits in the workspace. A fresh clone sees the same. So a batch dropped
into ``data/incoming/`` without ``dvc add`` is scored by ``dvc repro`` but not by an experiment, and an untracked
``ingest.source`` is "not found" in one. This module finds such files and names the command that fixes each:

- :func:`invisible_files`: the files under some paths that neither git nor DVC tracks, each with its fix
  (``dvc add`` for data files, ``git add`` for the rest, ``git add <file>.dvc`` for an unstaged ``.dvc`` file);
  ``python -m lifecycle.data.tracking`` (``make data-check``) lists them for the pipeline's inputs;
- :func:`check_inputs`: what the stages call on their inputs. In the workspace it warns about invisible files; in
  an experiment it compares the experiment's files with the workspace's and stops on a file the experiment lacks;
- :func:`check_source`: ``ingest.source`` must be a dependency of the ingest stage (inside ``paths.external``),
  so editing the file reruns ingest; an ``s3://`` source is read but its content is not tracked (warned).

Under DVC (``DVC_STAGE`` in the environment, which DVC sets for every stage command) the checks apply; a stage run
by hand (tests, Kubeflow components) skips them, since nothing records its inputs there.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import subprocess
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path, PurePosixPath

import yaml

from lifecycle.config import TELEMETRY_SOURCE, load_params
from lifecycle.data.readers import is_remote
from lifecycle.errors import DataError

log = logging.getLogger(__name__)
DATA_SUFFIXES = (".csv", ".parquet", ".tsv", ".json", ".jsonl", ".feather", ".arrow", ".xlsx", ".zip", ".gz")
EXPERIMENT_DIRS = (".dvc", "tmp", "exps")  # DVC runs --temp/--queue experiments under <root>/.dvc/tmp/exps/...


@dataclasses.dataclass(frozen=True)
class Invisible:
    """A file in the workspace that experiments and clones do not see."""

    path: str  # relative to the repository root, POSIX separators
    fix: str  # the command that makes it visible, e.g. ``dvc add data/incoming/2026-06.parquet``

    def __str__(self) -> str:
        return f"{self.path}: not tracked by git or DVC; run `{self.fix}`"


# --------------------------------------------------------------------------------------------- where we run
def under_dvc() -> bool:
    """True inside a stage command that DVC runs (``dvc repro``, ``dvc exp run``): DVC sets ``DVC_STAGE``."""
    return bool(os.environ.get("DVC_STAGE"))


def experiment_workspace(cwd: str | Path | None = None) -> Path | None:
    """The workspace an experiment was started from, when ``cwd`` is a ``--temp``/``--queue`` experiment's copy
    (DVC makes it under ``<workspace>/.dvc/tmp/exps/``); None in the workspace itself."""
    here = Path(cwd or Path.cwd()).resolve()
    parts = here.parts
    for i in range(len(parts) - len(EXPERIMENT_DIRS) + 1):
        if parts[i : i + len(EXPERIMENT_DIRS)] == EXPERIMENT_DIRS:
            return Path(*parts[:i])
    return None


def _git(root: Path, *args: str) -> list[str] | None:
    """``git -C root args -z`` as a list of paths; None when ``root`` is not a git work tree (or git is missing)."""
    try:
        proc = subprocess.run(["git", "-C", str(root), *args, "-z"], capture_output=True, check=False)
    except OSError:
        return None
    if proc.returncode != 0:
        return None
    return [p for p in proc.stdout.decode("utf-8", "surrogateescape").split("\0") if p]


def repository_root(start: str | Path = ".") -> Path | None:
    """The root of the git work tree holding ``start``; None outside one."""
    try:
        proc = subprocess.run(
            ["git", "-C", str(start), "rev-parse", "--show-toplevel"], capture_output=True, text=True, check=False
        )
    except OSError:
        return None
    return Path(proc.stdout.strip()) if proc.returncode == 0 else None


# --------------------------------------------------------------------------------------------- what is tracked
def _relative(path: str | Path, root: Path, base: Path | None = None) -> str | None:
    """``path`` (absolute, or relative to ``base``, default the current directory) relative to ``root``; None
    outside it."""
    full = Path(os.path.abspath(Path(base or os.getcwd()) / path))
    for top in (root.resolve(), Path(os.path.abspath(root))):
        if full.is_relative_to(top):
            return full.relative_to(top).as_posix()
    return None


def _inside(path: str, folders: Iterable[str]) -> bool:
    return any(path == f or path.startswith(f.rstrip("/") + "/") for f in folders)


def _dvc_outs(root: Path, indexed: set[str]) -> tuple[set[str], dict[str, str]]:
    """Paths DVC tracks: outputs of the ``.dvc`` files git tracks and of the stages in dvc.lock; and, for ``.dvc``
    files that exist but git does not track, their output -> the ``.dvc`` file."""
    tracked: set[str] = set()
    unstaged: dict[str, str] = {}
    dvc_files = [
        p for p in _git(root, "ls-files", "--cached", "--others", "--exclude-standard") or [] if p.endswith(".dvc")
    ]
    for name in dvc_files:
        try:
            data = yaml.safe_load((root / name).read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError):
            continue
        base = PurePosixPath(name).parent
        for out in data.get("outs") or []:
            if isinstance(out, dict) and out.get("path"):
                path = str(base / str(out["path"])).removeprefix("./")
                if name in indexed:
                    tracked.add(path)
                else:
                    unstaged[path] = name
    lock = root / "dvc.lock"
    if lock.exists():
        try:
            stages = (yaml.safe_load(lock.read_text(encoding="utf-8")) or {}).get("stages") or {}
        except yaml.YAMLError:
            stages = {}
        for stage in stages.values():
            for out in (stage or {}).get("outs") or []:
                if isinstance(out, dict) and out.get("path"):
                    tracked.add(str(PurePosixPath(str(out["path"]))))
    return tracked, unstaged


def _files(root: Path, rel: str) -> list[str]:
    """The files at ``rel`` (a file, or every file below a folder), relative to ``root``; [] when absent."""
    full = root / rel
    if full.is_file():
        return [rel]
    if not full.is_dir():
        return []
    return sorted(p.relative_to(root).as_posix() for p in full.rglob("*") if p.is_file() and ".dvc" not in p.parts)


def fix_for(path: str) -> str:
    """The command that makes ``path`` visible: ``dvc add`` for data, ``git add`` for code, contracts and text."""
    suffixes = "".join(PurePosixPath(path).suffixes).lower()
    data = any(suffixes.endswith(s) for s in DATA_SUFFIXES)
    return f"dvc add {path}" if data else f"git add {path}"


def invisible_files(paths: Iterable[str | Path], root: str | Path = ".") -> list[Invisible]:
    """The files under ``paths`` (files or folders, relative to ``root`` or absolute) that neither git nor DVC
    tracks in the repository at ``root``, each with the command that fixes it, in path order.

    Tracked means: in git's index (committed or staged), or under an output of a ``.dvc`` file git tracks or of a
    stage in dvc.lock. ``.gitkeep`` files, git-ignored scratch files DVC writes (``.gitignore`` next to outputs)
    and paths outside ``root`` are left out. Returns [] when ``root`` is not a git work tree.
    """
    top = Path(root)
    indexed_list = _git(top, "ls-files", "--cached")
    if indexed_list is None:
        return []
    indexed = set(indexed_list)
    dvc_tracked, unstaged = _dvc_outs(top, indexed)
    found: dict[str, Invisible] = {}
    for path in paths:
        rel = _relative(path, top, top)
        if rel is None:
            continue
        for name in _files(top, rel):
            if name in indexed or PurePosixPath(name).name in (".gitkeep", ".gitignore") or name.endswith(".dvc"):
                continue
            if _inside(name, dvc_tracked):
                continue
            owner = next((dvc for out, dvc in unstaged.items() if _inside(name, [out])), None)
            found[name] = Invisible(name, f"git add {owner}" if owner else fix_for(name))
    return [found[k] for k in sorted(found)]


# --------------------------------------------------------------------------------------------- stage checks
def missing_in_experiment(paths: Iterable[str | Path], workspace: Path, here: Path) -> list[str]:
    """The files under ``paths`` (relative to ``here``) that exist in ``workspace`` but not in the experiment's copy
    ``here``, relative to it."""
    missing = []
    for path in paths:
        rel = _relative(path, here, here)
        if rel is None:
            continue
        missing += [name for name in _files(workspace, rel) if not (here / name).exists()]
    return sorted(set(missing))


def check_inputs(paths: Sequence[str | Path], what: str, cwd: str | Path | None = None) -> None:
    """A stage's check of its input files or folders (``what`` names them in messages, e.g. "batch").

    In an experiment's copy (``dvc exp run --temp/--queue``): raises :class:`DataError` listing the files the
    workspace has but the experiment does not, with the commands that fix them, since the experiment would silently
    read fewer files than ``dvc repro`` does. In the workspace under DVC: logs a warning for each file git and DVC
    do not track (experiments and clones will not see it). Outside DVC, nothing.
    """
    if not under_dvc():
        return
    here = Path(cwd or Path.cwd()).resolve()
    workspace = experiment_workspace(here)
    if workspace is not None:
        missing = missing_in_experiment(paths, workspace, here)
        if missing:
            fixes = "; ".join(f"`{f}`" for f in dict.fromkeys(fix_for(m) for m in missing))
            raise DataError(
                f"{what}: {', '.join(missing)} exist(s) in your workspace ({workspace}) but not in this experiment: "
                f"experiments see only files git or DVC track; in the workspace run {fixes}, then run the "
                "experiment again"
            )
        return
    for item in invisible_files(paths, here):
        log.warning(
            "%s: %s is not tracked by git or DVC: `dvc repro` reads it, but `dvc exp run --temp/--queue` and clones "
            "do not see it; run `%s`", what, item.path, item.fix,
        )  # fmt: skip


def check_source(source: str, external: str | Path, cwd: str | Path | None = None) -> None:
    """The ingest stage's check of ``ingest.source`` (``external``: ``paths.external``, a dependency of ingest).

    ``telemetry``: nothing to check. An ``s3://`` (or other remote) URI: a warning that DVC tracks the URI, not the
    object's content. A local path, under DVC: :class:`DataError` unless it lies inside ``external`` (else DVC
    would not rerun ingest when the file changes), with the fix; then :func:`check_inputs` on it (in an experiment,
    a file the workspace has but the experiment lacks is named with its fix).
    """
    if source == TELEMETRY_SOURCE:
        return
    if is_remote(source):
        log.warning(
            "ingest.source %s: DVC tracks the URI, not the object: `dvc repro` reruns ingest when ingest.source "
            "changes, not when the object does. Version the URI (a new key per version, e.g. .../2026-06-01.csv), or "
            "`dvc import-url %s %s/` and point ingest.source at the local copy (`dvc update` fetches a new version)",
            source, source, external,
        )  # fmt: skip
        return
    if not under_dvc():
        return
    here = Path(cwd or Path.cwd()).resolve()
    folder = Path(os.path.abspath(here / external))
    target = Path(os.path.abspath(here / source))
    if not target.is_relative_to(folder):
        rel = _relative(external, here, here) or str(external)
        raise DataError(
            f"ingest.source {source}: outside {rel}/, the folder the ingest stage depends on, so DVC would not rerun "
            f"ingest when the file changes (a stale model); copy it there (`cp {source} {rel}/`) and set "
            f"ingest.source: {rel}/{target.name}, or set paths.external to the folder that holds it"
        )
    check_inputs([source], "ingest.source", here)


# --------------------------------------------------------------------------------------------- command line
def main(argv: Sequence[str] | None = None) -> int:
    """``python -m lifecycle.data.tracking [PATH ...]``: list the files experiments and clones cannot see (default:
    the pipeline's inputs from params.yaml), with the command that fixes each; exit 1 when there is one."""
    parser = argparse.ArgumentParser(prog="python -m lifecycle.data.tracking", description=main.__doc__)
    parser.add_argument("paths", nargs="*", help="files or folders (default: the pipeline's inputs)")
    parser.add_argument("--params", default="params.yaml")
    args = parser.parse_args(argv)
    root = repository_root()
    if root is None:
        print("not a git repository: experiments and clones need one (git init && git add -A && git commit)")
        return 1
    paths = [os.path.relpath(os.path.abspath(p), root) for p in args.paths]
    if not paths:
        params = load_params(args.params)
        p = params.paths
        paths = [p.external, p.contracts, p.incoming, p.feedback, args.params]
        if params.ingest.source != TELEMETRY_SOURCE and not is_remote(params.ingest.source):
            paths.append(params.ingest.source)
    found = invisible_files(paths, root)
    for item in found:
        print(item)
    if found:
        commands = sorted({item.fix for item in found})
        print(f"{len(found)} file(s) that `dvc exp run --temp/--queue` and clones do not see; fix: "
              + " && ".join(commands))  # fmt: skip
        return 1
    print(f"every file under {', '.join(map(str, paths))} is tracked by git or DVC")
    return 0


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    sys.exit(main())
