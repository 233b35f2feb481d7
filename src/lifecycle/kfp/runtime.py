"""What the pipeline's components run inside their container (imports nothing of kfp).

- :func:`run_stage`: one dvc.yaml stage, exactly as ``dvc repro`` runs it: a scratch folder laid out like the
  repository (each input artifact linked at its dvc.yaml path, a params.yaml of the run's values), the stage's
  ``cmd``, then each declared output copied to its output artifact (sha256 and, for metrics, every number as
  artifact metadata, which the Kubeflow UI shows).
- :func:`register_model`, :func:`render_inference_service` / :func:`apply_inference_service` and
  :func:`notify_outcome`: the steps after the promotion gate and the exit handler.

Artifacts are duck-typed: anything with ``.path`` (a local path) and ``.metadata`` (a dict), as KFP's
``Input[...]``/``Output[...]`` objects are.
"""

from __future__ import annotations

import copy
import json
import logging
import shutil
import subprocess
import sys
import tempfile
import types
from collections.abc import Iterator, Mapping
from pathlib import Path, PurePosixPath
from typing import Any, Protocol

import yaml

from lifecycle.errors import LifecycleError
from lifecycle.io import sha256_file
from lifecycle.kfp.spec import command_argv

log = logging.getLogger(__name__)
MODEL_MOUNT = "/mnt/models"  # where KServe's storage initializer puts the files of STORAGE_URI
SERVE_ENV = {"model": "SERVE_MODEL_PATH", "model_meta": "SERVE_META_PATH", "onnx": "SERVE_ONNX_PATH"}
KSERVE = ("serving.kserve.io", "v1beta1", "inferenceservices")
MAX_METRICS = 500  # numbers logged per Metrics artifact (the file has the rest)


class ArtifactLike(Protocol):
    path: str
    metadata: dict[str, Any]


class KfpRunError(LifecycleError):
    """A component cannot do its work: a stage failed, an input is missing, a record does not match."""


# --------------------------------------------------------------------------------------------- stages
def run_stage(spec: Mapping[str, Any], args: Mapping[str, Any]) -> str | None:
    """Run one dvc.yaml stage as a component.

    ``spec`` (written by lifecycle.kfp.pipeline at compile time): ``stage``, ``cmd`` (list of command lines),
    ``params`` (params.yaml at compile time), ``sections`` (component input -> params section it replaces),
    ``inputs`` (component input -> dvc.yaml path), ``outputs`` (component output -> ``{path, kind}``), and
    optionally ``returns`` (``{output, key}``: the JSON key of that output returned as the component's value).
    ``args``: the component's arguments (``locals()`` of the generated function): JSON strings for sections,
    artifacts for inputs and outputs. Returns the ``returns`` value, else None. Raises KfpRunError.
    """
    stage = spec["stage"]
    workdir = Path(tempfile.mkdtemp(prefix=f"lifecycle-{stage}-"))
    try:
        params = copy.deepcopy(dict(spec["params"]))
        for arg, section in spec["sections"].items():
            params[section] = parse_section(args[arg], section)
        (workdir / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False), encoding="utf-8")
        for arg, rel in spec["inputs"].items():
            _link(Path(args[arg].path), workdir / rel, f"{stage}: input {arg} ({rel})")
        for out in spec["outputs"].values():
            (workdir / out["path"]).parent.mkdir(parents=True, exist_ok=True)
        for cmd in spec["cmd"]:
            log.info("stage %s: %s", stage, cmd)
            proc = subprocess.run(command_argv(cmd, sys.executable), cwd=workdir, check=False)
            if proc.returncode != 0:
                raise KfpRunError(f"stage {stage} failed (exit {proc.returncode}): {cmd}; its log is above")
        for arg, out in spec["outputs"].items():
            publish(workdir / out["path"], args[arg], out["kind"], out["path"], f"stage {stage}")
        returns = spec.get("returns")
        if returns:
            path = workdir / spec["outputs"][returns["output"]]["path"]
            value = json.loads(path.read_text(encoding="utf-8")).get(returns["key"])
            log.info("stage %s: %s = %r", stage, returns["key"], value)
            return str(value)
        return None
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def parse_section(value: Any, section: str) -> dict[str, Any]:
    """A params section passed as a pipeline parameter: a JSON object (a mapping is accepted as is)."""
    if isinstance(value, Mapping):
        return dict(value)
    try:
        parsed = json.loads(value)
    except (TypeError, ValueError) as exc:
        raise KfpRunError(
            f"pipeline parameter {section!r}: not JSON ({exc}); pass the whole params.yaml section as a JSON object"
        ) from exc
    if not isinstance(parsed, dict):
        raise KfpRunError(f"pipeline parameter {section!r}: expected a JSON object, got {type(parsed).__name__}")
    return parsed


def publish(source: Path, artifact: ArtifactLike, kind: str, rel: str, who: str) -> None:
    """Copy a stage's output file or folder to its artifact and describe it in the artifact's metadata."""
    if not source.exists():
        raise KfpRunError(f"{who} did not write {rel}, a declared output in dvc.yaml")
    target = Path(artifact.path)
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.is_dir() and not target.is_symlink():
        shutil.rmtree(target)
    if source.is_dir():
        shutil.copytree(source, target, dirs_exist_ok=True)
    else:
        shutil.copyfile(source, target)
        artifact.metadata["sha256"] = sha256_file(target)
    artifact.metadata["dvc_path"] = rel
    if kind == "Metrics" and source.is_file() and source.suffix == ".json":
        for key, number in list(_numbers(json.loads(source.read_text(encoding="utf-8"))))[:MAX_METRICS]:
            artifact.metadata[key] = number


def _numbers(node: Any, prefix: str = "") -> Iterator[tuple[str, float]]:
    if isinstance(node, bool | int | float):
        yield prefix, float(node)
    elif isinstance(node, Mapping):
        for key, value in node.items():
            yield from _numbers(value, f"{prefix}.{key}" if prefix else str(key))


def _link(source: Path, target: Path, what: str) -> None:
    if not source.exists():
        raise KfpRunError(f"{what}: {source} does not exist (for an imported input: is it uploaded to its URI?)")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.symlink_to(source.resolve(), target_is_directory=source.is_dir())


# --------------------------------------------------------------------------------------------- register
def register_model(
    files: Mapping[str, ArtifactLike], promotion: ArtifactLike, registry_uri: str, registered: ArtifactLike
) -> str:
    """Copy the promoted model's files to ``<registry_uri>/<version>/`` and point ``<registry_uri>/champion.json``
    at it (the record `make release` writes to models/champion.json). ``files``: role (``model``,
    ``model_meta``, ``onnx``) -> artifact; their file names are taken from ``metadata["dvc_path"]``.

    The version is the first 12 hex digits of the model's sha256: the same bytes register once. The files are
    checked first (the model's sha256 against model.json and against the decision); the champion record is
    written last, so a failed upload leaves the previous champion in place. Returns the version.
    """
    import fsspec  # the image has it (dvc-s3 -> s3fs), and it writes to a local folder as well

    decision = _read_json(promotion.path, "promotion decision")
    if decision.get("decision") != "promote":
        raise KfpRunError(f"promotion decision is {decision.get('decision')!r}, not 'promote': nothing to register")
    meta = _read_json(files["model_meta"].path, "model metadata")
    sha = (meta.get("model") or {}).get("sha256")
    actual = sha256_file(files["model"].path)
    candidate = decision.get("candidate") or {}
    if sha != actual or candidate.get("model_sha256") != actual:
        raise KfpRunError(
            f"model sha256 {actual[:12]}... does not match model.json ({str(sha)[:12]}...) or the promotion decision "
            f"({str(candidate.get('model_sha256'))[:12]}...): the artifacts are not from one run"
        )
    version = actual[:12]
    fs, root = fsspec.core.url_to_fs(registry_uri)
    folder = f"{root.rstrip('/')}/{version}"
    fs.makedirs(folder, exist_ok=True)
    Path(registered.path).mkdir(parents=True, exist_ok=True)
    names = {}
    for role, artifact in files.items():
        name = PurePosixPath(artifact.metadata.get("dvc_path") or Path(artifact.path).name).name
        names[role] = name
        fs.put_file(artifact.path, f"{folder}/{name}")
        shutil.copyfile(artifact.path, Path(registered.path) / name)
    champion = {
        "artifact": "model",
        "metrics": dict(sorted((candidate.get("metrics") or {}).items())),
        "model_sha256": actual,
        "task": candidate.get("task"),
        "version": version,
    }
    fs.pipe_file(f"{root.rstrip('/')}/champion.json", (json.dumps(champion, indent=2, sort_keys=True) + "\n").encode())
    registered.metadata.update(
        {
            "version": version,
            "sha256": actual,
            "storage_uri": f"{registry_uri.rstrip('/')}/{version}",
            "files": names,
            **{f"metrics.{k}": v for k, v in champion["metrics"].items()},
        }
    )
    log.info("registered model %s at %s/%s", version, registry_uri.rstrip("/"), version)
    return version


def _read_json(path: str | Path, what: str) -> dict[str, Any]:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise KfpRunError(f"{what} {path}: cannot be read as JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise KfpRunError(f"{what} {path}: expected a JSON object")
    return data


# --------------------------------------------------------------------------------------------- deploy
def render_inference_service(template: str, registered: Mapping[str, Any], image: str, namespace: str) -> dict:
    """deploy/kserve/inferenceservice.yaml (``template``, YAML text) set to serve the registered model.

    ``registered``: the register step's metadata (``version``, ``sha256``, ``storage_uri``, ``files``). The
    predictor container gets ``image``, ``STORAGE_URI`` (KServe's storage initializer downloads the version's
    files to /mnt/models) and the server's SERVE_MODEL_PATH / SERVE_META_PATH / SERVE_ONNX_PATH pointing there;
    the model version and sha256 go into labels and annotations. Raises KfpRunError on a template without a
    predictor container.
    """
    manifest = yaml.safe_load(template)
    if not isinstance(manifest, dict) or manifest.get("kind") != "InferenceService":
        raise KfpRunError("the InferenceService template is not a KServe InferenceService manifest")
    containers = (((manifest.get("spec") or {}).get("predictor") or {}).get("containers")) or []
    container = next((c for c in containers if c.get("name") == "kserve-container"), None)
    if container is None:
        raise KfpRunError("the InferenceService template has no predictor container named kserve-container")
    metadata = manifest.setdefault("metadata", {})
    metadata["namespace"] = namespace
    metadata.setdefault("labels", {})["lifecycle/model-version"] = str(registered["version"])
    metadata.setdefault("annotations", {})["lifecycle/model-sha256"] = str(registered["sha256"])
    container["image"] = image
    env = {"STORAGE_URI": str(registered["storage_uri"])}
    for role, variable in SERVE_ENV.items():
        if role in registered["files"]:
            env[variable] = f"{MODEL_MOUNT}/{registered['files'][role]}"
    kept = [e for e in container.get("env") or [] if e.get("name") not in env]
    container["env"] = kept + [{"name": k, "value": v} for k, v in env.items()]
    return manifest


def apply_inference_service(manifest: Mapping[str, Any]) -> str:
    """Create or replace the InferenceService in the cluster (in-cluster credentials of the pipeline's service
    account, which needs get/create/update on inferenceservices). Returns ``created`` or ``replaced``."""
    from kubernetes import client, config  # kfp's dependency: in the image with the kfp group
    from kubernetes.client.exceptions import ApiException

    try:
        config.load_incluster_config()
    except config.ConfigException:
        config.load_kube_config()
    api = client.CustomObjectsApi()
    group, version, plural = KSERVE
    name, namespace = manifest["metadata"]["name"], manifest["metadata"]["namespace"]
    try:
        current = api.get_namespaced_custom_object(group, version, namespace, plural, name)
    except ApiException as exc:
        if exc.status != 404:
            raise KfpRunError(
                f"InferenceService {namespace}/{name}: cannot be read ({exc.status} {exc.reason})"
            ) from exc
        api.create_namespaced_custom_object(group, version, namespace, plural, dict(manifest))
        log.info("created InferenceService %s/%s", namespace, name)
        return "created"
    body = copy.deepcopy(dict(manifest))
    body["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
    api.replace_namespaced_custom_object(group, version, namespace, plural, name, body)
    log.info("replaced InferenceService %s/%s", namespace, name)
    return "replaced"


# --------------------------------------------------------------------------------------------- notify
def notify_outcome(state: str, run: str, error: str, notify_section: Any, pipeline_name: str) -> bool:
    """The exit handler's message: the run's final ``state`` (SUCCEEDED, FAILED, CANCELED, ...) to the webhook of
    the ``notify`` section (lifecycle.notify; no URL = no message). Best effort: never raises for the webhook."""
    from lifecycle.notify import notify

    section = parse_section(notify_section, "notify")
    cfg = types.SimpleNamespace(
        webhook_url=section.get("webhook_url"), timeout_seconds=float(section.get("timeout_seconds") or 5.0)
    )
    ok = state.upper() == "SUCCEEDED"
    lines = [f"run: {run}", f"state: {state}"] + ([f"error: {error}"] if error else [])
    title = f"Kubeflow pipeline {pipeline_name}: {'succeeded' if ok else state.lower()}"
    log.info("%s (%s)", title, "; ".join(lines))
    return notify(cfg, title, lines, status="info" if ok else "failure")
