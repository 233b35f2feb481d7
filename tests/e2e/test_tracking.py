"""Issue 13 items 9, 10, 11 and 13 under real DVC, in scratch git repositories: a source DVC does not track is
refused and an edited one reruns ingest; an unknown params section fails `dvc exp run`; a batch an experiment cannot
see stops it with the fix, and once `dvc add`ed it is scored; a failing score or monitor keeps its last good
outputs; feedback labels of a class the model never saw are reported."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
from tests.conftest import ROOT, git_commit, run, set_params

from lifecycle.data import telemetry

pytestmark = pytest.mark.slow
WINE = ROOT / "data/external/winequality-red.csv"
WINE_PARAMS = {"read_options": {"sep": ";"}, "target": "quality"}


@pytest.fixture
def built(built_repo: Path, tmp_path: Path) -> Path:
    """A private, committed copy of the built repository (git history, DVC cache and outputs included)."""
    dest = tmp_path / "repo"
    shutil.copytree(built_repo, dest, symlinks=True, ignore=shutil.ignore_patterns("tmp"))
    git_commit(dest, "the built pipeline")
    return dest


def output(proc) -> str:
    return proc.stdout + proc.stderr


def test_a_source_outside_external_is_refused_and_editing_one_inside_reruns_ingest(repo_factory) -> None:
    repo = repo_factory({"ingest": WINE_PARAMS})
    shutil.copy(WINE, repo / "data" / "mine.csv")
    set_params(repo, {"ingest": {"source": "data/mine.csv"}})
    refused = run(["dvc", "repro", "ingest"], repo, check=False)
    assert refused.returncode != 0
    assert "ingest.source data/mine.csv: outside data/external/, the folder the ingest stage depends on" in output(
        refused
    )
    assert "`cp data/mine.csv data/external/`" in output(refused)
    assert not (repo / "data/raw/dataset.parquet").exists()

    shutil.move(repo / "data" / "mine.csv", repo / "data" / "external" / "mine.csv")
    set_params(repo, {"ingest": {"source": "data/external/mine.csv"}})
    git_commit(repo, "my data, tracked")
    first = run(["dvc", "repro", "ingest"], repo)
    assert "Running stage 'ingest'" in first.stdout
    assert "Data and pipelines are up to date" in run(["dvc", "repro", "ingest"], repo).stdout
    with (repo / "data" / "external" / "mine.csv").open("a") as fh:  # one more labelled row
        fh.write("7.4;0.7;0;1.9;0.076;11;34;0.9978;3.51;0.56;9.4;5\n")
    again = run(["dvc", "repro", "ingest"], repo)
    assert "Running stage 'ingest'" in again.stdout  # the edit is seen: the model cannot go stale
    rows = pd.read_parquet(repo / "data/raw/dataset.parquet")
    assert len(rows) == len(pd.read_csv(WINE, sep=";")) + 1


def test_an_unknown_params_section_fails_the_experiment_and_records_none(built: Path) -> None:
    assert "Data and pipelines are up to date" in run(["dvc", "status"], built).stdout
    proc = run(["dvc", "exp", "run", "-S", "+trian.model=ridge"], built, check=False)  # up to date: nothing else reruns
    assert proc.returncode != 0
    assert "Running stage 'check_params'" in proc.stdout
    assert "trian: unknown key; did you mean 'train'?" in output(proc)
    assert run(["dvc", "exp", "list", "--name-only"], built).stdout.strip() == ""
    run(["git", "checkout", "--", "params.yaml"], built)
    ok = run(["dvc", "exp", "run", "-n", "fewer-demo-rows", "-S", "simulate.rows=500", "simulate"], built)
    assert "Running stage 'simulate'" in ok.stdout
    assert "fewer-demo-rows" in run(["dvc", "exp", "list", "--name-only"], built).stdout


def test_a_batch_an_experiment_cannot_see_stops_it_until_dvc_add(built: Path) -> None:
    batch = telemetry.generate(400, "v2", 21).drop(columns=[telemetry.TARGET])
    batch.to_parquet(built / "data/incoming/2026-06.parquet", index=False)
    here = run(["dvc", "repro", "score"], built)  # the workspace scores it, and says experiments will not
    assert "data/incoming/2026-06.parquet is not tracked by git or DVC" in output(here)
    assert "run `dvc add data/incoming/2026-06.parquet`" in output(here)
    scored_here = json.loads((built / "metrics/score.json").read_text())
    assert "2026-06.parquet" in json.dumps(json.loads((built / "reports/score.json").read_text())["files"])

    hidden = run(["dvc", "exp", "run", "--temp", "-n", "hidden", "score"], built, check=False)
    assert hidden.returncode != 0
    assert "data/incoming/2026-06.parquet exist(s) in your workspace" in output(hidden)
    assert "`dvc add data/incoming/2026-06.parquet`" in output(hidden)

    run(["dvc", "add", "data/incoming/2026-06.parquet"], built)  # autostage: the .dvc file is staged
    seen = run(["dvc", "exp", "run", "--temp", "-n", "seen", "score"], built)
    assert "Running stage 'score'" in seen.stdout
    shown = json.loads(run(["dvc", "exp", "show", "--json"], built).stdout)
    experiments = [rev for row in shown for exp in row.get("experiments") or [] for rev in exp.get("revs", [])]
    metrics = next(r for r in experiments if r.get("name") == "seen")["data"]["metrics"]
    assert metrics["metrics/score.json"]["data"]["rows_read"] == scored_here["rows_read"]


def test_failing_score_and_monitor_keep_their_last_good_outputs_and_unseen_labels_are_reported(built: Path) -> None:
    kept = {name: (built / name).read_bytes() for name in (
        "metrics/score.json", "reports/score.json", "data/scored/predictions.parquet", "metrics/monitor.json",
        "reports/drift.json", "reports/drift.html")}  # fmt: skip

    (built / "data/incoming/broken.parquet").write_bytes(b"PAR1 not parquet")
    failed = run(["dvc", "repro", "score"], built, check=False)
    assert failed.returncode != 0
    assert "broken.parquet: cannot be read as PARQUET" in output(failed)
    (built / "data/incoming/broken.parquet").unlink()

    (built / "data/feedback/labels.csv").write_text("reading_id,label\nv2-00000001,none\n")  # no `fault` column
    failed = run(["dvc", "repro", "monitor"], built, check=False)
    assert failed.returncode != 0
    assert "labels.csv: feedback file lacks column(s) ['fault']" in output(failed)
    assert {name: (built / name).read_bytes() for name in kept} == kept  # DVC did not delete them (persist)

    scored = pd.read_parquet(built / "data/scored/predictions.parquet", columns=["reading_id"])
    labels = pd.DataFrame({"reading_id": scored["reading_id"].head(60), "fault": ["thermal_runaway"] * 60})
    labels.to_csv(built / "data/feedback/labels.csv", index=False)
    proc = run(["dvc", "repro", "monitor"], built)
    assert "Running stage 'monitor'" in proc.stdout
    assert json.loads((built / "metrics/monitor.json").read_text())["retrain"] is True
    result = json.loads((built / "reports/drift.json").read_text())
    assert result["feedback"]["unseen_labels"] == {"thermal_runaway": 60}
    assert any(
        "60 feedback label(s) of class(es) the model never saw: thermal_runaway (60)" in r for r in result["reasons"]
    )
    assert result["feedback"]["metrics"]  # the demo batch's own labels are still scored
