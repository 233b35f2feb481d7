"""dvc.yaml + params.yaml -> stages, artifacts and edges: the same DAG `dvc dag` draws; bad entries named."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml
from tests.kfp.helpers import ROOT, dvc_dag_edges

from lifecycle.kfp.spec import KfpSpecError, artifact_name, build_project, command_argv, load_project, resolve

DVC = yaml.safe_load((ROOT / "dvc.yaml").read_text())
PARAMS = yaml.safe_load((ROOT / "params.yaml").read_text())


def with_stage(name: str, body: dict[str, Any]) -> dict[str, Any]:
    dvc = copy.deepcopy(DVC)
    dvc["stages"][name] = body
    return dvc


def test_edges_are_dvcs(tmp_path):
    project = load_project(ROOT)
    assert project.edges() == dvc_dag_edges(ROOT / "dvc.yaml", ROOT / "params.yaml", tmp_path)
    assert list(project.stages)[:4] == ["check_params", "ingest", "validate", "split"]  # a topological order


def test_artifacts_are_typed_and_code_deps_are_left_to_the_image():
    project = load_project(ROOT)
    kinds = {a.path: a.kind for a in project.artifacts.values()}
    assert kinds["data/processed/train.parquet"] == "Dataset"
    assert kinds["models/model.joblib"] == "Model"
    assert kinds["metrics/evaluate/metrics.json"] == "Metrics"
    assert kinds["reports/drift.html"] == "HTML"
    assert kinds["reports/model_card.md"] == "Markdown"
    assert not any(path.startswith("src/") for path in kinds)
    external = {a.path for a in project.external_inputs()}
    assert external == {
        "data/external",
        "data/contracts",
        "data/incoming",
        "data/feedback",
        "data/labelled",
        "models/champion.json",
    }
    assert project.stages["train"].sections == ("base", "train")  # base.seed -> the base section


@pytest.mark.parametrize(
    ("template", "name"),
    [
        ("${paths.raw}", "raw"),
        ("${paths.metrics}/validate.json", "metrics_validate_json"),
        ("${paths.reports}/model_card.md", "reports_model_card_md"),
        ("data/3rd-party/x.csv", "data_3rd_party_x_csv"),
        ("1.csv", "a_1_csv"),
    ],
)
def test_artifact_names(template, name):
    assert artifact_name(template) == name


def test_resolve_names_unknown_keys():
    assert resolve("--out ${paths.model}", PARAMS, "here") == "--out models/model.joblib"
    with pytest.raises(KfpSpecError, match=r"stages.train.cmd: \$\{paths.modle\} is not a key of params.yaml"):
        resolve("--out ${paths.modle}", PARAMS, "stages.train.cmd")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"foreach": [1, 2], "do": {"cmd": "echo"}}, "'foreach' stages"),
        ({"cmd": "python -m x", "deps": ["metrics"]}, "contains outputs of other stages"),
        ({"cmd": "python -m x", "params": [{"other.yaml": ["a"]}]}, "not other files"),
        ({"cmd": "python -m x", "params": ["nosuch.key"]}, "params.yaml has no section 'nosuch'"),
        ({"cmd": "python -m x", "outs": ["${paths.model}"]}, "written by both train and extra"),
        ({"cmd": "python -m x", "deps": ["${paths.raw}"], "outs": ["${paths.raw}/x"]}, None),
    ],
)
def test_unsupported_or_wrong_stages_are_named(body, message):
    if message is None:  # an output inside another stage's output folder is simply another artifact
        build_project(with_stage("extra", body), PARAMS)
        return
    with pytest.raises(KfpSpecError, match=message):
        build_project(with_stage("extra", body), PARAMS)


def test_a_cycle_is_refused():
    dvc = copy.deepcopy(DVC)
    dvc["stages"]["ingest"]["deps"].append("${paths.promotion}")
    with pytest.raises(KfpSpecError, match="form a cycle"):
        build_project(dvc, PARAMS)


def test_command_argv_uses_the_running_python_and_refuses_shell_syntax():
    assert command_argv("python -m lifecycle.stages.train --data 'a b'", "/venv/python") == [
        "/venv/python",
        "-m",
        "lifecycle.stages.train",
        "--data",
        "a b",
    ]
    with pytest.raises(KfpSpecError, match="shell operators"):
        command_argv("python -m x && rm -rf data", "/venv/python")
