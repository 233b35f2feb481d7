"""The GTO registry: `make release` registers and assigns prod only on a promote; "the prod model" resolves to
a version, its tag and commit, and materializes byte for byte (here from the local DVC cache; from S3 in
test_s3_remote.py)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import dvc.api
import pytest
from tests.conftest import git_commit, run, set_params

from lifecycle import registry
from lifecycle.io import sha256_file

pytestmark = pytest.mark.slow


def tags(repo: Path) -> list[str]:
    return run(["git", "tag", "--list"], repo).stdout.split()


def configure_git(repo: Path) -> None:
    run(["git", "config", "user.name", "t"], repo)
    run(["git", "config", "user.email", "t@example.com"], repo)


def registry_cli(repo: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return run([sys.executable, "-m", "lifecycle.registry", *args], repo, check=check)


@pytest.fixture(scope="module")
def released(built_repo: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The built repo, committed, released (`python -m lifecycle.registry release`, what `make release` runs),
    then the champion file committed after `dvc repro promote`, as the release workflow does."""
    repo = tmp_path_factory.mktemp("registry") / "repo"
    shutil.copytree(built_repo, repo, symlinks=True)
    configure_git(repo)
    git_commit(repo, "pipeline outputs")
    proc = registry_cli(repo, "release")
    assert json.loads(proc.stdout)["action"] == "released", proc.stderr
    run(["dvc", "repro", "promote"], repo)
    git_commit(repo, "release model@v1.0.0")
    return repo


def test_release_registers_a_version_and_assigns_prod(released: Path) -> None:
    assert tags(released) == ["model#prod#1", "model@v1.0.0"]
    tagged = run(["git", "rev-list", "-n", "1", "model@v1.0.0"], released).stdout.strip()
    assert tagged == run(["git", "rev-parse", "HEAD~1"], released).stdout.strip()  # the commit that built it
    champion = json.loads((released / "models/champion.json").read_text())
    meta = json.loads((released / "models/model.json").read_text())
    assert champion["version"] == "v1.0.0"
    assert champion["model_sha256"] == meta["model"]["sha256"]
    assert champion["metrics"] == json.loads((released / "metrics/evaluate/metrics.json").read_text())
    shown = run(["gto", "show", "model", "--json"], released).stdout
    assert "v1.0.0" in shown and "prod" in shown


def test_promote_after_release_compares_with_the_champion(released: Path) -> None:
    decision = json.loads((released / "models/promotion.json").read_text())
    assert decision["champion"]["version"] == "v1.0.0"
    assert decision["decision"] == "promote"
    assert "is the champion v1.0.0 itself" in decision["criteria"][-1]["message"]
    assert "compared with champion v1.0.0" in (released / "reports/model_card.md").read_text()


def test_release_again_changes_nothing(released: Path) -> None:
    before = tags(released)
    assert registry.release(released)["action"] == "unchanged"
    assert tags(released) == before


def test_the_server_serves_the_registrys_prod_model_with_its_onnx_graph(released: Path, tmp_path: Path) -> None:
    """SERVE_MODEL_SOURCE=registry end to end: prod resolved by tag, files materialized, ONNX fast path on."""
    import pandas as pd
    from fastapi.testclient import TestClient

    from lifecycle.schema import read_schema
    from lifecycle.serve.app import create_app
    from lifecycle.serve.settings import Settings

    settings = Settings(
        model_source="registry", registry_repo=released, registry_dest=tmp_path / "prod", prediction_log_dir=None
    )
    schema = read_schema(released / "data/interim/schema.json")
    row = pd.read_parquet(released / "data/processed/test.parquet").iloc[[0]][schema.features]
    record = json.loads(row.to_json(orient="records"))[0]
    with TestClient(create_app(settings)) as client:
        champion = client.get("/model").json()["champion"]
        assert (champion["version"], champion["engine"]) == ("v1.0.0", "onnx")
        r = client.post("/predict", json={"records": [record]})
        assert r.status_code == 200, r.text
        assert r.json()["model"]["version"] == "v1.0.0"
    assert (tmp_path / "prod/model.onnx").read_bytes() == (released / "models/model.onnx").read_bytes()


def test_resolve_prod_and_materialize_the_exact_bytes(released: Path, tmp_path: Path) -> None:
    prod = registry.resolve_prod(repo=released)
    assert (prod.artifact, prod.version, prod.stage, prod.tag, prod.stage_tag) == (
        "model", "v1.0.0", "prod", "model@v1.0.0", "model#prod#1",
    )  # fmt: skip
    files = prod.materialize(tmp_path / "prod")
    assert files.model.read_bytes() == (released / "models/model.joblib").read_bytes()
    assert json.loads(files.meta.read_text())["model"]["sha256"] == sha256_file(files.model)
    # the ONNX graph comes with it (what the server's fast path needs), checked against model.json
    assert files.onnx is not None and files.onnx.read_bytes() == (released / "models/model.onnx").read_bytes()
    assert json.loads(files.meta.read_text())["onnx"]["sha256"] == sha256_file(files.onnx)
    _, files = registry.fetch("prod", released, dest=tmp_path / "seam")  # what the server and score_prod call
    model, meta = files.model, files.meta
    assert sha256_file(model) == sha256_file(files.model) and meta.name == "model.json"
    shown = json.loads(registry_cli(released, "show").stdout)
    assert shown["commit"] == prod.commit
    # DVC reads the same tags through dvc.yaml's artifacts section
    assert dvc.api.artifacts_show("model", stage="prod", repo=str(released)) == {
        "rev": prod.commit,
        "path": "models/model.joblib",
    }


def test_rejected_candidate_is_not_released(released: Path, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    shutil.copytree(released, repo, symlinks=True)
    set_params(repo, {"promote": {"classification": {"min": {"accuracy": 0.999}}}})
    run(["dvc", "repro", "promote"], repo)
    git_commit(repo, "stricter gate")
    champion_before = (repo / "models/champion.json").read_bytes()
    proc = registry_cli(repo, "release")
    assert json.loads(proc.stdout)["action"] == "rejected"
    assert "not released: the promote stage rejected the candidate (accuracy" in proc.stderr
    assert tags(repo) == ["model#prod#1", "model@v1.0.0"]
    assert (repo / "models/champion.json").read_bytes() == champion_before


def test_release_refuses_uncommitted_changes(released: Path, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    shutil.copytree(released, repo, symlinks=True)
    (repo / "models/champion.json").write_text('{"version": null}\n')
    proc = registry_cli(repo, "release", check=False)
    assert proc.returncode == 1
    assert "uncommitted changes in dvc.yaml, dvc.lock, params.yaml, models/champion.json" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_no_prod_version_is_a_clear_error(built_repo: Path) -> None:
    with pytest.raises(registry.RegistryError, match="no version of 'model' is in stage 'prod'"):
        registry.resolve_prod(repo=built_repo)
