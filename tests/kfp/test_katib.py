"""The Katib Experiment generated from train.search_space (objective: the promotion metric), checked offline
against Katib's published v1beta1 API schema made strict (deploy/kfp/schemas/README.md), its trial Job against
Kubernetes' own schema (kubernetes-validate), and one trial run for real."""

from __future__ import annotations

import copy
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from tests.kfp.helpers import BIN, EXPERIMENT_YAML, ROOT

from lifecycle.kfp.katib import KatibError, experiment, katib_parameters, objective, write_experiment
from lifecycle.kfp.pipeline import load
from lifecycle.kfp.spec import build_project

SCHEMA = ROOT / "deploy" / "kfp" / "schemas" / "katib-experiment-v1beta1.strict.schema.json"


def errors(doc: dict[str, Any]) -> list[str]:
    validator = jsonschema.Draft7Validator(json.loads(SCHEMA.read_text()))
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(doc)]


def committed() -> dict[str, Any]:
    return yaml.safe_load(EXPERIMENT_YAML.read_text())


def test_committed_experiment_is_the_generated_one(tmp_path):
    project, kfp = load(ROOT)
    fresh = write_experiment(project, kfp, tmp_path / "katib-experiment.yaml")
    assert EXPERIMENT_YAML.read_text() == fresh.read_text(), "stale: run `make kfp` and commit it"


def test_experiment_is_valid_against_katib_schema():
    assert errors(committed()) == []


@pytest.mark.parametrize(
    ("path", "change"),
    [
        (("spec", "objective"), {"objectiveMetricNam": "accuracy"}),  # a typo in a field name
        (("spec", "parameters", 0), {"parameterType": "float"}),  # not one of Katib's types
        (("spec", "algorithm"), {"algorithmSettings": "fast"}),  # wrong type
        (("spec",), {"maxTrialCount": "ten"}),
    ],
)
def test_schema_rejects_a_broken_experiment(path, change):
    doc = copy.deepcopy(committed())
    node = doc
    for key in path:
        node = node[key]
    node.update(change)
    assert errors(doc), f"{change} was accepted"


def test_trial_job_is_a_valid_kubernetes_job(tmp_path):
    job = copy.deepcopy(committed()["spec"]["trialTemplate"]["trialSpec"])
    job["metadata"] = {"name": "trial"}  # Katib names the trial's Job
    path = tmp_path / "job.yaml"
    path.write_text(yaml.safe_dump(job))
    proc = subprocess.run(
        [str(BIN / "kubernetes-validate"), "--strict", str(path)], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_objective_is_the_promotion_metric_and_the_template_is_consistent():
    project, kfp = load(ROOT)
    doc = committed()
    spec = doc["spec"]
    task = project.params["ingest"]["task"]
    metric = next(iter(project.params["promote"][task]["min_improvement"]))
    assert spec["objective"] == {"type": "maximize", "objectiveMetricName": metric}
    train = project.params["train"]
    space = train["search_space"][train["model"]]
    assert [p["name"] for p in spec["parameters"]] == list(space)
    assert spec["maxTrialCount"] == train["search_iterations"]  # random search, as train.search: none|random
    assert spec["parallelTrialCount"] == kfp.katib_parallel_trials
    # Katib's own rules: every trial parameter refers to a search parameter and is used in the trial template
    text = json.dumps(spec["trialTemplate"]["trialSpec"])
    used = set(re.findall(r"\$\{trialParameters\.([^}]+)\}", text))
    declared = {p["name"] for p in spec["trialTemplate"]["trialParameters"]}
    assert used == declared
    assert {p["reference"] for p in spec["trialTemplate"]["trialParameters"]} <= {p["name"] for p in spec["parameters"]}
    container = spec["trialTemplate"]["trialSpec"]["spec"]["template"]["spec"]["containers"][0]
    assert container["name"] == spec["trialTemplate"]["primaryContainerName"]
    assert container["image"] == kfp.image
    secrets = [e for e in container["env"] if "valueFrom" in e]
    assert {e["valueFrom"]["secretKeyRef"]["name"] for e in secrets} == {kfp.s3_secret}


def test_objective_direction_and_errors():
    classification = {"min": {"f1_macro": 0.7}, "max": {}, "min_improvement": {}}
    regression = {"min": {}, "max": {"rmse": 0.8}, "min_improvement": {}}
    promote = {"classification": classification, "regression": regression}
    assert objective(promote, "classification") == ("f1_macro", "maximize")  # the task's own promotion metric
    assert objective(promote, "regression") == ("rmse", "minimize")
    with pytest.raises(KatibError, match=r"promote\.regression: no metric"):
        objective({**promote, "regression": {"min": {}, "max": {}, "min_improvement": {}}}, "regression")


def test_search_space_maps_to_katib_parameter_types():
    params = katib_parameters(
        {
            "max_depth": [None, 12, 24],
            "max_features": ["sqrt", 0.5],
            "C": [0.1, 1.0],
            "learning_rate": {"low": 0.01, "high": 0.3, "log": True},
            "min_samples_leaf": {"low": 1, "high": 20},
        },
        "train.search_space.x",
    )
    by_name = {p["name"]: p for p in params}
    assert by_name["max_depth"] == {
        "name": "max_depth",
        "parameterType": "categorical",
        "feasibleSpace": {"list": ["null", "12", "24"]},
    }
    assert by_name["max_features"]["feasibleSpace"]["list"] == ["sqrt", "0.5"]
    assert by_name["C"]["parameterType"] == "discrete"
    assert by_name["learning_rate"]["parameterType"] == "double"
    assert by_name["learning_rate"]["feasibleSpace"] == {"min": "0.01", "max": "0.3", "distribution": "logUniform"}
    assert by_name["min_samples_leaf"]["parameterType"] == "int"
    with pytest.raises(KatibError, match=r"train\.search_space\.x\.gamma"):
        katib_parameters({"gamma": []}, "train.search_space.x")


def test_grid_search_counts_every_combination():
    project, kfp = load(ROOT)
    params = copy.deepcopy(project.params)
    params["train"]["search"] = "grid"
    dvc = yaml.safe_load((ROOT / "dvc.yaml").read_text())
    doc = experiment(build_project(dvc, params), kfp)
    assert doc["spec"]["algorithm"] == {"algorithmName": "grid"}
    assert doc["spec"]["maxTrialCount"] == 27  # 3 x 3 x 3 values in train.search_space.hist_gradient_boosting
    assert errors(doc) == []


@pytest.mark.slow
def test_a_trial_runs_and_prints_its_metric(built_repo):
    project, kfp = load(built_repo)
    inputs = {name: str(built_repo / project.artifacts[name].path) for name in ("train", "schema")}
    doc = experiment(project, kfp, inputs)
    container = doc["spec"]["trialTemplate"]["trialSpec"]["spec"]["template"]["spec"]["containers"][0]
    chosen = {"learning_rate": "0.2", "max_leaf_nodes": "15", "min_samples_leaf": "40"}
    args = [re.sub(r"\$\{trialParameters\.(\w+)\}", lambda m: chosen[m.group(1)], a) for a in container["args"]]
    assert container["command"][:3] == ["python", "-m", "lifecycle.kfp"]
    proc = subprocess.run(
        [sys.executable, "-m", "lifecycle.kfp", *container["command"][3:], *args],
        cwd=Path(built_repo),
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    (line,) = [x for x in proc.stdout.splitlines() if x.startswith("accuracy=")]  # Katib's StdOut collector format
    assert 0.5 < float(line.split("=")[1]) <= 1.0
    assert "search of hist_gradient_boosting: accuracy on 3 folds" in proc.stderr  # cross-validated, not the test split
