"""What the components run in their container: a stage in a scratch folder laid out like the repository, the
registry write, the InferenceService for the registered model, and the exit handler's message."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import jsonschema
import pytest
import yaml
from tests.kfp.helpers import ROOT

from lifecycle.kfp.runtime import (
    KfpRunError,
    notify_outcome,
    parse_section,
    register_model,
    render_inference_service,
    run_stage,
)

ISVC = (ROOT / "deploy" / "kserve" / "inferenceservice.yaml").read_text()
ISVC_SCHEMA = json.loads(
    (ROOT / "deploy" / "schemas" / "kserve-inferenceservice-v1beta1.strict.schema.json").read_text()
)


def artifact(path: Path, **metadata: Any) -> SimpleNamespace:
    return SimpleNamespace(path=str(path), metadata=dict(metadata))


def json_stage(cmd: str, returns: dict[str, str] | None = None) -> dict[str, Any]:
    """A stage that copies its input JSON to a metrics output (``python -m json.tool IN OUT``)."""
    spec = {
        "stage": "copy",
        "cmd": [cmd],
        "sections": {"params_base": "base"},
        "inputs": {"source": "data/in.json"},
        "outputs": {"metrics_out": {"path": "metrics/out.json", "kind": "Metrics"}},
        "params": {"paths": {"x": "y"}},
    }
    return spec | ({"returns": returns} if returns else {})


def test_run_stage_lays_out_inputs_runs_the_cmd_and_publishes_outputs(tmp_path):
    source = tmp_path / "in.json"
    source.write_text(json.dumps({"accuracy": 0.9, "per_class": {"none": {"f1": 0.5}}, "decision": "promote"}))
    out = artifact(tmp_path / "artifacts" / "metrics_out")
    args = {"params_base": '{"seed": 1}', "source": artifact(source), "metrics_out": out}
    value = run_stage(
        json_stage("python -m json.tool data/in.json metrics/out.json", {"output": "metrics_out", "key": "decision"}),
        args,
    )
    assert value == "promote"
    written = Path(out.path).read_bytes()
    assert json.loads(written)["accuracy"] == 0.9
    assert out.metadata == {
        "sha256": hashlib.sha256(written).hexdigest(),
        "dvc_path": "metrics/out.json",
        "accuracy": 0.9,
        "per_class.none.f1": 0.5,
    }


def test_run_stage_writes_the_runs_params(tmp_path):
    (tmp_path / "in.json").write_text("{}")
    out = artifact(tmp_path / "params_seen")
    spec = json_stage("")
    spec["cmd"] = [
        "python -c \"import yaml, json; json.dump(yaml.safe_load(open('params.yaml')), open('metrics/out.json', 'w'))\""
    ]
    run_stage(spec, {"params_base": '{"seed": 7}', "source": artifact(tmp_path / "in.json"), "metrics_out": out})
    assert json.loads(Path(out.path).read_text()) == {"paths": {"x": "y"}, "base": {"seed": 7}}


def test_run_stage_failures_are_named(tmp_path):
    (tmp_path / "in.json").write_text("{}")
    args = {"params_base": "{}", "source": artifact(tmp_path / "in.json"), "metrics_out": artifact(tmp_path / "o")}
    with pytest.raises(KfpRunError, match=r"stage copy failed \(exit 2\)"):
        run_stage(json_stage("python -m json.tool data/missing.json metrics/out.json"), args)
    with pytest.raises(KfpRunError, match=r"did not write metrics/out\.json"):
        run_stage(json_stage("python -c pass"), args)
    with pytest.raises(KfpRunError, match=r"input source \(data/in.json\).*does not exist"):
        run_stage(json_stage("python -c pass"), args | {"source": artifact(tmp_path / "nope.json")})
    with pytest.raises(KfpRunError, match="pipeline parameter 'base': not JSON"):
        parse_section("{seed: 1", "base")
    with pytest.raises(KfpRunError, match="expected a JSON object, got list"):
        parse_section("[1]", "base")


def model_files(tmp_path: Path, decision: str = "promote", sha: str | None = None) -> tuple[dict, SimpleNamespace]:
    model = tmp_path / "model"
    model.write_bytes(b"fitted pipeline")
    actual = hashlib.sha256(model.read_bytes()).hexdigest()
    meta = tmp_path / "model_meta"
    meta.write_text(json.dumps({"model": {"sha256": sha or actual}}))
    onnx = tmp_path / "onnx"
    onnx.write_bytes(b"")
    promotion = tmp_path / "promotion"
    candidate = {"model_sha256": actual, "metrics": {"f1_macro": 0.8, "accuracy": 0.9}, "task": "classification"}
    promotion.write_text(json.dumps({"decision": decision, "candidate": candidate}))
    files = {
        "model": artifact(model, dvc_path="models/model.joblib"),
        "model_meta": artifact(meta, dvc_path="models/model.json"),
        "onnx": artifact(onnx, dvc_path="models/model.onnx"),
    }
    return files, artifact(promotion)


def test_register_writes_the_version_then_the_champion(tmp_path):
    files, promotion = model_files(tmp_path)
    registered = artifact(tmp_path / "registered")
    version = register_model(files, promotion, str(tmp_path / "registry"), registered)
    sha = hashlib.sha256(b"fitted pipeline").hexdigest()
    assert version == sha[:12]
    assert sorted(p.name for p in (tmp_path / "registry" / version).iterdir()) == [
        "model.joblib",
        "model.json",
        "model.onnx",
    ]
    assert json.loads((tmp_path / "registry" / "champion.json").read_text()) == {
        "artifact": "model",
        "metrics": {"accuracy": 0.9, "f1_macro": 0.8},
        "model_sha256": sha,
        "task": "classification",
        "version": version,
    }
    assert registered.metadata["storage_uri"] == f"{tmp_path}/registry/{version}"
    assert registered.metadata["files"] == {"model": "model.joblib", "model_meta": "model.json", "onnx": "model.onnx"}


@pytest.mark.parametrize(
    ("decision", "sha", "message"), [("reject", None, "not 'promote'"), ("promote", "0" * 64, "not from one run")]
)
def test_register_refuses_a_rejected_or_mismatched_model(tmp_path, decision, sha, message):
    files, promotion = model_files(tmp_path, decision, sha)
    with pytest.raises(KfpRunError, match=message):
        register_model(files, promotion, str(tmp_path / "registry"), artifact(tmp_path / "registered"))
    assert not (tmp_path / "registry" / "champion.json").exists()


def test_inference_service_serves_the_registered_version():
    registered = {
        "version": "abc123def456",
        "sha256": "ab" * 32,
        "storage_uri": "s3://lifecycle-kfp/registry/abc123def456",
        "files": {"model": "model.joblib", "model_meta": "model.json", "onnx": "model.onnx"},
    }
    manifest = render_inference_service(ISVC, registered, "ghcr.io/example/lifecycle:1.2", "models")
    assert list(jsonschema.Draft7Validator(ISVC_SCHEMA).iter_errors(manifest)) == []
    container = manifest["spec"]["predictor"]["containers"][0]
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["STORAGE_URI"] == registered["storage_uri"]
    assert env["SERVE_MODEL_PATH"] == "/mnt/models/model.joblib"
    assert env["SERVE_META_PATH"] == "/mnt/models/model.json"
    assert env["SERVE_ONNX_PATH"] == "/mnt/models/model.onnx"
    assert env["SERVE_MODEL_NAME"] == "lifecycle"  # the template's own settings are kept
    assert container["image"] == "ghcr.io/example/lifecycle:1.2"
    assert manifest["metadata"]["namespace"] == "models"
    assert manifest["metadata"]["labels"]["lifecycle/model-version"] == "abc123def456"
    with pytest.raises(KfpRunError, match="not a KServe InferenceService"):
        render_inference_service(yaml.safe_dump({"kind": "Deployment"}), registered, "img", "ns")


def test_notify_outcome_reports_failures(webhook):
    section = json.dumps({"webhook_url": webhook.url, "timeout_seconds": 5.0})
    assert notify_outcome("FAILED", "run-7", "task validate failed", section, "lifecycle")
    (message,) = webhook.received
    assert message["text"].splitlines() == [
        ":x: *Kubeflow pipeline lifecycle: failed*",
        "• run: run-7",
        "• state: FAILED",
        "• error: task validate failed",
    ]
    assert (
        notify_outcome("SUCCEEDED", "run-8", "", json.dumps({"webhook_url": None, "timeout_seconds": 5}), "x") is False
    )


def test_register_writes_to_s3_with_the_environment_the_pipeline_sets(tmp_path, monkeypatch):
    """The tasks get AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY from the Secret and AWS_ENDPOINT_URL from
    kfp.s3_endpoint_url: with just those, register writes to S3 (moto's server on 127.0.0.1)."""
    import boto3
    from tests.helpers import CREDENTIALS, MotoS3

    server = MotoS3()
    server.start()
    try:
        env = CREDENTIALS
        for key, value in {**env, "AWS_ENDPOINT_URL": server.endpoint}.items():
            monkeypatch.setenv(key, value)
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket="lifecycle-kfp")
        files, promotion = model_files(tmp_path)
        version = register_model(files, promotion, "s3://lifecycle-kfp/registry", artifact(tmp_path / "registered"))
        keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket="lifecycle-kfp")["Contents"])
        assert keys == [
            f"registry/{version}/model.joblib",
            f"registry/{version}/model.json",
            f"registry/{version}/model.onnx",
            "registry/champion.json",
        ]
        champion = json.loads(s3.get_object(Bucket="lifecycle-kfp", Key="registry/champion.json")["Body"].read())
        assert champion["version"] == version
    finally:
        server.stop()
