"""The committed pipeline YAML runs end to end with KFP's local subprocess runner (no cluster) on the small
telemetry sample, and every output is byte-identical to what `dvc repro` wrote from the same params and data
(the model included). Then, with KFP's local cache: a rejected candidate skips register and deploy while every
unchanged stage is a cache hit; a failing stage is retried and the exit handler reports the failure.

Not exercised locally (kfp.local has no cluster): CPU/memory limits, pod timeouts and Secrets (kfp-kubernetes),
S3 pipeline roots and importers of s3:// URIs, and applying the InferenceService (deploy_apply=false renders it).
test_pipeline.py checks those settings in the YAML instead.
"""

from __future__ import annotations

import copy
import json
import re
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from kfp import components, local
from tests.conftest import deep_update
from tests.kfp.helpers import PIPELINE_YAML, ROOT

from lifecycle.kfp.spec import load_project

pytestmark = [
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore::FutureWarning", "ignore::UserWarning", "ignore::RuntimeWarning"),
]
ISVC_SCHEMA = ROOT / "deploy" / "schemas" / "kserve-inferenceservice-v1beta1.strict.schema.json"


def outputs_of(run_root: Path) -> dict[str, dict[str, Any]]:
    """task -> output name -> {uri, metadata}, from the executor outputs the local runner wrote."""
    out: dict[str, dict[str, Any]] = {}
    for path in sorted(run_root.glob("*/executor_output.json")):
        arts = json.loads(path.read_text()).get("artifacts", {})
        out[path.parent.name] = {name: a["artifacts"][0] for name, a in arts.items()}
    return out


def outcomes(hook: Any) -> list[str]:
    """First lines of the exit handler's messages (the stages may send their own, e.g. monitor on drift)."""
    return [m["text"].splitlines()[0] for m in hook.received if "Kubeflow pipeline" in m["text"]]


def same_bytes(a: Path, b: Path) -> bool:
    if a.is_dir():
        return subprocess.run(["diff", "-r", "-q", str(a), str(b)], capture_output=True).returncode == 0
    return a.read_bytes() == b.read_bytes()


class LocalRuns:
    """Runs of the committed pipeline on ``repo``'s inputs, sharing one KFP local cache and one registry."""

    def __init__(self, repo: Path, tmp: Path, webhook_url: str) -> None:
        self.repo, self.tmp = repo, tmp
        self.params = yaml.safe_load((repo / "params.yaml").read_text())
        self.params["notify"]["webhook_url"] = webhook_url
        self.pipeline = components.load_component_from_file(str(PIPELINE_YAML))
        self.registry = tmp / "registry"

    def run(self, name: str, changes: dict[str, Any] | None = None, **uris: str) -> Path:
        params = deep_update(copy.deepcopy(self.params), changes or {})
        root = self.tmp / name
        local.init(
            runner=local.SubprocessRunner(use_venv=False),
            pipeline_root=str(root),
            enable_caching=True,
            cache_root=str(self.tmp / "cache"),
        )
        inputs = self.pipeline.component_spec.inputs
        args: dict[str, Any] = {s: json.dumps(params[s]) for s in inputs if s in params}
        args |= {f"{a.name}_uri": str(self.repo / a.path) for a in load_project(ROOT).external_inputs()}
        args |= {"registry_uri": str(self.registry), "deploy_apply": False, **uris}
        self.pipeline(**args)
        return root

    @staticmethod
    def run_dir(root: Path) -> Path:
        (run,) = root.glob("lifecycle-*")
        return run


def test_local_run_matches_dvc_repro_and_gates_register_and_deploy(built_repo, tmp_path, webhook, capfd):
    runs = LocalRuns(built_repo, tmp_path, webhook.url)
    project = load_project(ROOT)

    # 1. the whole pipeline; the candidate passes the gate (no champion yet): registered and deployed
    first = LocalRuns.run_dir(runs.run("first"))
    produced = outputs_of(first)
    compared = {}
    for arts in produced.values():
        for art in arts.values():
            rel = art["metadata"].get("dvc_path")
            if rel:
                compared[rel] = same_bytes(Path(art["uri"]), built_repo / rel)
    every_out = {a.path for a in project.artifacts.values() if a.producer}
    assert set(compared) == every_out
    assert all(compared.values()), [rel for rel, same in compared.items() if not same]
    model = Path(produced["train"]["model"]["uri"])
    assert model.read_bytes() == (built_repo / "models/model.joblib").read_bytes()  # the headline: same model bytes

    version = produced["register"]["registered"]["metadata"]["version"]
    assert (runs.registry / version / "model.joblib").read_bytes() == model.read_bytes()
    champion = json.loads((runs.registry / "champion.json").read_text())
    decision = json.loads(Path(produced["promote"]["promotion"]["uri"]).read_text())
    assert decision["decision"] == "promote"
    assert champion == {
        "artifact": "model",
        "metrics": decision["candidate"]["metrics"],
        "model_sha256": decision["candidate"]["model_sha256"],
        "task": "classification",
        "version": version,
    }
    manifest = yaml.safe_load(Path(produced["deploy"]["manifest"]["uri"]).read_text())
    errors = list(jsonschema.Draft7Validator(json.loads(ISVC_SCHEMA.read_text())).iter_errors(manifest))
    assert errors == []
    env = {e["name"]: e["value"] for e in manifest["spec"]["predictor"]["containers"][0]["env"]}
    assert env["STORAGE_URI"] == f"{runs.registry}/{version}"
    assert env["SERVE_MODEL_PATH"] == "/mnt/models/model.joblib"
    assert produced["deploy"]["manifest"]["metadata"]["applied"] == "dry run"
    metrics = produced["evaluate"]["metrics_evaluate_metrics_json"]["metadata"]
    assert metrics["accuracy"] == decision["candidate"]["metrics"]["accuracy"]  # Metrics artifacts carry the numbers
    # the stages' own notifications (monitor: drift on the v2 batch) and the exit handler's, last
    assert "Drift detected" in webhook.received[0]["text"]
    assert outcomes(webhook) == [":information_source: *Kubeflow pipeline lifecycle: succeeded*"]

    # 2. a stricter gate against the registry's champion: promote reruns, every other stage is a cache hit,
    #    and the rejected candidate is neither registered nor deployed
    second = LocalRuns.run_dir(
        runs.run(
            "second",
            {"promote": {"classification": {"min": {"accuracy": 0.999}}}},
            champion_uri=str(runs.registry / "champion.json"),
        )
    )
    # the other stages: cache hits (check_params reruns on any parameter; nothing depends on it)
    assert sorted(p.name for p in second.iterdir()) == ["check-params", "notify", "promote"]
    decision = json.loads((second / "promote" / "promotion").read_text())
    assert decision["decision"] == "reject"
    assert decision["champion"]["version"] == version
    assert {p.name for p in runs.registry.iterdir()} == {"champion.json", version}
    assert outcomes(webhook)[1:] == [":information_source: *Kubeflow pipeline lifecycle: succeeded*"]

    # 3. a failing stage: retried (kfp.retries), the run fails, and the exit handler says so
    capfd.readouterr()
    with pytest.raises(RuntimeError, match="validate"):
        runs.run("third", {"validate": {"min_rows": 10**9}})
    captured = capfd.readouterr()
    log = re.sub(r"\x1b\[[0-9;]*m", "", captured.out + captured.err)
    assert log.count("stage validate: python -m lifecycle.stages.validate") == 2  # run, then retried once
    assert "stage promote:" not in log
    assert outcomes(webhook)[2:] == [":x: *Kubeflow pipeline lifecycle: failed*"]
    assert "state: FAILED" in webhook.received[-1]["text"]
