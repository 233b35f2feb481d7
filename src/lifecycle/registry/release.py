"""Releasing: register the promote stage's candidate as the next version (GTO tag) and assign it ``prod``,
after checking the release files are committed and the pipeline is up to date; and resetting the champion.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lifecycle.artifact import ModelMetadata
from lifecycle.config import load_params
from lifecycle.io import read_json, write_json
from lifecycle.registry.versions import ARTIFACT, PROD, RegistryError, _git, _gto

log = logging.getLogger(__name__)
FIRST_VERSION = "v1.0.0"
EMPTY_CHAMPION = {"artifact": ARTIFACT, "metrics": {}, "model_sha256": None, "task": None, "version": None}


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
