"""lifecycle.data.tracking: which input files experiments and clones cannot see, and the stage checks that say so
(issue 13 items 9 and 10). Real git repositories; DVC's files (.dvc, dvc.lock) written as DVC writes them. The same
checks under real `dvc repro` / `dvc exp run` are in tests/e2e/test_tracking.py."""

from __future__ import annotations

import logging
import subprocess
from pathlib import Path

import pytest

from lifecycle.data import tracking
from lifecycle.data.tracking import Invisible, check_inputs, check_source, experiment_workspace, invisible_files
from lifecycle.errors import DataError


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    for name, text in {
        "data/incoming/.gitkeep": "",
        "data/external/wine.csv": "a,b\n1,2\n",
        "data/contracts/wine.yaml": "columns: {}\n",
        "data/feedback/.gitkeep": "",
    }.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    git(root.parent, "init", "-q", str(root))
    git(root, "add", "-A")
    git(root, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "init")
    return root


def write(root: Path, name: str, text: str = "x\n") -> None:
    (root / name).parent.mkdir(parents=True, exist_ok=True)
    (root / name).write_text(text)


def test_committed_and_staged_files_are_visible(repo: Path) -> None:
    write(repo, "data/incoming/staged.csv")
    git(repo, "add", "data/incoming/staged.csv")
    write(repo, "data/external/wine.csv", "a,b\n3,4\n")  # modified, not staged: experiments take the workspace's
    assert invisible_files(["data"], repo) == []


def test_untracked_files_are_listed_with_the_command_that_fixes_each(repo: Path) -> None:
    write(repo, "data/incoming/2026-06.parquet")
    write(repo, "data/incoming/batch.CSV")
    write(repo, "data/feedback/labels.csv")
    write(repo, "data/contracts/mine.yaml")
    write(repo, "data/external/notes.md")
    write(repo, "data/incoming/sub/deep.csv")
    found = invisible_files(["data/incoming", "data/feedback", "data/contracts", "data/external"], repo)
    assert found == [
        Invisible("data/contracts/mine.yaml", "git add data/contracts/mine.yaml"),
        Invisible("data/external/notes.md", "git add data/external/notes.md"),
        Invisible("data/feedback/labels.csv", "dvc add data/feedback/labels.csv"),
        Invisible("data/incoming/2026-06.parquet", "dvc add data/incoming/2026-06.parquet"),
        Invisible("data/incoming/batch.CSV", "dvc add data/incoming/batch.CSV"),
        Invisible("data/incoming/sub/deep.csv", "dvc add data/incoming/sub/deep.csv"),
    ]
    assert str(found[3]) == (
        "data/incoming/2026-06.parquet: not tracked by git or DVC; run `dvc add data/incoming/2026-06.parquet`"
    )


def test_files_dvc_tracks_are_visible_once_their_dvc_file_is_staged(repo: Path) -> None:
    write(repo, "data/incoming/big.parquet")
    write(repo, "data/incoming/big.parquet.dvc", "outs:\n- md5: 0\n  path: big.parquet\n")
    write(repo, "data/feedback/labels/a.csv")  # a folder DVC tracks as one output
    write(repo, "data/feedback/labels.dvc", "outs:\n- md5: 0.dir\n  path: labels\n")
    found = invisible_files(["data"], repo)
    assert found == [  # `dvc add` ran but its .dvc files are not in git: experiments cannot check the data out
        Invisible("data/feedback/labels/a.csv", "git add data/feedback/labels.dvc"),
        Invisible("data/incoming/big.parquet", "git add data/incoming/big.parquet.dvc"),
    ]
    git(repo, "add", "data/incoming/big.parquet.dvc", "data/feedback/labels.dvc")
    assert invisible_files(["data"], repo) == []


def test_stage_outputs_in_dvc_lock_are_visible(repo: Path) -> None:
    write(repo, "data/demo/incoming/telemetry_v2.parquet")
    write(repo, "dvc.lock", "schema: '2.0'\nstages:\n  simulate:\n    outs:\n    - path: data/demo\n      md5: 0.dir\n")
    assert invisible_files(["data"], repo) == []


def test_paths_outside_the_repository_and_outside_git_are_ignored(repo: Path, tmp_path: Path) -> None:
    write(tmp_path, "elsewhere/x.csv")
    assert invisible_files([tmp_path / "elsewhere", "data/nowhere"], repo) == []
    write(tmp_path, "plain/data/x.csv")
    assert invisible_files(["data"], tmp_path / "plain") == []  # not a git work tree: nothing to compare with


def test_experiment_copies_are_recognized_by_where_dvc_makes_them(tmp_path: Path) -> None:
    copy = tmp_path / "ws" / ".dvc" / "tmp" / "exps" / "standalone" / "tmpab12"
    copy.mkdir(parents=True)
    assert experiment_workspace(copy) == (tmp_path / "ws").resolve()
    assert experiment_workspace(tmp_path / "ws") is None


# --------------------------------------------------------------------------------------------- stage checks
@pytest.fixture
def under_dvc(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DVC_STAGE", "score")


def test_an_experiment_lacking_a_workspace_file_stops_naming_it_and_the_fix(repo: Path, under_dvc) -> None:
    write(repo, "data/incoming/2026-06.parquet")
    write(repo, "data/incoming/notes.yaml")
    copy = repo / ".dvc/tmp/exps/standalone/tmp1"
    write(copy, "data/incoming/.gitkeep", "")
    with pytest.raises(DataError) as err:
        check_inputs(["data/incoming"], "batch", cwd=copy)
    message = str(err.value)
    assert message.startswith(
        "batch: data/incoming/2026-06.parquet, data/incoming/notes.yaml exist(s) in your workspace"
    )
    assert "experiments see only files git or DVC track" in message
    assert "`dvc add data/incoming/2026-06.parquet`; `git add data/incoming/notes.yaml`" in message
    write(copy, "data/incoming/2026-06.parquet")
    write(copy, "data/incoming/notes.yaml")
    check_inputs(["data/incoming"], "batch", cwd=copy)  # the experiment sees what the workspace has


def test_the_workspace_warns_about_untracked_inputs(repo: Path, under_dvc, caplog) -> None:
    write(repo, "data/incoming/2026-06.parquet")
    with caplog.at_level(logging.WARNING, logger="lifecycle.data.tracking"):
        check_inputs(["data/incoming"], "batch", cwd=repo)
    assert "batch: data/incoming/2026-06.parquet is not tracked by git or DVC" in caplog.text
    assert "run `dvc add data/incoming/2026-06.parquet`" in caplog.text


def test_outside_dvc_nothing_is_checked(repo: Path, monkeypatch, caplog) -> None:
    monkeypatch.delenv("DVC_STAGE", raising=False)
    write(repo, "data/incoming/2026-06.parquet")
    copy = repo / ".dvc/tmp/exps/standalone/tmp1"
    copy.mkdir(parents=True)
    check_inputs(["data/incoming"], "batch", cwd=copy)
    check_source("/anywhere/x.csv", "data/external", cwd=repo)
    assert caplog.text == ""


@pytest.mark.parametrize(
    "source",
    ["data/mine.csv", "/tmp/elsewhere/mine.csv", "data/external/../mine.csv", "data/externalized/mine.csv"],
)
def test_a_local_source_outside_paths_external_is_refused_with_the_fix(repo: Path, under_dvc, source: str) -> None:
    with pytest.raises(DataError) as err:
        check_source(source, "data/external", cwd=repo)
    message = str(err.value)
    assert message.startswith(f"ingest.source {source}: outside data/external/, the folder the ingest stage depends on")
    assert "DVC would not rerun ingest when the file changes" in message
    assert f"`cp {source} data/external/`" in message
    assert "ingest.source: data/external/mine.csv" in message
    assert "or set paths.external to the folder that holds it" in message


def test_sources_inside_paths_external_the_simulator_and_s3_pass(repo: Path, under_dvc, caplog) -> None:
    check_source("data/external/wine.csv", "data/external", cwd=repo)
    check_source(str(repo / "data/external/wine.csv"), "data/external", cwd=repo)
    check_source("telemetry", "data/external", cwd=repo)
    with caplog.at_level(logging.WARNING, logger="lifecycle.data.tracking"):
        check_source("s3://lake/wine.csv", "data/external", cwd=repo)
    assert "DVC tracks the URI, not the object" in caplog.text
    assert "`dvc import-url s3://lake/wine.csv data/external/`" in caplog.text


def test_an_untracked_source_missing_from_an_experiment_is_named(repo: Path, under_dvc) -> None:
    write(repo, "data/external/mine.csv")
    copy = repo / ".dvc/tmp/exps/standalone/tmp2"
    write(copy, "data/external/wine.csv")
    with pytest.raises(DataError, match=r"ingest\.source: data/external/mine\.csv exist\(s\) in your workspace .*"
                       r"`dvc add data/external/mine\.csv`"):  # fmt: skip
        check_source("data/external/mine.csv", "data/external", cwd=copy)


def test_the_command_line_lists_the_pipelines_invisible_inputs(repo: Path, monkeypatch, capsys) -> None:
    root = Path(__file__).resolve().parents[2]
    (repo / "params.yaml").write_text((root / "params.yaml").read_text())
    git(repo, "add", "params.yaml")
    monkeypatch.chdir(repo)
    assert tracking.main([]) == 0
    assert "is tracked by git or DVC" in capsys.readouterr().out
    write(repo, "data/incoming/2026-06.parquet")
    write(repo, "data/feedback/labels.csv")
    assert tracking.main([]) == 1
    out = capsys.readouterr().out
    assert (
        "data/incoming/2026-06.parquet: not tracked by git or DVC; run `dvc add data/incoming/2026-06.parquet`" in out
    )
    assert (
        "2 file(s) that `dvc exp run --temp/--queue` and clones do not see; fix: dvc add data/feedback/labels.csv"
        in out
    )
    assert tracking.main(["data/contracts"]) == 0
