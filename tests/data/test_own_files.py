"""Issue 13's figure: real-world kinds of files (tests/data/own, written by make_files.py), each trained end to end
by params alone, or stopped by ONE line that names the column and the fix, and then trained with that fix.

The stages run in-process as DVC runs them (``cli.run(main, argv)``: same argv, exit codes and log), ingest ->
validate (no reviewed contract: the checks that need no review) -> split -> train, plus export (ONNX parity) where
a new pipeline step is involved. tests/e2e/test_own_data.py runs a few of them as ``dvc exp run``.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from lifecycle import cli
from lifecycle.artifact import ModelMetadata
from lifecycle.stages import export, ingest, split, train, validate

ROOT = Path(__file__).resolve().parents[2]
OWN = ROOT / "tests/data/own"


@dataclass
class Case:
    file: str
    target: str  # as the file's header writes it
    task: str = "classification"
    ingest: dict[str, Any] = field(default_factory=dict)  # other ingest keys
    split: dict[str, Any] = field(default_factory=dict)
    refused: tuple[str, ...] = ()  # the one line names these (column, fix); empty: trains as it is
    roles: dict[str, str] = field(default_factory=dict)  # normalized column -> role in the schema
    onnx: bool = False  # also export: the ONNX graph converts and passes parity


CASES = {
    "bom_crlf_quoted_headers": Case(
        "bom_crlf_quoted_headers.csv", "Survived",
        ingest={"id_columns": ["Passenger Id"], "drop_columns": []},
        roles={"passenger_id": "identifier", "age_years": "numeric", "port_of_embarkation": "categorical"},
    ),
    "question_marks": Case(
        "question_marks.csv", "label",
        refused=("column 'horsepower'", "'?'", 'na_values: ["?"]'), roles={"horsepower": "numeric"},
    ),
    "decimal_comma": Case(
        "decimal_comma.csv", "klasse", ingest={"read_options": {"sep": ";"}},
        refused=("column 'temperatur'", "column 'druck'", "decimal comma", 'decimal: ","'),
        roles={"temperatur": "numeric", "druck": "numeric"},
    ),
    "thousands": Case(
        "thousands.csv", "sold", refused=("column 'price'", "thousands separators", 'thousands: ","'),
        roles={"price": "numeric"},
    ),
    "latin1": Case(
        "latin1.csv", "classe", refused=("not utf-8 text", "column 'ville'", "encoding: latin-1"),
        roles={"ville": "categorical"},
    ),
    "text_timestamps": Case(
        "text_timestamps.csv", "late", split={"time_column": "order_time"}, roles={"order_time": "datetime"},
        onnx=True,
    ),
    "tz_aware_parquet": Case("tz_aware.parquet", "peak", roles={"recorded": "datetime"}, onnx=True),
    "tz_offsets_csv": Case("tz_offsets.csv", "peak", split={"time_column": "Recorded"}, roles={"recorded": "datetime"}),
    "nullable_ints": Case("nullable_ints.parquet", "churned", roles={"visits": "numeric"}, onnx=True),
    "booleans": Case("booleans.csv", "returned", roles={"member": "categorical"}),
    "high_cardinality": Case(
        "high_cardinality.csv", "default", roles={"town": "categorical", "notes": "identifier"}, onnx=True
    ),
    "missing_target": Case("missing_target.csv", "payment"),
    "single_class": Case("single_class.csv", "status", refused=("target column 'status'", "single class", "ingest.task: regression")),
    "regression_int_target": Case("regression_int_target.csv", "bikes", task="regression", onnx=True),
    "day_first_dates": Case(
        "day_first_dates.csv", "retour",
        refused=("column 'datum'", "day-first dates", 'parse_dates: ["datum"]', 'date_format: "%d/%m/%Y"'),
        roles={"datum": "datetime"},
    ),
}  # fmt: skip


@pytest.fixture
def stage(capsys: pytest.CaptureFixture[str]) -> Callable[..., subprocess.CompletedProcess[str]]:
    """``stage(module, argv)``: the stage's ``cli.run(main, argv)`` in-process; exit code and stderr captured."""

    def call(module: Any, argv: list[str]) -> subprocess.CompletedProcess[str]:
        capsys.readouterr()
        try:
            cli.run(module.main, argv)
            code = 0
        except SystemExit as exc:
            code = int(exc.code or 0)
        return subprocess.CompletedProcess([module.__name__], code, "", capsys.readouterr().err)

    return call


def write_params(ws: Path, case: Case, read_options: dict[str, Any] | None = None) -> Path:
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["ingest"].update({"source": str(OWN / case.file), "target": case.target, "task": case.task, **case.ingest})
    if read_options is not None:
        params["ingest"]["read_options"] = read_options
    params["split"].update(case.split)
    params["train"]["threads"] = 1
    params["train"]["hist_gradient_boosting"]["max_iter"] = 30
    path = ws / "params.yaml"
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    return path


def run_pipeline(stage: Callable, ws: Path, onnx: bool) -> dict[str, subprocess.CompletedProcess[str]]:
    """ingest -> validate -> split -> train (-> export) in ``ws``; stops at the first stage that fails."""
    p = str(ws / "params.yaml")
    f = {k: str(ws / k) for k in ("raw.parquet", "schema.json", "validated.parquet", "q.parquet", "train.parquet",
                                  "test.parquet", "model.joblib", "train.json", "model.onnx", "model.json")}  # fmt: skip
    (ws / "contracts").mkdir(exist_ok=True)
    steps = [
        (ingest, ["--out", f["raw.parquet"], "--schema", f["schema.json"]]),
        (validate, ["--data", f["raw.parquet"], "--schema", f["schema.json"], "--contracts", str(ws / "contracts"),
                    "--out", f["validated.parquet"], "--quarantine", f["q.parquet"], "--metrics",
                    str(ws / "validate.json"), "--report-json", str(ws / "validation.json"), "--report-md",
                    str(ws / "validation.md")]),
        (split, ["--data", f["validated.parquet"], "--schema", f["schema.json"], "--train", f["train.parquet"],
                 "--test", f["test.parquet"]]),
        (train, ["--data", f["train.parquet"], "--schema", f["schema.json"], "--model", f["model.joblib"],
                 "--meta", f["train.json"]]),
    ]  # fmt: skip
    if onnx:
        export_argv = ["--model", f["model.joblib"], "--train-meta", f["train.json"], "--data", f["test.parquet"],
                       "--schema", f["schema.json"], "--onnx", f["model.onnx"], "--meta", f["model.json"]]  # fmt: skip
        steps.append((export, export_argv))
    done: dict[str, subprocess.CompletedProcess[str]] = {}
    for module, argv in steps:
        proc = stage(module, ["--params", p, *argv])
        done[module.__name__.rsplit(".", 1)[1]] = proc
        if proc.returncode:
            break
    return done


def the_fix(message: str) -> dict[str, Any]:
    """The read_options the message's ``dvc exp run -S '++ingest.read_options.<key>=<json>'`` flags set."""
    return {k: json.loads(v) for k, v in re.findall(r"-S '\+\+ingest\.read_options\.(\w+)=(.+?)'", message)}


def assert_trained(ws: Path, done: dict[str, subprocess.CompletedProcess[str]], case: Case) -> None:
    for name, proc in done.items():
        assert proc.returncode == 0, f"{name} failed:\n{proc.stderr}"
    assert "train" in done
    schema = json.loads((ws / "schema.json").read_text())
    roles = {c["name"]: c["role"] for c in schema["columns"]}
    for column, role in case.roles.items():
        assert roles.get(column) == role, (column, roles)
    metrics = ModelMetadata.read(ws / "train.json").metrics["train"]
    if case.task == "classification":
        assert metrics["balanced_accuracy"] > 0.6, metrics  # learned the file's signal
    else:
        assert metrics["r2"] > 0.3, metrics
    assert "NO REVIEWED DATA CONTRACT" in done["validate"].stderr
    if case.onnx:
        record = ModelMetadata.read(ws / "model.json")
        assert record.onnx.usable, record.onnx.reason
        assert record.onnx.parity["max_abs_diff"] <= 1e-4


@pytest.mark.parametrize("name", list(CASES))
def test_own_file(name: str, stage: Callable, tmp_path: Path) -> None:
    case = CASES[name]
    write_params(tmp_path, case)
    done = run_pipeline(stage, tmp_path, case.onnx)
    if not case.refused:
        assert_trained(tmp_path, done, case)
        return
    proc = done["ingest"]
    assert proc.returncode == 1, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if " ERROR " in line]
    assert len(errors) == 1 and "Traceback" not in proc.stderr, proc.stderr  # one line
    for fragment in case.refused:
        assert fragment in errors[0], f"{fragment!r} not in {errors[0]}"
    fix = the_fix(errors[0])
    if not fix:  # not a read_options fix (e.g. a single-class target): the line says what to change
        return
    read_options = {**case.ingest.get("read_options", {}), **fix}
    write_params(tmp_path, case, read_options)
    assert_trained(tmp_path, run_pipeline(stage, tmp_path, case.onnx), case)


def test_unlabeled_rows_are_quarantined_and_counted(stage: Callable, tmp_path: Path) -> None:
    case = CASES["missing_target"]
    write_params(tmp_path, case)
    done = run_pipeline(stage, tmp_path, onnx=False)
    assert_trained(tmp_path, done, case)
    q = pd.read_parquet(tmp_path / "q.parquet")
    assert len(q) == 20 and (q["reason"] == "unlabeled: payment is null").all()
    assert json.loads((tmp_path / "validate.json").read_text())["rows_unlabeled"] == 20
    assert "20 quarantined (20 unlabeled)" in done["validate"].stderr


@pytest.mark.parametrize("task", ["classification", "regression"])
@pytest.mark.parametrize("file", ["winequality-red.csv", "winequality-white.csv"])
def test_wine_quality_trains_by_params_alone(file: str, task: str, stage: Callable, tmp_path: Path) -> None:
    """The real UCI files (data/external), as the README's example sets them: only the task differs."""
    case = Case(
        str(ROOT / "data/external" / file), "quality", task=task, ingest={"read_options": {"sep": ";"}},
        roles={"fixed_acidity": "numeric", "alcohol": "numeric"},
    )  # fmt: skip
    params = write_params(tmp_path, case)
    changed = yaml.safe_load(params.read_text())
    changed["validate"]["min_class_rows"] = 5  # the README's -S validate.min_class_rows=5: quality 3 and 9 are rare
    params.write_text(yaml.safe_dump(changed, sort_keys=False))
    done = run_pipeline(stage, tmp_path, onnx=False)
    assert_trained(tmp_path, done, case)
    if task == "classification":
        assert json.loads((tmp_path / "schema.json").read_text())["classes"][0] == 3
