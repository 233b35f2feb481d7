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

The code is split by concern: :mod:`.versions` resolves versions from the GTO tags, :mod:`.provenance` fetches
and verifies their files into the private cache, :mod:`.release` registers and assigns them. This module only
re-exports their names. The command line (``python -m lifecycle.registry release|show|pull|reset-champion``) is
in ``__main__.py``.
"""

from lifecycle.registry.provenance import (
    ProvenanceError,
    cache_dir,
    fetch,
    materialize,
    md5_file,
    private_dir,
    recorded_md5s,
)
from lifecycle.registry.release import EMPTY_CHAMPION as EMPTY_CHAMPION
from lifecycle.registry.release import FIRST_VERSION as FIRST_VERSION
from lifecycle.registry.release import release, reset_champion
from lifecycle.registry.versions import (
    ARTIFACT,
    PROD,
    ModelFiles,
    ModelVersion,
    RegistryError,
    resolve_prod,
    resolve_version,
)
from lifecycle.registry.versions import FALLBACK_PATHS as FALLBACK_PATHS
from lifecycle.registry.versions import paths_at as paths_at

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
