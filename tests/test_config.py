"""params.yaml -> typed sections: unknown, missing and mistyped keys, and values wrong in meaning (ranges, choices,
combinations), fail at load with their dotted name, the rule and the fix."""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from lifecycle import config
from lifecycle.config import (
    ClassificationGates,
    Notify,
    Promote,
    RegressionGates,
    Validate,
    load_params,
    parse_params,
)
from lifecycle.errors import ParamsError

ROOT = Path(__file__).resolve().parents[1]
RAW = yaml.safe_load((ROOT / "params.yaml").read_text())
SPACES = {"hist_gradient_boosting": {}, "random_forest": {}, "logistic_regression": {}, "ridge": {}}


def changed(path: str, value: object = None, delete: bool = False, raw: dict | None = None) -> dict:
    raw = copy.deepcopy(RAW if raw is None else raw)
    *parents, last = path.split(".")
    node = raw
    for key in parents:
        node = node[key]
    if delete:
        del node[last]
    else:
        node[last] = value
    return raw


def refused(raw: dict, message: str) -> str:
    with pytest.raises(ParamsError, match=message) as info:
        parse_params(raw)
    return str(info.value)


def run_stage(tmp_path: Path, raw: dict) -> subprocess.CompletedProcess[str]:
    """The train stage run as DVC runs it, on ``raw`` as params.yaml (the inputs need not exist: params come first)."""
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump(raw))
    return subprocess.run(
        [sys.executable, "-m", "lifecycle.stages.train", "--params", str(params), "--data", "x.parquet",
         "--schema", "s.json", "--model", "m.joblib", "--meta", "m.json"],
        cwd=tmp_path, capture_output=True, text=True, check=False,
    )  # fmt: skip


# --------------------------------------------------------------------------------------------- keys and types
def test_repository_params_load() -> None:
    params = load_params(ROOT / "params.yaml")
    assert params.train.model == "hist_gradient_boosting"
    assert params.ingest.rows == 50_000
    assert params.base.seed == 42
    assert params.paths.schema == "data/interim/schema.json"  # names pydantic's BaseModel also uses
    assert params.validate.min_rows == 100


def test_typo_in_nested_key_names_it_and_suggests() -> None:
    with pytest.raises(
        ParamsError,
        match=r"train\.random_forest\.n_estimatrs: unknown key; did you mean 'train\.random_forest\.n_estimators'",
    ):
        parse_params(changed("train.random_forest.n_estimatrs", 5))


def test_typo_at_section_level() -> None:
    with pytest.raises(ParamsError, match=r"train\.n_estimatrs: unknown key"):
        parse_params(changed("train.n_estimatrs", 5))


def test_unknown_section() -> None:
    with pytest.raises(ParamsError, match=r"trian: unknown key; did you mean 'train'"):
        parse_params(changed("trian", {}))


def test_missing_key() -> None:
    with pytest.raises(ParamsError, match=r"split\.test_size: missing key"):
        parse_params(changed("split.test_size", delete=True))


def test_missing_section() -> None:
    raw = copy.deepcopy(RAW)
    del raw["evaluate"]
    with pytest.raises(ParamsError, match=r"section 'evaluate' is missing"):
        parse_params(raw)


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        ("ingest.rows", "many", r"ingest\.rows: expected int, got 'many'"),
        ("ingest.rows", True, r"ingest\.rows: expected int, got True"),
        ("split.stratify", "yes", r"split\.stratify: expected bool"),
        ("train.model", "xgboost", r"train\.model: 'xgboost' is not allowed; use one of: hist_gradient_boosting"),
        ("ingest.task", "ranking", r"ingest\.task: 'ranking' is not allowed"),
        ("ingest.read_options", [1], r"ingest\.read_options: expected a mapping"),
        ("split.test_size", "0.2", r"split\.test_size: expected a number, got '0\.2'"),
        ("split", [1], r"split: expected a mapping of keys, got \[1\]"),
        ("ingest.data_version", 3, r"ingest\.data_version: 3 does not fit type str \| list\[str\]"),
        ("ingest.drop_columns", ["a", 1], r"ingest\.drop_columns\[1\]: expected str, got 1"),
        ("train.random_forest.max_depth", "deep", r"max_depth: 'deep' does not fit type int \| None"),
        ("train.metrics_sample_rows", "all", r"train\.metrics_sample_rows: expected int, got 'all'"),
    ],
)
def test_wrong_types(path: str, value: object, message: str) -> None:
    with pytest.raises(ParamsError, match=message):
        parse_params(changed(path, value))


def test_int_accepted_for_float_and_null_for_optional() -> None:
    params = parse_params(changed("train.hist_gradient_boosting.learning_rate", 1))
    assert params.train.hist_gradient_boosting.learning_rate == 1.0
    assert isinstance(params.train.hist_gradient_boosting.learning_rate, float)
    assert parse_params(changed("train.random_forest.max_depth", None)).train.random_forest.max_depth is None


def test_sections_are_frozen() -> None:
    params = parse_params(RAW)
    with pytest.raises(ValidationError, match="frozen"):  # pydantic's frozen models refuse assignment
        params.train.model = "ridge"  # type: ignore[misc]


def test_every_problem_is_reported_at_once_one_line_each() -> None:
    raw = changed("split.test_size", 0, raw=changed("train.threads", 0, raw=changed("trian", {"model": "ridge"})))
    lines = refused(raw, r"train\.threads").splitlines()
    assert len(lines) == 3, lines
    assert all(line.startswith("params.yaml: ") for line in lines)
    assert {line.split(": ")[1] for line in lines} == {"split.test_size", "train.threads", "trian"}


# --------------------------------------------------------------------------------------------- meaning: ranges
@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        # issue 13 item 13: values that reached scikit-learn's traceback, were accepted, or were blamed on the data
        ("split.test_size", 0, r"split\.test_size: 0\.0 is out of range; use a value in \(0, 1\)"),
        ("split.test_size", 1.5, r"split\.test_size: 1\.5 is out of range; use a value in \(0, 1\)"),
        ("train.hist_gradient_boosting.learning_rate", -0.1, r"learning_rate: -0\.1 is out of range; use a value > 0"),
        ("base.seed", 2**32, r"base\.seed: 4294967296 is out of range; use a value in \[0, 4294967295\]"),
        ("base.seed", -1, r"base\.seed: -1 is out of range"),
        ("split.test_size", float("nan"), r"split\.test_size: nan is not a number; use a value in \(0, 1\)"),
        ("train.threads", 0, r"train\.threads: 0 is out of range; use a value >= 1"),
        ("validate.max_bad_row_fraction", -1, r"validate\.max_bad_row_fraction: -1\.0 is out of range; .* in \[0, 1\]"),
        # counts
        ("ingest.rows", 0, r"ingest\.rows: 0 is out of range; use a value >= 1"),
        ("ingest.max_categories", 0, r"ingest\.max_categories: 0 is out of range"),
        ("validate.min_rows", 0, r"validate\.min_rows: 0 is out of range"),
        ("validate.max_rows", 0, r"validate\.max_rows: 0 is out of range"),
        ("validate.min_class_rows", 0, r"validate\.min_class_rows: 0 is out of range"),
        ("train.cv_folds", 1, r"train\.cv_folds: 1 is out of range; use a value >= 2 \(cross-validation"),
        ("train.search_iterations", 0, r"train\.search_iterations: 0 is out of range"),
        ("train.search_n_jobs", 0, r"train\.search_n_jobs: 0 is out of range; use a value >= 1, or -1"),
        ("train.hist_gradient_boosting.max_iter", 0, r"hist_gradient_boosting\.max_iter: 0 is out of range"),
        ("train.hist_gradient_boosting.max_leaf_nodes", 1, r"max_leaf_nodes: 1 is out of range; use a value >= 2"),
        ("train.hist_gradient_boosting.min_samples_leaf", 0, r"min_samples_leaf: 0 is out of range"),
        ("train.hist_gradient_boosting.l2_regularization", -1, r"l2_regularization: -1\.0 is out of range; .* >= 0"),
        ("train.random_forest.n_estimators", 0, r"random_forest\.n_estimators: 0 is out of range"),
        ("train.random_forest.max_depth", 0, r"random_forest\.max_depth: 0 is out of range"),
        ("train.random_forest.n_jobs", -2, r"random_forest\.n_jobs: -2 is out of range"),
        ("train.random_forest.max_features", 1.5, r"max_features: 1\.5 is out of range; .* \(0, 1\]"),
        ("train.random_forest.max_features", "auto", r"max_features: 'auto' is not allowed; use sqrt, log2"),
        ("train.logistic_regression.C", 0, r"logistic_regression\.C: 0\.0 is out of range; use a value > 0"),
        ("train.logistic_regression.max_iter", 0, r"logistic_regression\.max_iter: 0 is out of range"),
        ("train.ridge.alpha", -1, r"ridge\.alpha: -1\.0 is out of range; use a value > 0"),
        ("evaluate.permutation_repeats", 0, r"evaluate\.permutation_repeats: 0 is out of range"),
        ("evaluate.permutation_max_rows", 0, r"evaluate\.permutation_max_rows: 0 is out of range"),
        ("evaluate.shap_max_rows", 0, r"evaluate\.shap_max_rows: 0 is out of range"),
        ("train.shap_background_rows", 0, r"train\.shap_background_rows: 0 is out of range; use a value >= 1"),
        ("train.shap_background_rows", "100", r"train\.shap_background_rows: expected int, got '100'"),
        ("export.opset", 0, r"export\.opset: 0 is out of range"),
        ("export.max_abs_diff", -1e-4, r"export\.max_abs_diff: -0\.0001 is out of range; use a value >= 0"),
        ("export.min_label_agreement", 1.5, r"export\.min_label_agreement: 1\.5 is out of range; .* \[0, 1\]"),
        ("score.chunk_rows", 0, r"score\.chunk_rows: 0 is out of range; use a value >= 1"),
        ("train.metrics_sample_rows", -1, r"train\.metrics_sample_rows: -1 is out of range; .* >= 0 \(0 = all"),
        ("export.parity_rows", -5, r"export\.parity_rows: -5 is out of range; use a value >= 0 \(0 = all"),
        ("score.min_rows", 0, r"score\.min_rows: 0 is out of range"),
        # fractions, rates and thresholds
        ("ingest.missing_rate", 1.0, r"ingest\.missing_rate: 1\.0 is out of range; use a value in \[0, 1\)"),
        ("ingest.glitch_rate", -0.1, r"ingest\.glitch_rate: -0\.1 is out of range"),
        ("ingest.duplicate_rate", 2, r"ingest\.duplicate_rate: 2\.0 is out of range"),
        ("validate.max_null_fraction", 1.2, r"validate\.max_null_fraction: 1\.2 is out of range; .* \[0, 1\]"),
        ("monitor.psi_bins", 1, r"monitor\.psi_bins: 1 is out of range; use a value >= 2"),
        ("monitor.psi_threshold", -0.2, r"monitor\.psi_threshold: -0\.2 is out of range"),
        ("monitor.ks_threshold", 1.5, r"monitor\.ks_threshold: 1\.5 is out of range"),
        ("monitor.js_threshold", -0.1, r"monitor\.js_threshold: -0\.1 is out of range"),
        ("monitor.p_value", 5, r"monitor\.p_value: 5\.0 is out of range; use a value in \[0, 1\]"),
        ("monitor.max_missing_delta", 2, r"monitor\.max_missing_delta: 2\.0 is out of range"),
        ("monitor.prediction_psi_threshold", -1, r"monitor\.prediction_psi_threshold: -1\.0 is out of range"),
        ("monitor.min_drifted_features", 0, r"monitor\.min_drifted_features: 0 is out of range"),
        ("monitor.reference_rows", -1, r"monitor\.reference_rows: -1 is out of range; use a value >= 0 \(0 = all"),
        (
            "monitor.feedback.regression.max_drop",
            -0.1,
            r"monitor\.feedback\.regression\.max_drop: -0\.1 is out of range",
        ),
        ("monitor.min_feedback_rows", 0, r"monitor\.min_feedback_rows: 0 is out of range"),
        ("notify.timeout_seconds", 0, r"notify\.timeout_seconds: 0\.0 is out of range; use a value > 0"),
        # names
        ("paths.raw", "", r"paths\.raw: must not be empty"),
        ("ingest.target", " ", r"ingest\.target: must not be empty"),
        ("split.time_column", "", r"split\.time_column: must not be empty; name it, or use null"),
        ("base.log_level", "LOUD", r"base\.log_level: 'LOUD' is not allowed; use one of: DEBUG, INFO"),
        ("validate.row_expectations_on", "some", r"row_expectations_on: 'some' is not allowed; use one of: flagged"),
        ("train.search", "bayes", r"train\.search: 'bayes' is not allowed; use one of: none, random, grid"),
        ("ingest.data_version", "v3", r"ingest\.data_version: 'v3' is not a simulator fleet version; .* v1, v2"),
        ("ingest.data_version", ["v1", "v9"], r"ingest\.data_version\[1\]: 'v9' is not a simulator fleet version"),
        ("ingest.data_version", [], r"ingest\.data_version: \[\] names no fleet"),
        (
            "monitor.feedback.classification.metric",
            "acuracy",
            r"monitor\.feedback\.classification\.metric: unknown metric; did you mean 'accuracy'",
        ),
        (  # each task's feedback metric is one of its own (issue 13 item 8)
            "monitor.feedback.regression.metric",
            "accuracy",
            r"monitor\.feedback\.regression\.metric: accuracy is a classification metric; regression metrics are",
        ),
        # issue 15 item 7: a file:// webhook crashed monitor
        ("notify.webhook_url", "file:///tmp/hook", r"notify\.webhook_url: 'file:///tmp/hook' is not an http\(s\) URL"),
        ("notify.webhook_url", "hooks.example.com/x", r"notify\.webhook_url: .* is not an http\(s\) URL"),
        ("notify.webhook_url", "https://", r"notify\.webhook_url: 'https://' is not an http\(s\) URL"),
    ],
)
def test_value_out_of_its_meaning(path: str, value: object, message: str) -> None:
    refused(changed(path, value), message)


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("split.test_size", 0.5),
        ("base.seed", 0),
        ("base.seed", 2**32 - 1),
        ("train.random_forest.n_jobs", -1),
        ("train.random_forest.max_features", 1.0),
        ("train.random_forest.max_features", None),
        ("train.random_forest.max_features", "log2"),
        ("validate.max_rows", 100),
        ("monitor.reference_rows", 0),
        ("ingest.data_version", ["v1", "v2"]),
        ("notify.webhook_url", "https://hooks.slack.com/services/T0/B0/x"),
        ("notify.webhook_url", "http://127.0.0.1:8080/hook"),
        ("export.max_abs_diff", 0),
        ("train.metrics_sample_rows", 0),
        ("export.parity_rows", 0),
    ],
)
def test_values_at_the_edge_of_their_meaning_load(path: str, value: object) -> None:
    parse_params(changed(path, value))


# --------------------------------------------------------------------------------------------- meaning: combinations
@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"train.model": "ridge"}, r"train\.model: 'ridge' does not support task 'classification' \(ingest\.task\)"),
        (
            {"ingest.task": "regression", "train.model": "logistic_regression"},
            r"train\.model: 'logistic_regression' does not support task 'regression' \(ingest\.task\); use one of: "
            r"hist_gradient_boosting, random_forest, ridge",
        ),
        ({"train.search_metric": "rmse"}, r"train\.search_metric: 'rmse' is not a classification metric; use one of"),
        (
            {"ingest.task": "regression", "train.search_metric": "accuracy"},
            r"train\.search_metric: 'accuracy' is not a regression metric; use one of: rmse, mae, r2",
        ),
        ({"train.search_metric": "f1_mcaro"}, r"'f1_mcaro' is not a classification metric; did you mean 'f1_macro'"),
        ({"validate.max_rows": 10}, r"validate\.max_rows: 10 is less than validate\.min_rows=100"),
        (
            {"promote.classification.min": {"accurcy": 0.8}},
            r"promote\.classification\.min\.accurcy: unknown metric; did you mean 'accuracy'\?",
        ),
        (
            {"promote.regression.max": {"rmce": 0.8}},
            r"promote\.regression\.max\.rmce: unknown metric; did you mean 'rmse'",
        ),
        ({"promote.classification.min_improvement": {"auc": 0.0}}, r"classification\.min_improvement\.auc: unknown"),
        (
            {"promote.classification.min": {"log_loss": 0.5}},
            r"promote\.classification\.min\.log_loss: log_loss is a loss .* promote\.classification\.max",
        ),
        (
            {"promote.regression.max": {"r2": 0.5}},
            r"promote\.regression\.max\.r2: r2 is a score .* promote\.regression\.min",
        ),
        ({"promote.classification.min": {"accuracy": "high"}}, r"classification\.min\.accuracy: expected a number"),
        # each task's thresholds are metrics of that task (issue 13 item 8)
        ({"promote.regression.min": {"accuracy": 0.5}}, r"promote\.regression\.min\.accuracy: accuracy is a class"),
        ({"promote.classification.max": {"rmse": 0.5}}, r"promote\.classification\.max\.rmse: rmse is a regress"),
        # the old, task-less layout is refused with the new keys
        ({"promote.min": {"accuracy": 0.8}}, r"promote\.min: unknown key; known keys here: classification, regression"),
    ],
)
def test_combination_that_cannot_work(changes: dict, message: str) -> None:
    raw = RAW
    for path, value in changes.items():
        raw = changed(path, value, raw=raw)
    refused(raw, message)


def test_each_task_with_its_own_models_and_metrics_loads() -> None:
    raw = changed("ingest.task", "regression", raw=changed("train.model", "ridge"))
    raw = changed("train.search_metric", "mae", raw=raw)
    params = parse_params(raw)
    assert (params.ingest.task, params.train.model, params.train.search_metric) == ("regression", "ridge", "mae")


def space(search: str, **models: dict) -> dict:
    raw = changed("train.search", search)
    return changed("train.search_space", SPACES | models, raw=raw)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (space("grid"), r"train\.search_space\.hist_gradient_boosting: empty, but train\.search is 'grid'"),
        (
            space("grid", hist_gradient_boosting={"learning_rte": [0.1]}),
            r"hist_gradient_boosting\.learning_rte: not a hyperparameter of hist_gradient_boosting; "
            r"did you mean 'learning_rate'\? known: max_iter, learning_rate",
        ),
        (space("none", ridge={"alpha": [1.0], "solver": ["svd"]}), r"ridge\.solver: not a hyperparameter of ridge"),
        (
            space("grid", hist_gradient_boosting={"max_leaf_nodes": [7, "x"]}),
            r"search_space\.hist_gradient_boosting\.max_leaf_nodes\[1\]: expected int, got 'x'",
        ),
        (
            space("grid", hist_gradient_boosting={"learning_rate": [0.1, -0.1]}),
            r"hist_gradient_boosting\.learning_rate\[1\]: -0\.1 is out of range; use a value > 0",
        ),
        (
            space("none", random_forest={"max_features": ["sqrt", "auto"]}),
            r"random_forest\.max_features\[1\]: 'auto' is not allowed",
        ),
        (
            space("grid", hist_gradient_boosting={"max_leaf_nodes": 7}),
            r"max_leaf_nodes: expected a non-empty list of values \(or \{low, high\}\), got 7",
        ),
        (space("grid", hist_gradient_boosting={"max_leaf_nodes": []}), r"max_leaf_nodes: expected a non-empty list"),
        (
            space("grid", hist_gradient_boosting={"learning_rate": {"low": 0.01, "high": 0.3}}),
            r"hist_gradient_boosting\.learning_rate: a \{low, high\} range needs train\.search: random",
        ),
        (
            space("random", hist_gradient_boosting={"learning_rate": {"low": 1}}),
            r"learning_rate: a range is \{low: number, high: number, log: bool\} with low < high",
        ),
        (
            space("random", hist_gradient_boosting={"learning_rate": {"low": 0.3, "high": 0.1}}),
            r"learning_rate: a range is \{low: number, high: number",
        ),
        (
            space("random", hist_gradient_boosting={"max_leaf_nodes": {"low": 8, "high": 64, "log": True}}),
            r"max_leaf_nodes: log ranges are for float hyperparameters",
        ),
        (
            space("random", hist_gradient_boosting={"learning_rate": {"low": 0, "high": 0.3}}),
            r"learning_rate\.low: 0\.0 is out of range; use a value > 0",
        ),
        (
            space("random", hist_gradient_boosting={"max_leaf_nodes": {"low": 1, "high": 64}}),
            r"max_leaf_nodes\.low: 1 is out of range; use a value >= 2",
        ),
    ],
)
def test_search_space_keys_values_and_ranges(raw: dict, message: str) -> None:
    refused(raw, message)


def test_search_space_values_are_typed_and_ranges_are_kept() -> None:
    raw = space(
        "random",
        hist_gradient_boosting={"learning_rate": {"low": 0.01, "high": 0.3, "log": True}, "max_iter": [50, 100]},
        logistic_regression={"C": [1, 10]},
        random_forest={"max_features": ["sqrt", 1]},
    )
    train = parse_params(raw).train
    assert train.search_space.logistic_regression == {"C": [1.0, 10.0]}
    assert all(isinstance(c, float) for c in train.search_space.logistic_regression["C"])
    assert train.search_space.random_forest["max_features"] == ["sqrt", 1.0]
    assert train.search_space.hist_gradient_boosting["learning_rate"] == {"low": 0.01, "high": 0.3, "log": True}
    assert train.search_space.hist_gradient_boosting["max_iter"] == [50, 100]
    # a range is allowed in another model's space while grid-searching this one (it is for random search)
    parse_params(space("grid", hist_gradient_boosting={"max_iter": [50]}, ridge={"alpha": {"low": 0.1, "high": 10}}))


def test_switching_the_task_is_one_change_and_picks_the_tasks_thresholds() -> None:
    # issue 13 item 8: `-S ingest.task=regression` alone gives a valid file whose gates are regression metrics
    for task in ("classification", "regression"):
        params = parse_params(changed("ingest.task", task))
        gates = params.promote.gates(params.ingest.task)
        named = {m for kind in ("min", "max", "min_improvement") for m in getattr(gates, kind)}
        assert named and named <= set(config.METRICS[task])
        assert params.monitor.feedback_rule(task).metric in config.METRICS[task]
    with pytest.raises(ValueError, match="task 'ranking' is not one of"):
        parse_params(RAW).promote.gates("ranking")


def test_the_repository_search_space_is_valid_for_every_method() -> None:
    for method in ("none", "random", "grid"):
        parse_params(changed("train.search", method))


# --------------------------------------------------------------------------------------------- sections built in code
def test_a_section_built_in_code_checks_the_same_rules() -> None:
    with pytest.raises(ParamsError, match=r"^params\.yaml: promote\.classification\.min\.accurcy: unknown metric"):
        ClassificationGates(min={"accurcy": 0.8}, max={}, min_improvement={})
    with pytest.raises(ParamsError, match=r"validate\.min_rows: 0 is out of range.*\nparams\.yaml: validate\.max_bad"):
        Validate(min_rows=0, max_rows=None, max_null_fraction=0.2, max_bad_row_fraction=2, min_class_rows=1,
                 row_expectations_on="flagged")  # fmt: skip
    with pytest.raises(ParamsError, match=r"notify\.webhook_url: 'ftp://x' is not an http\(s\) URL"):
        Notify(webhook_url="ftp://x", timeout_seconds=1)
    ok = RegressionGates(min={"r2": 0.2}, max={"rmse": 1}, min_improvement={})
    assert ok.max == {"rmse": 1.0}
    with pytest.raises(ParamsError, match=r"^params\.yaml: promote\.regression\.min\.accuracy: accuracy is a class"):
        Promote(classification=ClassificationGates(min={}, max={}, min_improvement={}),
                regression={"min": {"accuracy": 0.5}, "max": {}, "min_improvement": {}}, strict=False)  # fmt: skip


def test_model_copy_and_model_dump() -> None:
    params = parse_params(RAW)
    hgb = params.train.hist_gradient_boosting.model_copy(update={"max_iter": 5})
    assert hgb.max_iter == 5 and params.train.hist_gradient_boosting.max_iter == 200
    assert params.ingest.model_dump()["rows"] == 50_000
    assert parse_params(params.model_dump()) == params  # a dump loads back to the same params


# --------------------------------------------------------------------------------------------- homes of the names
def test_names_equal_their_homes() -> None:
    """config declares the names it checks against (to stay cheap to import); their homes must agree."""
    from lifecycle.data import telemetry
    from lifecycle.modeling import metrics

    assert config.METRICS == {"classification": metrics.CLASSIFICATION, "regression": metrics.REGRESSION}
    assert config.LOSSES == metrics.LOSSES
    assert set(config.TELEMETRY_VERSIONS) == set(telemetry._FLEETS)
    assert tuple(config.MODEL_TASKS) == config.Train.model_fields["model"].annotation.__args__
    assert config.Ingest.model_fields["task"].annotation.__args__ == config.TASKS
    assert list(config.sections()) == list(RAW)  # params.yaml's sections, in order


def test_import_is_cheap() -> None:
    """Importing lifecycle.config (every stage does, the server too) pulls in pydantic and PyYAML, not the data stack."""
    heavy = ("pandas", "numpy", "sklearn", "scipy", "pyarrow")
    code = f"import sys, lifecycle.config; print([m for m in {heavy!r} if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


# --------------------------------------------------------------------------------------------- a stage refuses them
def test_unknown_key_from_dvc_exp_set_param_stops_the_stage(tmp_path: Path) -> None:
    """`dvc exp run -S train.n_estimatrs=5` writes the key into params.yaml; the stage must refuse it."""
    proc = run_stage(tmp_path, changed("train.n_estimatrs", 5))
    assert proc.returncode == 1
    assert "train.n_estimatrs: unknown key" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "m.joblib").exists()


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        ("train.threads", 0, "train.threads: 0 is out of range; use a value >= 1"),  # `-S train.threads=0`
        ("trian", {"model": "ridge"}, "trian: unknown key; did you mean 'train'?"),  # `-S '+trian.model=ridge'`
    ],
)
def test_a_stage_run_with_such_params_exits_1_naming_the_key(
    tmp_path: Path, path: str, value: object, message: str
) -> None:
    proc = run_stage(tmp_path, changed(path, value))
    assert proc.returncode == 1
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "m.joblib").exists()
