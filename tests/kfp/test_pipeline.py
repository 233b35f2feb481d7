"""The compiled Kubeflow pipeline (deploy/kfp/pipeline.yaml): never stale, loads back through the kfp SDK, has
dvc.yaml's DAG (as `dvc dag` draws it), the promotion gate, the exit handler, and the kfp section's task settings,
with S3 credentials from a Kubernetes Secret only."""

from __future__ import annotations

import copy
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from kfp import components
from tests.kfp.helpers import PIPELINE_YAML, ROOT, dvc_dag_edges

from lifecycle.kfp.pipeline import compile_pipeline, load
from lifecycle.kfp.spec import load_project

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning", "ignore::UserWarning")


def documents(path: Path) -> list[dict[str, Any]]:
    return list(yaml.safe_load_all(path.read_text()))


def body_dag(manifest: dict[str, Any]) -> dict[str, Any]:
    """The tasks inside the exit handler (importers, stages, the condition)."""
    root = manifest["root"]["dag"]["tasks"]
    (handler,) = [t for t in root.values() if t["componentRef"]["name"].startswith("comp-exit-handler")]
    return manifest["components"][handler["componentRef"]["name"]]["dag"]["tasks"]


def yaml_flows(manifest: dict[str, Any]) -> set[tuple[str, str, str, str]]:
    """``(producer, output, consumer, input)`` of every artifact passed to a stage task; an importer producer is
    named ``import <its URI parameter>``; task keys are mapped to their display names (the stage names)."""
    tasks = body_dag(manifest)
    shown = {key: task["taskInfo"]["name"] for key, task in tasks.items()}
    flows = set()
    for key, task in tasks.items():
        if key.startswith(("importer", "condition")):
            continue
        for name, arg in (task.get("inputs", {}).get("artifacts") or {}).items():
            source = arg["taskOutputArtifact"]
            producer = source["producerTask"]
            if producer.startswith("importer"):
                uri = tasks[producer]["inputs"]["parameters"]["uri"]["componentInputParameter"]
                flows.add(
                    (f"import {uri.removeprefix('pipelinechannel--')}", source["outputArtifactKey"], shown[key], name)
                )
            else:
                flows.add((shown[producer], source["outputArtifactKey"], shown[key], name))
    return flows


def dag_mismatches(manifest: dict[str, Any], dvc_edges: set[tuple[str, str]], root: Path = ROOT) -> list[str]:
    """What the compiled pipeline and dvc.yaml disagree on: stage edges (vs `dvc dag`) and artifact flows."""
    flows = yaml_flows(manifest)
    edges = {(p, c) for p, _, c, _ in flows if not p.startswith("import ")}
    problems = [f"edge {e} in the YAML, not in dvc.yaml" for e in sorted(edges - dvc_edges)]
    problems += [f"edge {e} in dvc.yaml, not in the YAML" for e in sorted(dvc_edges - edges)]
    project = load_project(root)
    expected = set()
    for stage in project.stages.values():
        for name in stage.inputs:
            art = project.artifacts[name]
            expected.add(
                (art.producer, name, stage.name, name)
                if art.producer
                else (f"import {name}_uri", "artifact", stage.name, name)
            )
    problems += [f"artifact flow {f} in the YAML only" for f in sorted(flows - expected)]
    problems += [f"artifact flow {f} of dvc.yaml missing from the YAML" for f in sorted(expected - flows)]
    return problems


@pytest.fixture(scope="module")
def compiled(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return compile_pipeline(ROOT, tmp_path_factory.mktemp("kfp") / "pipeline.yaml")


@pytest.fixture(scope="module")
def dvc_edges(tmp_path_factory: pytest.TempPathFactory) -> set[tuple[str, str]]:
    return dvc_dag_edges(ROOT / "dvc.yaml", ROOT / "params.yaml", tmp_path_factory.mktemp("dag"))


def task_name(stage: str) -> str:
    """The name KFP gives a stage's task: a Kubernetes name (``check_params`` -> ``check-params``: lower case,
    ``_`` -> ``-``), as the compiler sanitizes it."""
    return re.sub(r"[^-0-9a-z]+", "-", stage.lower())


def executor(stage: str) -> str:
    """The executor KFP names for a stage's component: ``exec-check-params`` for ``check_params``."""
    return f"exec-{task_name(stage)}"


def test_committed_yaml_is_the_compiled_one(compiled):
    assert PIPELINE_YAML.read_text() == compiled.read_text(), (
        "deploy/kfp/pipeline.yaml is stale: run `make kfp` and commit it"
    )


def test_yaml_loads_back_through_the_kfp_sdk():
    pipeline = components.load_component_from_file(str(PIPELINE_YAML))
    project, kfp = load(ROOT)
    assert pipeline.name == kfp.pipeline_name
    inputs = pipeline.component_spec.inputs
    for section in ("base", "ingest", "train", "promote", "notify"):
        assert yaml.safe_load(inputs[section].default) == project.params[section]  # JSON is YAML
    assert inputs["champion_uri"].default == f"{kfp.registry_uri}/champion.json"
    assert inputs["contracts_uri"].default == f"{kfp.inputs_uri}/data/contracts"
    assert "paths" not in inputs and "kfp" not in inputs  # compile-time: the layout and the cluster settings
    manifest, platform = documents(PIPELINE_YAML)
    assert manifest["defaultPipelineRoot"] == kfp.pipeline_root
    assert set(platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]) == {
        executor(name) for name in [*project.stages, "register", "deploy", "notify"]
    }


def test_yaml_dag_is_dvc_yaml_dag(dvc_edges):
    manifest = documents(PIPELINE_YAML)[0]
    assert dvc_edges  # DVC drew something
    assert dag_mismatches(manifest, dvc_edges) == []
    assert [
        t["taskInfo"]["name"] for k, t in body_dag(manifest).items() if not k.startswith(("importer", "condition"))
    ] == sorted(load_project(ROOT).stages)


def test_dag_check_fails_when_they_disagree(dvc_edges):
    manifest = documents(PIPELINE_YAML)[0]
    dropped = copy.deepcopy(manifest)
    del body_dag(dropped)["train"]["inputs"]["artifacts"]["schema"]  # train no longer reads ingest's schema
    assert any("('ingest', 'schema', 'train', 'schema')" in p for p in dag_mismatches(dropped, dvc_edges))
    rewired = copy.deepcopy(manifest)
    body_dag(rewired)["monitor"]["inputs"]["artifacts"]["train"]["taskOutputArtifact"]["producerTask"] = "validate"
    problems = dag_mismatches(rewired, dvc_edges)
    assert "edge ('validate', 'monitor') in the YAML, not in dvc.yaml" in problems


def test_a_new_dep_in_dvc_yaml_changes_the_pipeline_without_code_changes(tmp_path, dvc_edges):
    for name in ("dvc.yaml", "params.yaml"):
        shutil.copy(ROOT / name, tmp_path / name)
    (tmp_path / "deploy" / "kserve").mkdir(parents=True)
    shutil.copy(ROOT / "deploy/kserve/inferenceservice.yaml", tmp_path / "deploy/kserve/inferenceservice.yaml")
    dvc = yaml.safe_load((tmp_path / "dvc.yaml").read_text())
    dvc["stages"]["train"]["deps"].append("${paths.reports}/validation.md")  # train now reads validate's report
    dvc["stages"]["train"]["cmd"] += " --notes ${paths.reports}/validation.md"
    (tmp_path / "dvc.yaml").write_text(yaml.safe_dump(dvc, sort_keys=False))
    manifest = documents(compile_pipeline(tmp_path, tmp_path / "pipeline.yaml"))[0]
    new_edges = dvc_dag_edges(tmp_path / "dvc.yaml", tmp_path / "params.yaml", tmp_path / "dag")
    assert new_edges - dvc_edges == {("validate", "train")}
    assert dag_mismatches(manifest, new_edges, root=tmp_path) == []
    assert "--notes reports/validation.md" in str(manifest["deploymentSpec"]["executors"]["exec-train"])


def test_register_and_deploy_run_only_on_promote():
    manifest = documents(PIPELINE_YAML)[0]
    (condition,) = [t for k, t in body_dag(manifest).items() if k.startswith("condition")]
    assert condition["triggerPolicy"]["condition"] == (
        "inputs.parameter_values['pipelinechannel--promote-Output'] == 'promote'"
    )
    inner = manifest["components"][condition["componentRef"]["name"]]["dag"]["tasks"]
    assert set(inner) == {"register", "deploy"}
    assert inner["deploy"]["inputs"]["artifacts"]["registered"]["taskOutputArtifact"]["producerTask"] == "register"
    assert inner["register"]["inputs"]["artifacts"]["promotion"]["componentInputArtifact"] == (
        "pipelinechannel--promote-promotion"
    )


def test_exit_handler_notifies_on_every_outcome():
    manifest = documents(PIPELINE_YAML)[0]
    notify = manifest["root"]["dag"]["tasks"]["notify"]
    assert notify["triggerPolicy"]["strategy"] == "ALL_UPSTREAM_TASKS_COMPLETED"
    assert notify["inputs"]["parameters"]["status"]["taskFinalStatus"]["producerTask"].startswith("exit-handler")
    assert notify["inputs"]["parameters"]["notify_params"]["componentInputParameter"] == "notify"


def test_task_settings_come_from_the_kfp_section():
    manifest, platform = documents(PIPELINE_YAML)
    _, kfp = load(ROOT)
    executors = manifest["deploymentSpec"]["executors"]
    k8s = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    tasks = {**body_dag(manifest), **manifest["root"]["dag"]["tasks"]}
    for cond in [t for k, t in body_dag(manifest).items() if k.startswith("condition")]:
        tasks |= manifest["components"][cond["componentRef"]["name"]]["dag"]["tasks"]

    def expected(key: str, task: str) -> Any:
        return getattr(kfp, key).get(task, getattr(kfp, key)["default"])

    for name in [*load_project(ROOT).stages, "register", "deploy", "notify"]:
        container = executors[executor(name)]["container"]
        assert container["image"] == kfp.image
        assert container["resources"]["resourceCpuLimit"] == expected("cpu_limit", name)
        assert container["resources"]["resourceMemoryLimit"] == expected("memory_limit", name)
        assert container["command"][-1].count("pip install") == 0  # install_kfp_package=False: the image has kfp
        env = {e["name"]: e["value"] for e in container["env"]}
        assert env == {**kfp.env, "AWS_ENDPOINT_URL": kfp.s3_endpoint_url}
        assert k8s[executor(name)]["activeDeadlineSeconds"] == str(expected("timeout_seconds", name))
        (secret,) = k8s[executor(name)]["secretAsEnv"]
        assert secret["secretName"] == kfp.s3_secret
        assert {m["envVar"] for m in secret["keyToEnv"]} == {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}
        task = tasks[task_name(name)]
        assert task.get("cachingOptions", {}).get("enableCache", False) is expected("caching", name)
        assert task.get("retryPolicy", {}).get("maxRetryCount", 0) == expected("retries", name)


def test_no_credentials_in_the_yaml():
    text = PIPELINE_YAML.read_text()
    assert "AWS_ACCESS_KEY_ID" in text  # named as the secret's keys ...
    for line in text.splitlines():  # ... never given a value
        assert not line.strip().startswith(("value: AKIA", "AWS_SECRET_ACCESS_KEY=", "AWS_ACCESS_KEY_ID="))
    for executor in documents(PIPELINE_YAML)[0]["deploymentSpec"]["executors"].values():
        env = {e["name"] for e in executor.get("container", {}).get("env", [])}
        assert not env & {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}
