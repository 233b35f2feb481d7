"""The retraining loop, end to end in a scratch git + DVC repository:

v1 pipeline with the default v2 batch in data/incoming -> the v1 model is released as the champion -> monitor says
retrain -> ``dvc exp run -S ingest.data_version=[v1,v2]`` retrains on the combined fleets -> the promotion gate
compares the retrained model with that champion.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml
from tests.conftest import git_commit, run

from lifecycle.data import telemetry as tel

pytestmark = pytest.mark.slow


@pytest.fixture
def repo(built_repo: Path, tmp_path: Path) -> Path:
    """A private copy of the built repository (git history, DVC cache and outputs included) whose v1 model is
    released as the champion (`python -m lifecycle.registry release`, then `dvc repro promote`, as `make release`
    and the release workflow do)."""
    dest = tmp_path / "repo"
    shutil.copytree(built_repo, dest, symlinks=True)
    for key, value in (("user.name", "t"), ("user.email", "t@example.com")):
        run(["git", "config", key, value], dest)
    git_commit(dest, "pipeline outputs")
    released = json.loads(run([sys.executable, "-m", "lifecycle.registry", "release"], dest).stdout)
    assert released["action"] == "released", released
    run(["dvc", "repro", "promote"], dest)
    git_commit(dest, "release model@v1.0.0")
    return dest


def test_drift_triggers_retraining_and_the_gate_decides(repo: Path) -> None:
    # 1. the pipeline scored the committed v2 batch against the v1 model and asked for retraining
    monitor = json.loads((repo / "reports" / "drift.json").read_text())
    assert json.loads((repo / "metrics" / "monitor.json").read_text())["retrain"] is True
    assert monitor["retrain"] is True
    assert set(monitor["drifted_features"]) == set(tel.DRIFTED_FEATURES)
    assert (repo / "reports" / "drift.html").stat().st_size > 10_000
    scored = pd.read_parquet(repo / "data" / "scored" / "predictions.parquet")
    assert scored["reading_id"].str.startswith("v2-").all()
    version_v1 = scored["model_version"].iloc[0]
    champion = json.loads((repo / "models" / "champion.json").read_text())
    meta_v1 = json.loads((repo / "models" / "model.json").read_text())
    assert (champion["version"], champion["model_sha256"]) == ("v1.0.0", meta_v1["model"]["sha256"])
    assert champion["metrics"] == json.loads((repo / "metrics" / "evaluate" / "metrics.json").read_text())
    assert run(["dvc", "status"], repo).stdout.strip() == "Data and pipelines are up to date."

    # 2. retrain on the combined fleets as an experiment
    run(["dvc", "exp", "run", "-S", "ingest.data_version=[v1,v2]", "-n", "retrain-v1-v2"], repo)
    params = yaml.safe_load((repo / "params.yaml").read_text())
    assert params["ingest"]["data_version"] == ["v1", "v2"]
    train = pd.read_parquet(repo / "data" / "processed" / "train.parquet")
    assert set(train["reading_id"].str[:2]) == {"v1", "v2"}

    # the new model scored the same batch; against the wider reference fewer features drift
    rescored = pd.read_parquet(repo / "data" / "scored" / "predictions.parquet")
    assert rescored["model_version"].iloc[0] != version_v1
    after = json.loads((repo / "reports" / "drift.json").read_text())
    assert after["n_drifted"] < monitor["n_drifted"]
    assert after["prediction"]["psi"] < monitor["prediction"]["psi"]

    shown = json.loads(run(["dvc", "exp", "show", "--json"], repo).stdout)
    names = [rev.get("name") for row in shown for exp in row.get("experiments") or [] for rev in exp.get("revs", [])]
    assert "retrain-v1-v2" in names

    # 3. the promotion gate compared the retrained model with the released v1 champion
    lock = yaml.safe_load((repo / "dvc.lock").read_text())["stages"]
    assert "promote" in lock, "the experiment did not run the promotion gate"
    decision = json.loads((repo / params["paths"]["promotion"]).read_text())
    candidate = json.loads((repo / "metrics" / "evaluate" / "metrics.json").read_text())
    assert decision["champion"]["version"] == "v1.0.0"
    assert decision["champion"]["model_sha256"] == champion["model_sha256"] != decision["candidate"]["model_sha256"]
    improvements = [c for c in decision["criteria"] if c["kind"] == "improvement"]
    assert [c["metric"] for c in improvements] == sorted(params["promote"]["classification"]["min_improvement"])
    for criterion in improvements:
        metric = criterion["metric"]
        assert criterion["observed"] == candidate[metric]  # the retrained model's value, as evaluate computed it
        assert criterion["champion"] == champion["metrics"][metric]  # the v1 model's, as the release recorded it
        assert criterion["threshold"] == params["promote"]["classification"]["min_improvement"][metric]
        gain = criterion["observed"] - criterion["champion"]  # every min_improvement metric here is a score
        assert criterion["passed"] is (gain >= criterion["threshold"]), criterion
        assert f"champion v1.0.0 ({criterion['champion']:.6g})" in criterion["message"], criterion["message"]
    expected = "promote" if all(c["passed"] for c in decision["criteria"]) else "reject"
    assert decision["decision"] == expected
    assert (decision["reasons"] == []) is (expected == "promote")
    print(f"promotion gate on the retrained model: {decision['decision']} {improvements}")
