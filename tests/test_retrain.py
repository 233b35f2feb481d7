"""Continuous training, the parts without git or DVC: the ``retrain`` params and their checks, labelled batches
(incoming rows + feedback labels), the training rows by ``retrain.strategy`` (what ingest trains on), why the
monitor asked for retraining (data or concept drift), and the pull-request body. The loop itself, with real git and
DVC experiments, is tests/e2e/test_retrain_pr.py."""

from __future__ import annotations

import copy
from pathlib import Path

import pandas as pd
import pytest
import yaml

from lifecycle import retrain as rt
from lifecycle.config import load_params, parse_params
from lifecycle.data import telemetry
from lifecycle.data.ingest import load_dataset
from lifecycle.data.labelled import batch_name, known_ids, label_batches, read_labelled, training_rows
from lifecycle.errors import DataError, ParamsError

ROOT = Path(__file__).resolve().parents[1]
RAW = yaml.safe_load((ROOT / "params.yaml").read_text())
PARAMS = load_params(ROOT / "params.yaml")
COLUMNS = ["reading_id", "x", "fault"]


def with_retrain(**changes: object) -> dict:
    raw = copy.deepcopy(RAW)
    raw["retrain"].update(changes)
    return raw


# --------------------------------------------------------------------------------------------- params
def test_retrain_params_load() -> None:
    assert PARAMS.retrain.strategy == "combined"
    assert PARAMS.retrain.branch == "retrain/auto"
    assert PARAMS.paths.labelled == "data/labelled"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"strategy": "latest"}, r"retrain\.strategy"),
        ({"min_labelled_rows": 0}, r"retrain\.min_labelled_rows"),
        ({"min_labelled_rows": "500"}, r"retrain\.min_labelled_rows"),
        ({"branch": "retrain auto"}, r"retrain\.branch: 'retrain auto' is not a branch name git accepts"),
        ({"branch": "retrain..x"}, r"retrain\.branch"),
        ({"branch": "-retrain"}, r"retrain\.branch"),
        ({"branch": "retrain/auto.lock"}, r"retrain\.branch"),
        ({"branch": "retrain/"}, r"retrain\.branch"),
        ({"branch": "a:b"}, r"retrain\.branch"),
        ({"brnach": "x"}, r"retrain\.brnach: unknown key"),
        (
            {"strategy": "recent", "min_labelled_rows": 50},
            r"retrain\.min_labelled_rows: 50 is below validate\.min_rows",
        ),
    ],
)
def test_bad_retrain_params_are_refused_with_the_key(changes: dict, message: str) -> None:
    with pytest.raises(ParamsError, match=message):
        parse_params(with_retrain(**changes))


def test_strategies_equal_their_home() -> None:
    from lifecycle import config
    from lifecycle.data.labelled import STRATEGIES

    assert config.Retrain.model_fields["strategy"].annotation.__args__ == STRATEGIES


def test_recent_with_enough_rows_is_accepted() -> None:
    assert parse_params(with_retrain(strategy="recent", min_labelled_rows=100)).retrain.strategy == "recent"


# --------------------------------------------------------------------------------------------- labelled batches
def write(path: Path, df: pd.DataFrame) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".csv":
        df.to_csv(path, index=False)
    else:
        df.to_parquet(path, index=False)
    return path


def test_batch_rows_get_their_feedback_labels(tmp_path: Path) -> None:
    a = write(tmp_path / "a.csv", pd.DataFrame({"Reading ID": ["r1", "r2", "r3"], "X": [1.0, 2.0, 3.0]}))
    b = write(
        tmp_path / "b.parquet", pd.DataFrame({"reading_id": ["r4", "r5"], "x": [4.0, 5.0], "fault": ["none", None]})
    )
    labels = pd.DataFrame(
        {"reading_id": ["r1", "r3", "r4", "r9"], "fault": ["none", "overheating", "degradation", "x"]}
    )
    out = label_batches([a, b], labels, "reading_id", "fault", COLUMNS)
    assert list(out.columns) == COLUMNS
    # r2 and r5 have no label; r4's own label is replaced by the later feedback; r9 is not in a batch
    assert out.to_dict("list") == {
        "reading_id": ["r1", "r3", "r4"], "x": [1.0, 3.0, 4.0], "fault": ["none", "overheating", "degradation"],
    }  # fmt: skip


def test_a_batch_that_carries_its_labels_needs_no_feedback(tmp_path: Path) -> None:
    a = write(tmp_path / "a.parquet", pd.DataFrame({"reading_id": ["r1", "r2", "r1"], "x": [1.0, 2.0, 9.0],
                                                    "fault": ["none", "none", "overheating"]}))  # fmt: skip
    out = label_batches([a], pd.DataFrame(columns=["reading_id", "fault"]), "reading_id", "fault", COLUMNS)
    assert out["reading_id"].tolist() == ["r2", "r1"]  # a repeated id keeps its last row
    assert out.loc[out["reading_id"] == "r1", "fault"].item() == "overheating"


def test_no_batch_or_no_label_gives_no_rows(tmp_path: Path) -> None:
    assert label_batches([], pd.DataFrame(), "reading_id", "fault", COLUMNS).empty
    a = write(tmp_path / "a.csv", pd.DataFrame({"reading_id": ["r1"], "x": [1.0]}))
    assert label_batches([a], pd.DataFrame(columns=["reading_id", "fault"]), "reading_id", "fault", COLUMNS).empty


@pytest.mark.parametrize("frame", [{"id": ["r1"], "x": [1.0]}, {"reading_id": ["r1"], "y": [1.0]}])
def test_a_batch_without_the_id_or_a_feature_names_the_file(tmp_path: Path, frame: dict) -> None:
    a = write(tmp_path / "odd.csv", pd.DataFrame(frame))
    with pytest.raises(DataError, match=r"odd\.csv: column\(s\) \['(reading_id|x)'\] missing"):
        label_batches([a], pd.DataFrame(columns=["reading_id", "fault"]), "reading_id", "fault", COLUMNS)


def test_labelled_folder_reads_every_table_and_knows_its_ids(tmp_path: Path) -> None:
    folder = tmp_path / "labelled"
    assert read_labelled(folder).empty and known_ids(folder, "reading_id") == set()
    folder.mkdir()
    (folder / ".gitkeep").touch()
    (folder / "labelled-1.parquet.dvc").write_text("outs: []\n")
    assert read_labelled(folder).empty
    write(folder / "labelled-b.parquet", pd.DataFrame({"reading_id": ["r3"], "x": [3.0], "fault": ["none"]}))
    write(
        folder / "labelled-a.parquet", pd.DataFrame({"reading_id": ["r1", "r2"], "x": [1.0, 2.0], "fault": ["a", "b"]})
    )
    assert read_labelled(folder)["reading_id"].tolist() == ["r1", "r2", "r3"]
    assert known_ids(folder, "reading_id") == {"r1", "r2", "r3"}


def test_batch_name_is_stable_and_follows_the_rows() -> None:
    df = pd.DataFrame({"reading_id": ["r1", "r2"], "fault": ["none", "overheating"]})
    assert batch_name(df, "reading_id", "fault") == batch_name(df.copy(), "reading_id", "fault")
    assert batch_name(df, "reading_id", "fault").startswith("labelled-")
    other = df.assign(fault=["none", "none"])
    assert batch_name(other, "reading_id", "fault") != batch_name(df, "reading_id", "fault")


# --------------------------------------------------------------------------------------------- strategy
SOURCE = pd.DataFrame({"reading_id": ["s1", "s2"], "x": [1.0, 2.0], "extra": [0, 0], "fault": ["none", "none"]})
LABELLED = pd.DataFrame({"reading_id": ["r1", "r2", "r3"], "x": [5.0, 6.0, 7.0], "fault": ["a", "b", "a"]})


def test_combined_appends_the_labelled_rows_in_the_source_columns() -> None:
    out = training_rows(SOURCE, LABELLED, "combined", 1)
    assert out["reading_id"].tolist() == ["s1", "s2", "r1", "r2", "r3"]
    assert list(out.columns) == list(SOURCE.columns)
    assert out["extra"].isna().sum() == 3


def test_recent_trains_on_the_labelled_rows_alone() -> None:
    out = training_rows(SOURCE, LABELLED, "recent", 3)
    assert out["reading_id"].tolist() == ["r1", "r2", "r3"]


def test_without_labelled_rows_combined_is_the_source_and_recent_fails() -> None:
    assert training_rows(SOURCE, pd.DataFrame(), "combined", 1) is SOURCE
    with pytest.raises(DataError, match=r"retrain\.strategy is 'recent' but data/labelled holds no labelled rows"):
        training_rows(SOURCE, pd.DataFrame(), "recent", 1, "data/labelled")


def test_recent_with_too_few_rows_and_foreign_columns_fail_with_the_fix() -> None:
    with pytest.raises(DataError, match=r"holds 3 rows, fewer than retrain\.min_labelled_rows=4"):
        training_rows(SOURCE, LABELLED, "recent", 4)
    with pytest.raises(DataError, match=r"column\(s\) \['alien'\] are not in ingest\.source's data"):
        training_rows(SOURCE, LABELLED.assign(alien=1), "combined", 1)
    with pytest.raises(DataError, match=r"retrain\.strategy: 'newest'"):
        training_rows(SOURCE, LABELLED, "newest", 1)


def test_ingest_adds_labelled_telemetry_by_strategy() -> None:
    ingest = PARAMS.ingest.model_copy(update={"rows": 300})
    batch = telemetry.generate(rows=120, version="v2", seed=7)
    base, _ = load_dataset(ingest, 42, None, PARAMS.retrain)
    combined, schema = load_dataset(ingest, 42, batch, PARAMS.retrain)
    assert len(combined) == len(base) + len(batch)
    assert set(combined["reading_id"].str[:2]) == {"v1", "v2"}
    assert schema.target == "fault"
    recent_cfg = PARAMS.retrain.model_copy(update={"strategy": "recent", "min_labelled_rows": 100})
    recent, _ = load_dataset(ingest, 42, batch, recent_cfg)
    assert recent["reading_id"].str.startswith("v2-").all() and len(recent) == len(batch)


def test_ingest_with_labelled_rows_keeps_the_sources_headers_as_written(tmp_path: Path) -> None:
    """Labelled batches hold normalized names; the source's own header still reaches prepare, so params may name a
    column as the file writes it (issue 13) and the data's text columns are checked as read."""
    source = tmp_path / "fleet.csv"
    rows = telemetry.generate(rows=200, version="v1", seed=3)
    written = {"reading_id": "Reading ID", "fault": "Fault", "ambient_temp_c": "Ambient Temp (C)"}
    rows.rename(columns=written).to_csv(source, index=False)
    ingest = PARAMS.ingest.model_copy(
        update={"source": str(source), "target": "Fault", "drop_columns": ["Ambient Temp (C)"], "datetime_features": []}
    )
    batch = telemetry.generate(rows=50, version="v2", seed=4)
    combined, schema = load_dataset(ingest, 42, batch, PARAMS.retrain)
    assert len(combined) == 250 and schema.target == "fault"
    assert "ambient_temp_c" not in combined.columns and "reading_id" in combined.columns
    assert set(combined["reading_id"].str[:2]) == {"v1", "v2"}
    typo = ingest.model_copy(update={"drop_columns": ["Ambient Temperature"]})
    with pytest.raises(DataError, match=r"columns: .*'Ambient Temp \(C\)' \(or ambient_temp_c\)"):
        load_dataset(typo, 42, batch, PARAMS.retrain)  # the header as the file writes it, labelled rows or not


# --------------------------------------------------------------------------------------------- trigger
def monitor(drifted: tuple[str, ...] = (), prediction: bool = False, observed: float = 0.9, rows: int = 400) -> dict:
    return {
        "retrain": True,
        "reasons": ["because"],
        "drifted_features": list(drifted),
        "features": {"x": {"missing_drifted": False}},
        "prediction": {"drifted": prediction},
        "feedback": {"rows": rows, "metric": "accuracy", "metrics": {"accuracy": observed}, "test": {"accuracy": 0.9}},
    }


@pytest.mark.parametrize(
    ("decision", "kind", "dropped"),
    [
        (monitor(drifted=("ambient_temp_c",)), "data drift", False),
        (monitor(prediction=True), "data drift", False),
        (monitor(observed=0.7), "concept drift", True),
        (monitor(drifted=("ambient_temp_c",), observed=0.7), "data drift and a metric drop on feedback labels", True),
        (monitor(observed=0.7, rows=10), "monitor decision", False),  # too few labels: the monitor's own rule
        (monitor(observed=0.88), "monitor decision", False),  # a drop within monitor.feedback.classification.max_drop
    ],
)
def test_trigger_says_data_or_concept_drift(decision: dict, kind: str, dropped: bool) -> None:
    why = rt.trigger(decision, PARAMS)
    assert why.kind == kind
    assert why.reasons == ("because",)
    assert (why.metric_drop is not None) == dropped
    if dropped:
        assert why.metric_drop.startswith("accuracy 0.7000 on ")


def test_missing_rate_change_and_log_drift_are_data_drift() -> None:
    decision = monitor()
    decision["features"]["x"]["missing_drifted"] = True
    assert rt.trigger(decision, PARAMS).kind == "data drift"
    decision = monitor() | {"prediction_log": {"drifted_features": ["x"], "prediction": {}}}
    assert rt.trigger(decision, PARAMS).kind == "data drift"


def test_the_metric_drop_follows_the_tasks_feedback_rule() -> None:
    raw = copy.deepcopy(RAW)
    raw["monitor"]["feedback"]["classification"]["max_drop"] = 0.25
    lenient = parse_params(raw)
    assert rt.trigger(monitor(observed=0.7), lenient).metric_drop is None  # 0.2 below the test split: within 0.25
    raw["monitor"]["feedback"]["classification"] = {"metric": "f1_macro", "max_drop": 0.05}
    decision = monitor(observed=0.7)
    assert rt.trigger(decision, parse_params(raw)).metric_drop is None  # the rule's metric was not computed
    decision["feedback"]["metrics"]["f1_macro"], decision["feedback"]["test"]["f1_macro"] = 0.5, 0.8
    assert rt.trigger(decision, parse_params(raw)).metric_drop.startswith("f1_macro 0.5000 on 400 ")


def test_labels_of_classes_the_model_never_saw_are_concept_drift() -> None:
    decision = monitor()
    decision["feedback"]["unseen_labels"] = {"thermal_runaway": 30}
    why = rt.trigger(decision, PARAMS)
    assert why.kind == "concept drift"
    assert why.metric_drop == "30 label(s) of class(es) the model never saw: thermal_runaway (30)"
    decision["feedback"]["rows"] = 30 + PARAMS.monitor.min_feedback_rows - 1  # known classes: too few for a drop
    decision["feedback"]["metrics"]["accuracy"] = 0.5
    assert rt.trigger(decision, PARAMS).metric_drop.startswith("30 label(s)")


def test_the_demo_batch_and_its_labels_are_a_source_of_labelled_rows(tmp_path: Path) -> None:
    """A fresh clone has only the simulate stage's demo batch: its labelled rows count, after yours; a label of
    yours wins over the demo's for the same row id (as in monitor)."""
    from lifecycle.io import write_json
    from lifecycle.schema import infer_schema

    paths = PARAMS.paths
    clean = {"missing_rate": 0.0, "glitch_rate": 0.0, "duplicate_rate": 0.0}
    demo = telemetry.generate(rows=40, version="v2", seed=5, **clean)
    schema = infer_schema(demo, "fault", "classification", [], 50, "demo")
    write_json(tmp_path / paths.schema, schema.to_dict())
    write(tmp_path / paths.demo / "incoming" / "telemetry_v2.parquet", demo.drop(columns="fault"))
    write(tmp_path / paths.demo / "feedback" / "telemetry_v2.parquet", demo[["reading_id", "fault"]].head(20))
    assert len(rt.new_labelled_rows(tmp_path, PARAMS)) == 20  # the demo alone
    mine = telemetry.generate(rows=10, version="v1", seed=6, **clean)
    write(tmp_path / paths.incoming / "2026-06.parquet", mine.drop(columns="fault"))
    other = next(c for c in schema.classes if c != demo["fault"].iloc[0])
    relabel = pd.DataFrame({"reading_id": [demo["reading_id"].iloc[0]], "fault": [other]})
    write(tmp_path / paths.feedback / "late.parquet", pd.concat([mine[["reading_id", "fault"]], relabel]))
    rows = rt.new_labelled_rows(tmp_path, PARAMS)
    assert len(rows) == 30 and rows["reading_id"].str[:2].tolist() == ["v1"] * 10 + ["v2"] * 20  # yours first
    first = rows["reading_id"] == demo["reading_id"].iloc[0]
    assert rows.loc[first, "fault"].astype(str).item() == other


def test_rejected_body_names_the_cause_and_every_criterion(tmp_path: Path) -> None:
    verdict = {
        "decision": "reject",
        "reasons": ["accuracy 0.80 < 0.85"],
        "criteria": [{"name": "accuracy", "passed": False, "message": "accuracy 0.80 < 0.85"},
                     {"name": "log_loss", "passed": True, "message": "log_loss 0.3 <= 0.5"}],
    }  # fmt: skip
    result = rt.Result(
        rt.REJECTED, "rejected", rt.trigger(monitor(observed=0.7), PARAMS), None, "labelled-abc", 800,
        "data/labelled/labelled-abc.parquet", verdict, "Retrain on 800 new labelled rows (concept drift)",
    )  # fmt: skip
    body = rt.pr_body(tmp_path, result, "0123456789abcdef", PARAMS)
    assert body.startswith("# Retrain on 800 new labelled rows (concept drift)\n")
    assert "## Why retraining started: concept drift" in body
    assert "The inputs did not drift" in body
    assert "- because" in body
    assert "## Promotion gate: **reject**" in body
    assert "- FAIL: accuracy 0.80 < 0.85" in body and "- pass: log_loss 0.3 <= 0.5" in body
    assert "`0123456789ab`" in body
    assert "800 labelled rows as `data/labelled/labelled-abc.parquet`" in body
    assert "# Pipeline report" not in body  # the branch report only for a written branch
    assert "not held out" not in body  # the caveat goes with the branch's report
    assert rt.Result(rt.NO_RETRAIN, "x").to_dict()["outcome"] == "no retrain needed"


def test_without_a_monitor_decision_it_exits_1_naming_the_file(tmp_path: Path) -> None:
    import subprocess
    import sys

    (tmp_path / "params.yaml").write_text((ROOT / "params.yaml").read_text())
    proc = subprocess.run(
        [sys.executable, "-m", "lifecycle.retrain", "--repo", str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 1
    assert "metrics/monitor.json: no monitor decision; run `dvc repro monitor` first" in proc.stderr
    assert not (tmp_path / "reports" / "pr" / "retrain.json").exists()


# --------------------------------------------------------------------------------------------- workflow
WORKFLOW = yaml.safe_load((ROOT / ".github" / "workflows" / "retrain.yml").read_text())
STEPS = WORKFLOW["jobs"]["retrain"]["steps"]


def step(name: str) -> dict:
    return next(s for s in STEPS if s.get("name", "").startswith(name))


def test_workflow_runs_on_a_schedule_and_on_demand() -> None:
    triggers = WORKFLOW[True]  # YAML 1.1 reads the key `on` as True
    assert set(triggers) == {"schedule", "workflow_dispatch"}
    assert triggers["schedule"][0]["cron"]
    assert WORKFLOW["permissions"] == {"contents": "write", "pull-requests": "write"}


def test_workflow_takes_the_remote_from_repository_settings_and_skips_cleanly_without() -> None:
    remote = next(s for s in STEPS if s.get("uses") == "./.github/actions/dvc-remote")
    assert remote["with"] == {"url": "${{ vars.DVC_REMOTE_URL }}", "endpoint": "${{ vars.DVC_REMOTE_ENDPOINT }}",
                              "region": "${{ vars.AWS_REGION }}"}  # fmt: skip
    assert WORKFLOW["jobs"]["retrain"]["env"]["AWS_ACCESS_KEY_ID"] == "${{ secrets.AWS_ACCESS_KEY_ID }}"
    skip = step("Without a remote")
    assert skip["if"] == "steps.remote.outputs.configured != 'true'"
    assert "::notice::" in skip["run"] and "exit 1" not in skip["run"]
    for name in ("Pull the latest", "Retrain on a retrain decision"):
        assert step(name)["if"] == "steps.remote.outputs.configured == 'true'"


def test_workflow_scores_monitors_retrains_and_opens_one_pull_request_with_cml() -> None:
    assert "dvc repro monitor" in step("Pull the latest")["run"]
    run_retrain = step("Retrain on a retrain decision")["run"]
    assert "make retrain" in run_retrain and "reports/pr/retrain.json" in run_retrain
    # the case statement follows lifecycle.retrain's codes: 0 goes on, 4 warns, the others are notices
    assert (rt.BRANCH_WRITTEN, rt.REJECTED) == (0, 4) and "0) " in run_retrain and "4) " in run_retrain
    for name in ("Push the candidate", "Open (or update) the pull request"):
        assert step(name)["if"] == "steps.retrain.outputs.code == '0'"
    assert "dvc push" in step("Push the candidate")["run"]
    pr = step("Open (or update) the pull request")["run"]
    assert 'cml pr create --branch "$BRANCH"' in pr and "reports/pr/retrain.md" in pr
    assert 'git push --force origin "$BRANCH"' in pr  # an open pull request is updated, not duplicated
    assert any(s.get("uses", "").startswith("iterative/setup-cml@") for s in STEPS)


def test_a_metric_drop_on_feedback_without_input_drift_is_concept_drift() -> None:
    """The monitoring library's own result for a batch like the reference whose labels follow a changed rule."""
    from lifecycle.monitoring.analysis import analyse
    from lifecycle.schema import coerce_frame, infer_schema

    clean = {"missing_rate": 0.0, "glitch_rate": 0.0, "duplicate_rate": 0.0}
    reference = telemetry.generate(rows=3000, version="v1", seed=1, **clean)
    schema = infer_schema(reference, "fault", "classification", [], 50, "reference")
    reference = coerce_frame(reference, schema)
    batch = coerce_frame(telemetry.generate(rows=3000, version="v1", seed=2, **clean), schema)
    records = batch.drop(columns="fault").assign(prediction=batch["fault"])  # the model as right as on its test split
    hot = batch["cell_temp_max_c"] > batch["cell_temp_max_c"].quantile(0.7)
    labels = pd.DataFrame(
        {"reading_id": batch["reading_id"].astype(str), "fault": batch["fault"].where(~hot, "overheating")}
    )
    result, _ = analyse(records, reference, reference["fault"], schema, PARAMS.monitor, labels, {"accuracy": 0.95})
    assert result["retrain"] is True and result["drifted_features"] == []
    why = rt.trigger(result, PARAMS)
    assert why.kind == "concept drift"
    assert why.metric_drop.startswith("accuracy ") and "on 3000 feedback labels vs 0.9500" in why.metric_drop
