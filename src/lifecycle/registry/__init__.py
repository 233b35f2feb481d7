"""The model registry: GTO git tags over the ``model`` artifact declared in dvc.yaml's ``artifacts:`` section.

A version is an annotated tag ``model@vX.Y.Z`` on the commit whose dvc.lock describes the model; a stage is a tag
``model#prod#N``. The files of a version come from DVC (the local cache, else the ``storage`` remote) at that
commit, so any clone can materialize the exact bytes. The registry is read outside the DAG only (server start-up,
production scoring, `make release`); the promote stage sees the champion through models/champion.json.

For code (the server and production scoring), :func:`fetch` is the one entry point::

    version, files = fetch("prod", repo=".", dest="/srv/model")
    # ModelVersion(artifact, version, tag, commit, repo, stage, stage_tag)
    # ModelFiles(model=/srv/model/model.joblib, meta=/srv/model/model.json, onnx=/srv/model/model.onnx | None)

The command line (``python -m lifecycle.registry release|show|pull|reset-champion``) is in ``__main__.py``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import subprocess
import sys
import tempfile
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


def _copy_from_dvc(repo: str, path: str, rev: str, dest: Path) -> None:
    import dvc.api

    try:
        with dvc.api.open(path, repo=repo, rev=rev, mode="rb") as src, atomic_path(dest) as tmp, open(tmp, "wb") as out:
            while block := src.read(1 << 20):
                out.write(block)
    except LifecycleError:
        raise
    except Exception as exc:  # DVC raises many types (missing cache, remote errors, path not found)
        raise RegistryError(
            f"cannot read {path} at {rev[:12]} from DVC ({type(exc).__name__}: {exc}); "
            "check the `storage` remote and its credentials (docs/registry.md), or `dvc push` from the clone that built it"
        ) from exc


def materialize(version: ModelVersion, dest: str | Path, force: bool = False) -> ModelFiles:
    """``version``'s model.joblib and model.json (and its usable model.onnx), byte for byte, into ``dest``;
    verified by sha256.

    The bytes come from DVC at the version's commit (local cache, else the default remote); where they live in
    that commit comes from its params.yaml (:func:`paths_at`). Existing files in ``dest`` whose sha256 already
    matches are kept unless ``force``. The model is checked with :func:`lifecycle.artifact.verify` against the
    version's model.json, and never unpickled here.

    Raises :class:`RegistryError` when the bytes cannot be read or are not the registered ones, and
    :class:`lifecycle.artifact.ModelIntegrityError` when the version's model.json is not a model record.
    """
    out = Path(dest)
    paths = paths_at(version.repo, version.commit)
    model_path, meta_path = out / Path(paths["model"]).name, out / Path(paths["model_meta"]).name
    if force or not meta_path.exists():
        _copy_from_dvc(version.repo, paths["model_meta"], version.commit, meta_path)
    record = ModelMetadata.read(meta_path)
    if force or not model_path.exists() or sha256_file(model_path) != record.model.sha256:
        _copy_from_dvc(version.repo, paths["model"], version.commit, model_path)
    try:
        verify(model_path, record, f"{meta_path.name} of {version.tag}")
    except ModelIntegrityError as exc:
        raise RegistryError(f"{exc} (the remote holds other bytes than the ones registered)") from exc
    onnx_path = _materialize_onnx(version, record, paths["onnx"], out, force)
    log.info("materialized %s (%s, commit %s) into %s", version.tag, version.stage or "-", version.commit[:12], out)
    return ModelFiles(model=model_path, meta=meta_path, onnx=onnx_path)


def _materialize_onnx(version: ModelVersion, record: ModelMetadata, path: str, out: Path, force: bool) -> Path | None:
    """The version's model.onnx beside the joblib, verified by model.json's ``onnx.sha256``; None (with a warning)
    when the version has no usable graph or its bytes cannot be fetched: servers then use scikit-learn."""
    section = record.onnx
    expected = section.sha256 if section is not None else None
    if section is None or not section.usable or not expected:
        log.info("%s has no usable ONNX graph (%s)", version.tag, (section and section.reason) or "no onnx section")
        return None
    dest = out / Path(path).name
    try:
        if force or not dest.exists() or sha256_file(dest) != expected:
            _copy_from_dvc(version.repo, path, version.commit, dest)
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
    ``stage``, from the GTO tags of ``repo``, and materialize its files into ``dest`` (default: a cache folder per
    version under the system temp dir). Used by the server (``SERVE_MODEL_SOURCE=registry``) and by production
    scoring. Raises :class:`RegistryError` when there is no such version or stage, or its bytes cannot be had.
    """
    if version is not None:
        resolved = resolve_version(version, repo)
    else:
        from gto.exceptions import GTOException

        try:
            resolved = resolve_prod(stage or PROD, repo)
        except GTOException as exc:  # gto raises its own types (no artifact declared, not a git repo, ...)
            raise RegistryError(f"{repo}: cannot read the registry ({type(exc).__name__}: {exc})") from exc
    folder = Path(dest) if dest else Path(tempfile.gettempdir()) / "lifecycle-registry" / resolved.commit[:12]
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
    "RegistryError",
    "fetch",
    "materialize",
    "release",
    "reset_champion",
    "resolve_prod",
    "resolve_version",
]
