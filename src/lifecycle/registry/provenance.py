"""Provenance and the private cache: every file of a version, wherever it comes from (the S3 remote, the local
DVC cache, an earlier fetch), is checked against the md5 its commit's dvc.lock records before anything reads it,
and lands in a folder only the current user can write (docs/security.md).
"""

from __future__ import annotations

import hashlib
import logging
import os
import posixpath
import stat
import subprocess
from pathlib import Path

import yaml

from lifecycle.artifact import ModelIntegrityError, ModelMetadata, verify
from lifecycle.errors import LifecycleError
from lifecycle.io import atomic_path, sha256_file
from lifecycle.registry.versions import (
    PROD,
    ModelFiles,
    ModelVersion,
    RegistryError,
    paths_at,
    resolve_prod,
    resolve_version,
)

log = logging.getLogger(__name__)


class ProvenanceError(RegistryError):
    """A file of a version is not the one its git commit records (md5 in dvc.lock, or the sha256 in the verified
    model.json), or cannot be checked: nothing of the version may be loaded."""


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
