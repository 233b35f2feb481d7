"""deploy/dask/daskcluster.yaml: valid against the Dask operator's DaskCluster CRD schema, offline; typos rejected."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from lifecycle.config import load_params

ROOT = Path(__file__).resolve().parents[1]
MANIFEST = ROOT / "deploy" / "dask" / "daskcluster.yaml"
SCHEMA = ROOT / "deploy" / "schemas" / "dask-daskcluster-v1.strict.schema.json"


def errors(doc: dict[str, Any]) -> list[str]:
    """Schema errors of the resource (its ``spec``/``status``; the object's own keys are Kubernetes')."""
    body = {k: v for k, v in doc.items() if k not in ("apiVersion", "kind", "metadata")}
    validator = jsonschema.Draft7Validator(json.loads(SCHEMA.read_text()))
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(body)]


def manifest() -> dict[str, Any]:
    return yaml.safe_load(MANIFEST.read_text())


def test_daskcluster_is_valid_and_serves_the_documented_address(tmp_path: Path) -> None:
    doc = manifest()
    assert errors(doc) == []
    assert (doc["apiVersion"], doc["kind"]) == ("kubernetes.dask.org/v1", "DaskCluster")
    service = doc["spec"]["scheduler"]["service"]
    assert {p["port"] for p in service["ports"]} == {8786, 8787}
    assert service["selector"]["dask.org/cluster-name"] == doc["metadata"]["name"]
    address = f"tcp://{doc['metadata']['name']}-scheduler.ml.svc:8786"
    assert f"dask.scheduler: {address}" in MANIFEST.read_text()  # the header's instruction
    assert f"  scheduler: {address}" in (ROOT / "docs" / "scale.md").read_text()
    # the address the manifest documents passes params.yaml's check of dask.scheduler
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw["dask"]["scheduler"] = address
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw))
    assert load_params(tmp_path / "params.yaml").dask.scheduler == address


def test_workers_and_scheduler_run_the_project_image() -> None:
    doc = manifest()
    images = {c["image"] for part in ("worker", "scheduler") for c in doc["spec"][part]["spec"]["containers"]}
    assert len(images) == 1  # one image: the tasks and the pickled model need the client's package versions


@pytest.mark.parametrize(
    ("path", "key", "value"),
    [
        (("spec",), "workers", {"replicas": 2}),  # not "worker"
        (("spec", "worker"), "replica", 2),
        (("spec", "scheduler", "spec", "containers", 0), "imagee", "x"),
    ],
)
def test_a_typo_is_rejected(path: tuple[Any, ...], key: str, value: Any) -> None:
    doc = copy.deepcopy(manifest())
    target = doc
    for part in path:
        target = target[part]
    target[key] = value
    assert any(f"'{key}' was unexpected" in e for e in errors(doc)), errors(doc)


def test_a_wrong_type_or_a_missing_part_is_rejected() -> None:
    doc = manifest()
    doc["spec"]["worker"]["replicas"] = "four"
    assert any("replicas" in e for e in errors(doc))
    doc = manifest()
    del doc["spec"]["scheduler"]
    assert any("'scheduler' is a required property" in e for e in errors(doc))
