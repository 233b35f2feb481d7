"""The GTO registry: `make release` registers and assigns prod only on a promote; "the prod model" resolves to
a version, its tag and commit, and materializes byte for byte (here from the local DVC cache; from S3 in
test_s3_remote.py), every file verified against the dvc.lock of the version's commit: planted pickles in the DVC
cache or in the registry's cache folder are refused or replaced, never loaded."""

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
from lifecycle.artifact import load_model
from lifecycle.io import sha256_file

pytestmark = pytest.mark.slow


class Planted:
    """A pickle that runs code when it is loaded: it writes ``marker`` (what an attacker's model.joblib does)."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return exec, (f"open({self.marker!r}, 'w').write('planted code ran')",)


def plant(folder: Path, real_meta: Path, marker: Path) -> dict[str, bytes]:
    """Write an attacker's pair into ``folder``: a pickle that runs code and a model.json (the real one) whose
    ``model.sha256`` matches it, so the model.json check alone passes. Returns {file name: bytes}."""
    import joblib

    folder.mkdir(parents=True, exist_ok=True)
    joblib.dump(Planted(marker), folder / "model.joblib")
    meta = json.loads(real_meta.read_text())
    meta["model"] |= {"sha256": sha256_file(folder / "model.joblib"), "bytes": (folder / "model.joblib").stat().st_size}
    (folder / "model.json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    (folder / "model.onnx").write_bytes(b"not the registered graph")
    return {name: (folder / name).read_bytes() for name in ("model.joblib", "model.json", "model.onnx")}


def test_the_planted_pickle_runs_code_when_loaded(tmp_path: Path) -> None:
    """The payload of the tests below is live: loading it (without the checks) runs its code."""
    import joblib

    marker = tmp_path / "ran"
    (tmp_path / "meta.json").write_text('{"model": {}}')
    plant(tmp_path / "planted", tmp_path / "meta.json", marker)
    joblib.load(tmp_path / "planted/model.joblib")
    assert marker.read_text() == "planted code ran"


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


@pytest.mark.parametrize("tampered", [("model.joblib", "model.json"), ("model.joblib",), ("model.onnx",)])
def test_tampered_objects_in_the_dvc_cache_are_refused(released: Path, tmp_path: Path, tampered) -> None:
    """The local DVC cache holds other bytes than the version's dvc.lock records (the attack of issue 15: the
    pickle *and* a model.json that matches it): the fetch refuses, names the check, and loads nothing."""
    repo = tmp_path / "repo"
    shutil.copytree(released, repo, symlinks=True)
    marker = tmp_path / "ran"
    planted = plant(tmp_path / "planted", repo / "models/model.json", marker)
    recorded = registry.recorded_md5s(repo, registry.resolve_prod(repo=repo).commit)
    for name in tampered:
        md5 = recorded[f"models/{name}"]
        obj = repo / ".dvc/cache/files/md5" / md5[:2] / md5[2:]
        obj.chmod(0o644)
        obj.write_bytes(planted[name])
    out = tmp_path / "out"
    with pytest.raises(registry.ProvenanceError, match=rf"models/{tampered[-1]} as fetched from DVC .* has md5 "
                       r"[0-9a-f]{32}, but dvc\.lock at the version's commit [0-9a-f]{12} records [0-9a-f]{32}\. "
                       r"Failed check: md5 against dvc\.lock \(git\)"):  # fmt: skip
        registry.fetch("prod", repo, dest=out)
    assert not marker.exists()
    assert tampered[-1] not in [p.name for p in out.iterdir()]  # the unverified file never landed


def test_a_planted_cache_folder_is_refused_then_its_files_re_verified(
    released: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The default cache folder ($XDG_CACHE_HOME/lifecycle-registry/<commit>) planted with a pickle that runs code:
    open to others it is refused; private but with other content, every file is checked against dvc.lock and
    replaced by the registered bytes. The planted code never runs."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    commit = registry.resolve_prod(repo=released).commit
    root = tmp_path / "cache/lifecycle-registry"
    root.mkdir(parents=True, mode=0o700)
    marker = tmp_path / "ran"
    plant(root / commit[:12], released / "models/model.json", marker)
    (root / commit[:12]).chmod(0o777)
    with pytest.raises(registry.RegistryError, match=rf"refusing .*/{commit[:12]} as the folder .*has mode 0777"):
        registry.fetch("prod", released)
    (root / commit[:12]).chmod(0o700)
    _, files = registry.fetch("prod", released)
    assert files.model.parent == root / commit[:12]
    for name in ("model.joblib", "model.json", "model.onnx"):
        assert (root / commit[:12] / name).read_bytes() == (released / "models" / name).read_bytes()
    load_model(files.model, files.meta)
    assert not marker.exists()
    # every fetch checks again: a file changed in the cache after a fetch is replaced on the next one
    files.model.write_bytes(b"changed after the fetch")
    _, files = registry.fetch("prod", released)
    assert files.model.read_bytes() == (released / "models/model.joblib").read_bytes()
