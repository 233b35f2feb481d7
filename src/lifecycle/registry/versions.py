"""Resolving versions from the registry's git tags (GTO): a stage (``model#prod#N``) or a version name
(``model@vX.Y.Z``) to the commit it names, and where that commit's params.yaml puts the model's files.

Also the registry's shared vocabulary: the artifact and stage names, :class:`RegistryError` and the data classes
:class:`ModelVersion` and :class:`ModelFiles`.
"""

from __future__ import annotations

import dataclasses
import logging
import subprocess
from pathlib import Path
from typing import Any

import yaml

from lifecycle.config import parse_params
from lifecycle.errors import LifecycleError, ParamsError

log = logging.getLogger(__name__)
ARTIFACT = "model"
PROD = "prod"
# Today's paths of a version's files: used only for a version committed with a params.yaml that today's
# lifecycle.config does not parse (older params lacking keys), for the keys its `paths` section lacks.
FALLBACK_PATHS = {"model": "models/model.joblib", "model_meta": "models/model.json", "onnx": "models/model.onnx"}


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
        """Write this version's model.joblib, model.json (and model.onnx) into ``dest`` (see
        :func:`lifecycle.registry.provenance.materialize`)."""
        from lifecycle.registry.provenance import materialize  # provenance imports this module: resolved late

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
