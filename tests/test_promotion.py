"""The promotion gate (lifecycle.promotion): thresholds, the comparison with the champion, the decision record."""

from __future__ import annotations

from typing import Any

import pytest

from lifecycle.artifact import ModelMetadata
from lifecycle.config import ClassificationGates, Promote, RegressionGates
from lifecycle.errors import DataError, ParamsError
from lifecycle.promotion import decide as decide_with

SHA = "a" * 64
METRICS = {"accuracy": 0.9, "balanced_accuracy": 0.85, "f1_macro": 0.86, "roc_auc": 0.98, "log_loss": 0.3}
META = {  # a model.json as train + export write it (the parts the gate and the card read, the rest minimal)
    "model": {
        "file": "model.joblib", "sha256": SHA, "bytes": 1000, "family": "hist_gradient_boosting",
        "task": "classification", "hyperparameters": {}, "seed": 42, "search": {"method": "none", "best_params": {}},
    },
    "data": {"file": "train.parquet", "rows": 3200, "sha256": "d" * 64, "target_distribution": {"none": 2000}},
    "packages": {"scikit-learn": "1.9.1"},
    "schema": {"target": "fault", "task": "classification", "columns": [{"name": "x", "role": "numeric"}]},
    "metrics": {"train": {"accuracy": 0.99}},
}  # fmt: skip
NO_CHAMPION = {"artifact": "model", "metrics": {}, "model_sha256": None, "task": None, "version": None}


REGRESSION_GATES = {"min": {"r2": 0.25}, "max": {"rmse": 0.8, "mae": 0.6}, "min_improvement": {"rmse": 0.0}}


def gate(regression: dict | None = None, **changes: Any) -> Promote:
    """``promote`` with the classification thresholds changed by ``changes`` (and the regression ones given)."""
    base = {"min": {"accuracy": 0.85, "f1_macro": 0.75}, "max": {"log_loss": 0.5}, "min_improvement": {"accuracy": 0.0}}
    return Promote(
        classification=ClassificationGates(**(base | changes)),
        regression=RegressionGates(**(REGRESSION_GATES | (regression or {}))),
        strict=False,
    )


def decide(cfg: Promote, metrics: dict, meta: dict, champ: dict, **kw: Any) -> dict[str, Any]:
    """:func:`lifecycle.promotion.decide` with the candidate's model.json given as a mapping."""
    return decide_with(cfg, metrics, ModelMetadata.from_dict(meta), champ, **kw)


def champion(accuracy: float, sha: str = "b" * 64, version: str = "v1.0.0") -> dict[str, Any]:
    return {"artifact": "model", "metrics": METRICS | {"accuracy": accuracy}, "model_sha256": sha, "task": "classification", "version": version}  # fmt: skip


# --------------------------------------------------------------------------------------------- decisions
def test_better_model_is_promoted_over_the_champion() -> None:
    decision = decide(gate(), METRICS, META, champion(0.88))
    assert decision["decision"] == "promote"
    assert decision["reasons"] == []
    assert decision["champion"] == {
        "artifact": "model",
        "version": "v1.0.0",
        "model_sha256": "b" * 64,
        "metrics": dict(sorted((METRICS | {"accuracy": 0.88}).items())),
    }
    improvement = next(c for c in decision["criteria"] if c["kind"] == "improvement")
    assert improvement == {
        "metric": "accuracy", "kind": "improvement", "observed": 0.9, "threshold": 0.0, "champion": 0.88,
        "passed": True, "message": improvement["message"],
    }  # fmt: skip
    assert "beats champion v1.0.0 (0.88)" in improvement["message"]
    assert all(c["passed"] for c in decision["criteria"])


def test_worse_model_is_rejected_with_the_reason() -> None:
    decision = decide(gate(), METRICS, META, champion(0.93))
    assert decision["decision"] == "reject"
    assert decision["reasons"] == [
        "accuracy 0.9 does not beat champion v1.0.0 (0.93) by the required 0.0 (higher is better; gain -0.03)"
    ]
    failed = [c for c in decision["criteria"] if not c["passed"]]
    assert [(c["metric"], c["kind"], c["observed"], c["champion"]) for c in failed] == [
        ("accuracy", "improvement", 0.9, 0.93)
    ]


def test_threshold_failures_name_metric_observed_and_bound() -> None:
    decision = decide(gate(min={"accuracy": 0.95}, max={"log_loss": 0.25}), METRICS, META, NO_CHAMPION)
    assert decision["decision"] == "reject"
    assert decision["reasons"] == ["accuracy 0.9 < min 0.95", "log_loss 0.3 > max 0.25"]
    assert decision["champion"] is None


def test_loss_improvement_goes_down_and_a_margin_is_required() -> None:
    better = decide(
        gate(min_improvement={"log_loss": 0.05}), METRICS, META, champion(0.9) | {"metrics": {"log_loss": 0.36}}
    )
    worse = decide(
        gate(min_improvement={"log_loss": 0.05}), METRICS, META, champion(0.9) | {"metrics": {"log_loss": 0.33}}
    )
    assert better["decision"] == "promote"
    assert worse["decision"] == "reject"
    assert "lower is better" in worse["reasons"][0]


def test_the_champion_itself_passes_the_improvement_rule() -> None:
    decision = decide(gate(min_improvement={"accuracy": 0.01}), METRICS, META, champion(0.9, sha=SHA))
    assert decision["decision"] == "promote"
    assert "is the champion v1.0.0 itself" in decision["criteria"][-1]["message"]


def test_without_champion_improvement_passes_and_says_so() -> None:
    decision = decide(gate(), METRICS, META, NO_CHAMPION)
    assert decision["decision"] == "promote"
    assert "no champion yet" in decision["criteria"][-1]["message"]


def test_metric_missing_from_metrics_file_is_an_error_naming_it() -> None:
    metrics = {k: v for k, v in METRICS.items() if k != "f1_macro"}
    with pytest.raises(
        DataError,
        match=r"metrics\.json: metric\(s\) f1_macro named in promote\.classification\.min\.f1_macro are missing",
    ):
        decide(gate(), metrics, META, NO_CHAMPION, metrics_source="metrics.json")


def test_metric_missing_from_the_champion_is_an_error_naming_it() -> None:
    with pytest.raises(DataError, match=r"champion v1\.0\.0: metric roc_auc .* missing"):
        decide(gate(min_improvement={"roc_auc": 0.0}), METRICS, META, champion(0.9) | {"metrics": {"accuracy": 0.9}})


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"min": {"accurcy": 0.8}},
            r"promote\.classification\.min\.accurcy: unknown metric; did you mean 'accuracy'\?",
        ),
        (
            {"min": {"log_loss": 0.5}},
            r"classification\.min\.log_loss: log_loss is a loss .* promote\.classification\.max",
        ),
        (
            {"max": {"accuracy": 0.5}},
            r"classification\.max\.accuracy: accuracy is a score .* promote\.classification\.min",
        ),
        ({"min": {"accuracy": "high"}}, r"promote\.classification\.min\.accuracy: expected a number, got 'high'"),
        ({"min": {"r2": 0.2}}, r"promote\.classification\.min\.r2: r2 is a regression metric; classification metrics"),
        ({"max": {"rmse": 0.2}}, r"promote\.classification\.max\.rmse: rmse is a regression metric"),
    ],
)
def test_bad_thresholds_are_params_errors(changes: dict, message: str) -> None:
    with pytest.raises(ParamsError, match=message):
        decide(gate(**changes), METRICS, META, NO_CHAMPION)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"min": {"accuracy": 0.8}}, r"promote\.regression\.min\.accuracy: accuracy is a classification metric"),
        ({"max": {"log_loss": 0.8}}, r"promote\.regression\.max\.log_loss: log_loss is a classification metric"),
        ({"max": {"r2": 0.8}}, r"promote\.regression\.max\.r2: r2 is a score .* promote\.regression\.min"),
        ({"min_improvement": {"rmes": 0.0}}, r"regression\.min_improvement\.rmes: unknown metric; did you mean 'rmse'"),
    ],
)
def test_regression_thresholds_are_regression_metrics(changes: dict, message: str) -> None:
    with pytest.raises(ParamsError, match=message):
        gate(regression=changes)


REGRESSION_META = META | {"model": META["model"] | {"task": "regression"}}
REGRESSION_METRICS = {"rmse": 0.7, "mae": 0.55, "r2": 0.3}


def test_the_models_task_picks_its_own_thresholds() -> None:
    cfg = gate()  # the same params: a classifier meets promote.classification, a regressor promote.regression
    classified = decide(cfg, METRICS, META, NO_CHAMPION)
    regressed = decide(cfg, REGRESSION_METRICS, REGRESSION_META, NO_CHAMPION)
    assert (classified["gates"], regressed["gates"]) == ("promote.classification", "promote.regression")
    assert {c["metric"] for c in classified["criteria"]} == {"accuracy", "f1_macro", "log_loss"}
    assert {c["metric"] for c in regressed["criteria"]} == {"r2", "rmse", "mae"}
    assert regressed["decision"] == "promote"
    worse = decide(cfg, REGRESSION_METRICS | {"rmse": 0.9}, REGRESSION_META, NO_CHAMPION)
    assert worse["reasons"] == ["rmse 0.9 > max 0.8"]
    loose = decide(gate(regression={"max": {}}), REGRESSION_METRICS | {"rmse": 9.0}, REGRESSION_META, NO_CHAMPION)
    assert loose["decision"] == "promote"


def test_metrics_of_the_other_task_say_the_model_was_trained_for_it() -> None:
    with pytest.raises(
        DataError, match=r"r2.*promote\.regression\.min\.r2.*classification metrics for a regression model"
    ):
        decide(gate(), METRICS, REGRESSION_META, NO_CHAMPION)


@pytest.mark.parametrize(
    ("metrics", "meta", "champ_task", "metric"),
    [(METRICS, META, "regression", "accuracy"), (REGRESSION_METRICS, REGRESSION_META, "classification", "rmse")],
)
def test_a_champion_of_the_other_task_fails_the_improvement_with_the_fix(metrics, meta, champ_task, metric) -> None:
    decision = decide(gate(), metrics, meta, champion(0.9) | {"task": champ_task})
    assert decision["decision"] == "reject"
    assert len(decision["reasons"]) == 1
    assert f"{metric} " in decision["reasons"][0]
    assert f"champion v1.0.0 is a {champ_task} model" in decision["reasons"][0]
    assert "reset the champion (`python -m lifecycle.registry reset-champion`)" in decision["reasons"][0]
    without = {"min_improvement": {}}
    kept = decide(gate(**without, regression=without), metrics, meta, champion(0.9) | {"task": champ_task})
    assert kept["decision"] == "promote"


def test_gates_are_the_fixed_thresholds_of_the_active_task() -> None:
    """What reports show as promotion gates (lifecycle.reporting.pr_report reads them through this one function):
    ``promote.<ingest.task>``'s min and max, never the other task's."""
    from lifecycle.config import load_params
    from lifecycle.promotion import gates
    from tests.conftest import ROOT

    params = load_params(ROOT / "params.yaml")
    cfg = gate(min={"f1_macro": 0.7, "accuracy": 0.9}, regression={"min": {"r2": 0.3}, "max": {"rmse": 2}})
    classified = params.model_copy(update={"promote": cfg})
    assert gates(classified) == {"accuracy": (">=", 0.9), "f1_macro": (">=", 0.7), "log_loss": ("<=", 0.5)}
    assert list(gates(classified)) == ["accuracy", "f1_macro", "log_loss"]  # a stable order
    ingest = params.ingest.model_copy(update={"task": "regression"})
    regressed = classified.model_copy(update={"ingest": ingest})
    assert gates(regressed) == {"r2": (">=", 0.3), "rmse": ("<=", 2.0)}
    without = params.model_copy(update={"promote": gate(min={}, max={}, min_improvement={"accuracy": 0.01})})
    assert gates(without) == {}  # min_improvement compares with the champion: not a fixed gate
