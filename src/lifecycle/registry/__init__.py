"""The model registry: GTO git tags over the ``model`` artifact declared in dvc.yaml's ``artifacts:`` section.

A version is an annotated tag ``model@vX.Y.Z`` on the commit whose dvc.lock describes the model; a stage is a tag
``model#prod#N``. The files of a version come from DVC (the local cache, else the ``storage`` remote) at that
commit, so any clone can materialize the exact bytes. The registry is read outside the DAG only (server start-up,
production scoring, `make release`); the promote stage sees the champion through models/champion.json.

For code (the server and production scoring), :func:`fetch` is the one entry point::

    version, files = fetch("prod", repo=".", dest="/srv/model")
    # ModelVersion(artifact, version, tag, commit, repo, stage, stage_tag)
    # ModelFiles(model=/srv/model/model.joblib, meta=/srv/model/model.json, onnx=/srv/model/model.onnx | None)

Provenance, with git as the root of trust (docs/security.md): a version's commit is named by a git tag, and its
dvc.lock records the md5 of every output. Every file materialized here (model.json, model.joblib, model.onnx) is
checked against that md5 *before* anything reads it, whether it came from the S3 remote, the local DVC cache or the
cache folder of an earlier fetch, and model.joblib again against ``model.sha256`` in the (verified) model.json; a
mismatch raises :class:`ProvenanceError` naming the check that failed. The default cache folder is private
(:func:`cache_dir`: mode 0700, owned by the current user, checked) and its files are re-verified on every fetch.

The command line (``python -m lifecycle.registry release|show|pull|reset-champion``) is in ``__main__.py``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import posixpath
import stat
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from lifecycle.artifact import ModelIntegrityError, ModelMetadata, verify
from lifecycle.config import load_params, parse_params
from lifecycle.errors import LifecycleError, ParamsError
from lifecycle.io import atomic_path, read_json, sha256_file, write_json

log = logging.getLogger(__name__)
ARTIFACT = "model"
PROD = "prod"
FIRST_VERSION = "v1.0.0"
# Today's paths of a version's files: used only for a version committed with a params.yaml that today's
# lifecycle.config does not parse (older params lacking keys), for the keys its `paths` section lacks.
FALLBACK_PATHS = {"model": "models/model.joblib", "model_meta": "models/model.json", "onnx": "models/model.onnx"}
EMPTY_CHAMPION = {"artifact": ARTIFACT, "metrics": {}, "model_sha256": None, "task": None, "version": None}


class RegistryError(LifecycleError):
    """The registry has no such version or stage, or a release cannot proceed."""


class ProvenanceError(RegistryError):
    """A file of a version is not the one its git commit records (md5 in dvc.lock, or the sha256 in the verified
    model.json), or cannot be checked: nothing of the version may be loaded."""


@dataclasses.dataclass(frozen=True)
class ModelFiles:
    """A materialized model: the fitted pipeline, its metadata (model.json) and its usable ONNX copy."""

    model: Path
    meta: Path
    onnx: Path | None = None  # the ONNX graph, when the version has a usable one (a derived copy: may be absent)


@dataclasses.dataclass(frozen=True)
class ModelVersion:
    """One registered version of an artifact, as the registry's git tags describe it."""

    artifact: str
    version: str
    tag: str  # the registration tag, e.g. model@v1.2.0
    commit: str  # the commit the version points at (the git commit of the model)
    repo: str  # the repository (path or URL) the tags were read from
    stage: str | None = None  # the stage it was resolved through, e.g. prod
    stage_tag: str | None = None  # the assignment tag, e.g. model#prod#3

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def materialize(self, dest: str | Path, force: bool = False) -> ModelFiles:
        """Write this version's model.joblib, model.json (and model.onnx) into ``dest`` (see :func:`materialize`)."""
        return materialize(self, dest, force=force)


# --------------------------------------------------------------------------------------------- git helpers
def _git(repo: str | Path, *args: str, check: bool = True) -> str:
    proc = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=False)
    if check and proc.returncode != 0:
        raise RegistryError(f"git {' '.join(args)} failed in {repo}: {proc.stderr.strip() or proc.stdout.strip()}")
    return proc.stdout


def _gto() -> Any:
    import gto.api  # imported lazily: the CLI's `--help` and the dataclasses stay cheap

    return gto.api


def paths_at(repo: str | Path, rev: str) -> dict[str, str]:
    """``paths.model``, ``paths.model_meta`` and ``paths.onnx`` of params.yaml as committed at ``rev``, parsed by
    :func:`lifecycle.config.parse_params`.

    A version committed with older params (a key or section today's config requires is missing, or one it no
    longer knows) does not parse: then its own ``paths`` values are used and :data:`FALLBACK_PATHS` (today's
    defaults) only for the keys it lacks; likewise when the commit has no params.yaml at all.
    """
    proc = subprocess.run(["git", "show", f"{rev}:params.yaml"], cwd=repo, capture_output=True, text=True, check=False)
    raw: Any = {}
    if proc.returncode == 0:
        source = f"{rev[:12]}:params.yaml"
        try:
            raw = yaml.safe_load(proc.stdout) or {}
            paths = parse_params(raw, source=source).paths
            return {key: str(getattr(paths, key)) for key in FALLBACK_PATHS}
        except (yaml.YAMLError, ParamsError) as exc:
            log.info("%s: older params (%s); its own paths, today's defaults for the missing ones", source, exc)
    section = raw.get("paths") if isinstance(raw, dict) else None
    own = {k: str(v) for k, v in section.items() if k in FALLBACK_PATHS} if isinstance(section, dict) else {}
    return FALLBACK_PATHS | own


# --------------------------------------------------------------------------------------------- resolving
def resolve_prod(stage: str = PROD, repo: str | Path = ".", artifact: str = ARTIFACT) -> ModelVersion:
    """The version of ``artifact`` currently assigned to ``stage`` ("the prod model")."""
    from gto.exceptions import GTOException

    try:
        found = _gto().find_versions_in_stage(str(repo), artifact, stage)
    except GTOException as exc:  # e.g. ArtifactNotFound: no tag of the artifact at all
        log.debug("gto: %s", exc)
        found = None
    if not found:
        raise RegistryError(
            f"{repo}: no version of '{artifact}' is in stage '{stage}'; "
            f"`gto show {artifact}` lists the registry; `make release` assigns prod to a promoted model"
        )
    vstage = found[0] if isinstance(found, list) else found
    stage_tag = vstage.assignments[-1].tag if getattr(vstage, "assignments", None) else None
    return ModelVersion(
        artifact=artifact,
        version=vstage.version,
        tag=f"{artifact}@{vstage.version}",
        commit=vstage.commit_hexsha,
        repo=str(repo),
        stage=stage,
        stage_tag=stage_tag,
    )


def resolve_version(version: str, repo: str | Path = ".", artifact: str = ARTIFACT) -> ModelVersion:
    """A registered version by name (``v1.2.0``)."""
    tag = f"{artifact}@{version}"
    commit = _git(repo, "rev-list", "-n", "1", tag, check=False).strip()
    if not commit:
        raise RegistryError(f"{repo}: no tag {tag}; `gto show {artifact}` lists the registered versions")
    return ModelVersion(artifact=artifact, version=version, tag=tag, commit=commit, repo=str(repo))


def recorded_md5s(repo: str | Path, rev: str) -> dict[str, str]:
    """``{path: md5}`` of every file output that dvc.lock records at git revision ``rev`` of ``repo``: the
    reference every fetched file is checked against. Paths are relative to the repository root, normalized;
    directory outputs (md5 ending in ``.dir``) are left out (the registry fetches files only).

    Read with ``git show rev:dvc.lock``, never from the workspace or the DVC cache. The md5 is of the file's bytes,
    as DVC 3 records it (``hash: md5``); a legacy DVC 2 entry of a text file with CRLF line ends would not match and
    is refused, never accepted. Raises :class:`ProvenanceError` when the commit has no readable dvc.lock.
    """
    proc = subprocess.run(["git", "show", f"{rev}:dvc.lock"], cwd=repo, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise ProvenanceError(
            f"{repo}: commit {rev[:12]} has no dvc.lock ({proc.stderr.strip()}), so nothing fetched for it can be "
            "checked against git; refusing. Register versions on commits whose dvc.lock describes the model"
        )
    try:
        lock = yaml.safe_load(proc.stdout) or {}
    except yaml.YAMLError as exc:
        raise ProvenanceError(f"{rev[:12]}:dvc.lock is not valid YAML ({exc}); refusing") from exc
    recorded: dict[str, str] = {}
    for stage in (lock.get("stages") or {}).values() if isinstance(lock, dict) else ():
        for out in (stage or {}).get("outs") or []:
            path, md5 = out.get("path"), out.get("md5")
            if isinstance(path, str) and isinstance(md5, str) and not md5.endswith(".dir"):
                recorded[posixpath.normpath(path)] = md5
    return recorded


def md5_file(path: str | Path, chunk: int = 1 << 20) -> str:
    """Hex md5 of a file's bytes: DVC's content hash, as dvc.lock records it (why md5 is enough: docs/security.md)."""
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def private_dir(path: str | Path, *, strict: bool = True) -> Path:
    """``path`` as a folder only the current user may use: created (with missing parents) with mode 0700 when
    absent, else checked. ``strict`` (the registry's own cache): a real directory, not a symbolic link, owned by
    this user, with no permission bit for group or others. Not ``strict`` (a folder the user named, e.g.
    ``SERVE_REGISTRY_DEST`` or ``pull --out``; a symbolic link to it is followed): owned by this user and not
    writable by group or others.

    Whoever can write into the folder could swap a file between its check and its unpickling, hence the rule.
    Raises :class:`RegistryError` naming the folder, what is wrong and the fix.
    """
    folder = Path(path)
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        info = os.lstat(folder) if strict else os.stat(folder)
    except OSError as exc:
        raise RegistryError(
            f"{folder}: cannot create the folder for the registry's files ({exc}); set XDG_CACHE_HOME (or "
            "SERVE_REGISTRY_DEST / --out) to a folder you can write"
        ) from exc
    mode = stat.S_IMODE(info.st_mode)
    problems = []
    if stat.S_ISLNK(info.st_mode):
        problems.append("is a symbolic link")
    elif not stat.S_ISDIR(info.st_mode):
        problems.append("is not a directory")
    else:
        if info.st_uid != os.getuid():
            problems.append(f"is owned by uid {info.st_uid}, not by you (uid {os.getuid()})")
        if mode & (0o077 if strict else 0o022):
            problems.append(f"has mode {mode:04o}, open to " + ("group or others (0700 required)" if strict else
                            "writes by group or others"))  # fmt: skip
    if problems:
        raise RegistryError(
            f"refusing {folder} as the folder for the registry's model files: it {' and '.join(problems)}; whoever "
            f"can write there could plant a model that runs code when loaded. Remove it (`rm -r {folder}`) to have "
            "it recreated privately, or use another folder"
        )
    return folder


def cache_dir(commit: str) -> Path:
    """The default folder of a version's files: ``$XDG_CACHE_HOME/lifecycle-registry/<commit[:12]>``
    (``XDG_CACHE_HOME`` defaults to ``~/.cache``), both levels checked by :func:`private_dir` (strict)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    root = private_dir(Path(base) / "lifecycle-registry")
    return private_dir(root / commit[:12])


def _copy_from_dvc(version: ModelVersion, path: str, dest: Path, expected_md5: str) -> None:
    """Stream ``path`` at ``version.commit`` from DVC (local cache, else the default remote) into ``dest``,
    atomically, and rename it into place only when its md5 is ``expected_md5``."""
    import dvc.api

    digest = hashlib.md5(usedforsecurity=False)
    try:
        with (
            dvc.api.open(path, repo=version.repo, rev=version.commit, mode="rb") as src,
            atomic_path(dest) as tmp,
            open(tmp, "wb") as out,
        ):
            while block := src.read(1 << 20):
                digest.update(block)
                out.write(block)
            out.flush()
            if digest.hexdigest() != expected_md5:  # raised inside: the temporary file is removed, dest untouched
                raise ProvenanceError(
                    f"refusing {version.tag}: {path} as fetched from DVC (the local cache, else the remote "
                    f"`storage`) has md5 {digest.hexdigest()}, but dvc.lock at the version's commit "
                    f"{version.commit[:12]} records {expected_md5}. Failed check: md5 against dvc.lock (git). The "
                    "store holds other bytes than the registered ones (tampered or corrupt); nothing was loaded. "
                    f"Delete the object files/md5/{expected_md5[:2]}/{expected_md5[2:]} where it came from (the "
                    "local DVC cache, else the remote: `dvc push` does not replace an object the remote has), then "
                    "`dvc push` from a clone that has the registered bytes (docs/security.md)"
                )
    except LifecycleError:
        dest.unlink(missing_ok=True)  # an unverified file never stays where a loader would look
        raise
    except Exception as exc:  # DVC raises many types (missing cache, remote errors, path not found)
        raise RegistryError(
            f"cannot read {path} at {version.commit[:12]} from DVC ({type(exc).__name__}: {exc}); check the "
            "`storage` remote and its credentials (docs/registry.md), or `dvc push` from the clone that built it"
        ) from exc


def _materialize_file(version: ModelVersion, path: str, recorded: dict[str, str], out: Path, force: bool) -> Path:
    """``out/<name of path>`` holding the bytes dvc.lock records for ``path`` at the version's commit: a file
    already there is kept only when it is a regular file with that md5 (checked on every call), else fetched."""
    expected = recorded.get(posixpath.normpath(path))
    if expected is None:
        raise ProvenanceError(
            f"refusing {version.tag}: dvc.lock at commit {version.commit[:12]} records no file output {path}, so "
            "its bytes cannot be checked against git. Failed check: md5 against dvc.lock (git)"
        )
    dest = out / Path(path).name
    if not force and dest.is_file() and not dest.is_symlink():
        actual = md5_file(dest)
        if actual == expected:
            return dest
        log.warning(
            "%s: the cached bytes (md5 %s) are not the ones dvc.lock records at %s (%s); fetching them again",
            dest, actual, version.commit[:12], expected,
        )  # fmt: skip
    _copy_from_dvc(version, path, dest, expected)
    return dest


def materialize(version: ModelVersion, dest: str | Path, force: bool = False) -> ModelFiles:
    """``version``'s model.json, model.joblib (and its usable model.onnx), byte for byte, into ``dest``; every
    file verified against git before anything reads it.

    The bytes come from DVC at the version's commit (local cache, else the default remote); where they live in
    that commit comes from its params.yaml (:func:`paths_at`). Checks, in order, each named in its error:
    ``dest`` is a folder nobody else can write (:func:`private_dir`); each file's md5 equals the one dvc.lock
    records at the commit (:func:`recorded_md5s`; a file already in ``dest`` is re-checked on every call and
    fetched again when it differs, and always with ``force``); model.joblib's sha256 equals ``model.sha256`` of
    the verified model.json (:func:`lifecycle.artifact.verify`). Nothing is unpickled here: the server loads the
    file through :func:`lifecycle.artifact.load_model`, which checks the sha256 again.

    Raises :class:`ProvenanceError` when a file is not the registered one (or dvc.lock does not record it),
    :class:`RegistryError` when the bytes cannot be read or ``dest`` is not private enough, and
    :class:`lifecycle.artifact.ModelIntegrityError` when the version's model.json is not a model record.
    """
    out = private_dir(dest, strict=False)
    paths = paths_at(version.repo, version.commit)
    recorded = recorded_md5s(version.repo, version.commit)
    meta_path = _materialize_file(version, paths["model_meta"], recorded, out, force)
    record = ModelMetadata.read(meta_path)
    model_path = _materialize_file(version, paths["model"], recorded, out, force)
    try:
        verify(model_path, record, f"{meta_path.name} of {version.tag}")
    except ModelIntegrityError as exc:
        raise ProvenanceError(f"{exc}. Failed check: model.sha256 in model.json (dvc.lock and model.json of "
                              f"{version.tag} disagree)") from exc  # fmt: skip
    onnx_path = _materialize_onnx(version, record, paths["onnx"], recorded, out, force)
    log.info("materialized %s (%s, commit %s) into %s, verified against its dvc.lock", version.tag,
             version.stage or "-", version.commit[:12], out)  # fmt: skip
    return ModelFiles(model=model_path, meta=meta_path, onnx=onnx_path)


def _materialize_onnx(
    version: ModelVersion, record: ModelMetadata, path: str, recorded: dict[str, str], out: Path, force: bool
) -> Path | None:
    """The version's model.onnx beside the joblib, verified like it (md5 in dvc.lock) and by model.json's
    ``onnx.sha256``; None (with a warning) when the version has no usable graph or its bytes cannot be fetched:
    servers then use scikit-learn. Bytes that are not the registered ones raise :class:`ProvenanceError`."""
    section = record.onnx
    expected = section.sha256 if section is not None else None
    if section is None or not section.usable or not expected:
        log.info("%s has no usable ONNX graph (%s)", version.tag, (section and section.reason) or "no onnx section")
        return None
    try:
        dest = _materialize_file(version, path, recorded, out, force)
    except ProvenanceError:
        raise
    except RegistryError as exc:
        log.warning("%s: no ONNX graph materialized (%s)", version.tag, exc)
        return None
    if sha256_file(dest) != expected:
        log.warning("%s: %s differs from onnx.sha256 in model.json; not using it", version.tag, dest)
        dest.unlink()
        return None
    return dest


def fetch(
    stage: str | None = PROD,
    repo: str | Path = ".",
    dest: str | Path | None = None,
    *,
    version: str | None = None,
    force: bool = False,
) -> tuple[ModelVersion, ModelFiles]:
    """The one way code gets a registered model: resolve ``version`` (``v1.2.0``) if given, else the version in
    ``stage``, from the GTO tags of ``repo``, and materialize its files into ``dest`` (default: the private cache
    folder of the version's commit, :func:`cache_dir`), verified against the commit's dvc.lock (:func:`materialize`).
    Used by the server (``SERVE_MODEL_SOURCE=registry``) and by production scoring. Raises :class:`RegistryError`
    when there is no such version or stage or its bytes cannot be had, :class:`ProvenanceError` when they are not
    the registered ones.
    """
    if version is not None:
        resolved = resolve_version(version, repo)
    else:
        from gto.exceptions import GTOException

        try:
            resolved = resolve_prod(stage or PROD, repo)
        except GTOException as exc:  # gto raises its own types (no artifact declared, not a git repo, ...)
            raise RegistryError(f"{repo}: cannot read the registry ({type(exc).__name__}: {exc})") from exc
    folder = Path(dest) if dest else cache_dir(resolved.commit)
    return resolved, resolved.materialize(folder, force=force)


# --------------------------------------------------------------------------------------------- releasing
def _registered_versions(repo: str | Path, artifact: str) -> list[str]:
    tags = _git(repo, "tag", "--list", f"{artifact}@v*").split()
    return [t.split("@", 1)[1] for t in tags]


def _check_committed(repo: Path, files: Sequence[str]) -> None:
    dirty = _git(repo, "status", "--porcelain", "--", *files).strip()
    if dirty:
        raise RegistryError(
            f"uncommitted changes in {', '.join(files)}:\n{dirty}\ncommit them first: the registry tag must point "
            "at a commit whose dvc.lock describes the released model"
        )


def _check_pipeline_up_to_date(repo: Path, stage: str = "promote") -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "dvc", "status", "--json", stage], cwd=repo, capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise RegistryError(f"`dvc status {stage}` failed in {repo}: {proc.stderr.strip()}")
    changed = json.loads(proc.stdout or "{}")
    if changed:
        raise RegistryError(
            f"the pipeline up to '{stage}' is not up to date ({', '.join(sorted(changed))} changed); "
            "run `dvc repro` (or `dvc pull`) and commit dvc.lock before `make release`"
        )


def release(repo: str | Path = ".", push: bool = False, check_pipeline: bool = True) -> dict[str, Any]:
    """Register the candidate and assign ``prod`` when the promote stage's decision is ``promote``.

    Returns a summary: ``{"action": "rejected"|"unchanged"|"released", "version": ..., ...}``. Writes the champion
    file on a release (commit it, then `dvc repro promote`: see docs/registry.md).
    """
    root = Path(repo)
    paths = load_params(root / "params.yaml").paths
    _check_committed(root, ["dvc.yaml", "dvc.lock", "params.yaml", paths.champion, paths.promotion])
    if check_pipeline:
        _check_pipeline_up_to_date(root)
    decision = read_json(root / paths.promotion)
    if decision.get("decision") != "promote":
        reasons = "; ".join(decision.get("reasons") or []) or "no reason recorded"
        log.warning("not released: the promote stage rejected the candidate (%s); prod is unchanged", reasons)
        return {"action": "rejected", "reasons": decision.get("reasons") or []}
    sha = ModelMetadata.read(root / paths.model_meta).model.sha256
    candidate = decision.get("candidate") or {}
    if sha != candidate.get("model_sha256"):
        raise RegistryError(
            f"{paths.model_meta} (model.sha256 {sha[:12]}...) is not the model {paths.promotion} "
            "decided on; run `dvc repro` and commit"
        )
    champion = read_json(root / paths.champion)
    if champion.get("version") and champion.get("model_sha256") == sha:
        log.info("model %s... is already the champion %s: nothing to release", sha[:12], champion["version"])
        return {"action": "unchanged", "version": champion["version"]}

    from gto.exceptions import GTOException

    api = _gto()
    first = not _registered_versions(root, ARTIFACT)
    note = ", ".join(f"{k}={v}" for k, v in sorted((candidate.get("metrics") or {}).items()))
    try:
        reg = api.register(
            str(root), ARTIFACT, ref="HEAD", version=FIRST_VERSION if first else None, bump_minor=not first,
            message=f"model {sha[:12]}: {note}",
        )  # fmt: skip
        version = reg.version
        assignment = api.assign(str(root), ARTIFACT, PROD, version=version, message=f"promoted: {note}")
    except GTOException as exc:
        raise RegistryError(f"gto could not register/assign {ARTIFACT} at HEAD: {exc}") from exc
    tags = [f"{ARTIFACT}@{version}", assignment.tag]
    write_json(
        root / paths.champion,
        {
            "artifact": ARTIFACT,
            "metrics": dict(sorted((candidate.get("metrics") or {}).items())),
            "model_sha256": sha,
            "task": candidate.get("task"),
            "version": version,
        },
    )
    log.info("registered %s and assigned %s (%s); updated %s", tags[0], PROD, tags[1], paths.champion)
    if push:
        _git(root, "push", "origin", *tags)
        log.info("pushed tags %s", ", ".join(tags))
    return {"action": "released", "version": version, "tags": tags, "champion": paths.champion}


def reset_champion(repo: str | Path = ".") -> Path:
    """Write an empty champion file (``paths.champion`` of ``repo``'s params.yaml) and return its path: the next
    candidate is compared with the thresholds only."""
    path = Path(repo) / load_params(Path(repo) / "params.yaml").paths.champion
    write_json(path, EMPTY_CHAMPION)
    return path


__all__ = [
    "ARTIFACT",
    "PROD",
    "ModelFiles",
    "ModelVersion",
    "ProvenanceError",
    "RegistryError",
    "cache_dir",
    "fetch",
    "materialize",
    "md5_file",
    "private_dir",
    "recorded_md5s",
    "release",
    "reset_champion",
    "resolve_prod",
    "resolve_version",
]
