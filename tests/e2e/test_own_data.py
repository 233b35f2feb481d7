"""Issue 13 as a new user meets it: files nobody here prepared for, trained with `dvc exp run -S ...` alone in a
scratch git repository (a copy of the project, committed), the pipeline's own stages and DVC doing the work.

tests/data/test_own_files.py runs every kind of file in-process; here a few run as real experiments, each up to
`export` (ONNX) or `evaluate`: promotion thresholds are per task (params.yaml's promote section), outside issue 13's
items 1-7.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
from pathlib import Path

import dvc.api
import pytest
from tests.conftest import git_commit, run

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
OWN = ROOT / "tests/data/own"
ENV = {"OMP_NUM_THREADS": "1"}
WINE = ["-S", "ingest.source=data/external/winequality-red.csv", "-S", "+ingest.read_options.sep=';'",
        "-S", "ingest.target=quality"]  # fmt: skip


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.conftest import make_repo

    dest = make_repo(tmp_path_factory.mktemp("own") / "repo", commit=False)
    for name in ("bom_crlf_quoted_headers.csv", "text_timestamps.csv", "decimal_comma.csv"):
        shutil.copy2(OWN / name, dest / "data/external" / name)
    git_commit(dest, "a user's files in data/external")
    return dest


def exp_run(repo: Path, name: str, *sets: str, target: str = "evaluate", check: bool = True):
    return run(["dvc", "exp", "run", "--temp", "-n", name, *sets, target], repo, env=ENV, check=check)


def experiments(repo: Path) -> dict[str, dict[str, str]]:
    out = run(["dvc", "exp", "show", "--csv"], repo, env=ENV).stdout
    return {r["Experiment"]: r for r in csv.DictReader(io.StringIO(out)) if r["Experiment"]}


def test_header_names_as_written_and_dates_train_as_experiments(repo: Path) -> None:
    exp_run(repo, "titanic-like", "-S", "ingest.source=data/external/bom_crlf_quoted_headers.csv",
            "-S", "ingest.target=Survived", "-S", "ingest.id_columns=['Passenger Id']")  # fmt: skip
    exp_run(repo, "orders", "-S", "ingest.source=data/external/text_timestamps.csv", "-S", "ingest.target=late",
            "-S", "split.time_column=order_time", target="export")  # fmt: skip
    shown = experiments(repo)
    assert float(shown["titanic-like"]["accuracy"]) > 0.6, shown["titanic-like"]
    assert float(shown["orders"]["accuracy"]) > 0.6, shown["orders"]
    assert shown["orders"]["split.time_column"] == "order_time"
    ref = next(r for r in run(["git", "for-each-ref", "--format=%(refname)", "refs/exps"], repo).stdout.split()
               if r.endswith("/orders"))  # fmt: skip
    model = json.loads(dvc.api.read("models/model.json", repo=str(repo), rev=ref))
    assert model["onnx"]["usable"], model["onnx"]  # the date features convert exactly
    schema = json.loads(dvc.api.read("data/interim/schema.json", repo=str(repo), rev=ref))
    assert {c["name"]: c["role"] for c in schema["columns"]}["order_time"] == "datetime"


def test_a_locale_number_file_stops_with_the_fix_then_trains(repo: Path) -> None:
    sets = ["-S", "ingest.source=data/external/decimal_comma.csv", "-S", "ingest.target=klasse",
            "-S", "+ingest.read_options.sep=';'"]  # fmt: skip
    proc = exp_run(repo, "decimal-refused", *sets, target="ingest", check=False)
    assert proc.returncode != 0
    errors = [line for line in (proc.stdout + proc.stderr).splitlines() if " ERROR " in line]
    assert errors and "column 'temperatur'" in errors[0] and 'decimal: ","' in errors[0], proc.stderr
    exp_run(repo, "decimal", *sets, "-S", '+ingest.read_options.decimal=","')
    assert float(experiments(repo)["decimal"]["accuracy"]) > 0.6


def test_wine_quality_trains_as_regression_with_set_flags_only(repo: Path) -> None:
    exp_run(repo, "wine-regression", *WINE, "-S", "ingest.task=regression")
    row = experiments(repo)["wine-regression"]
    assert float(row["r2"]) > 0.2, row
