"""The model card (lifecycle.reporting.model_card): every section, the lineage, nothing volatile."""

from __future__ import annotations

import json

from tests.test_promotion import META, METRICS, champion, decide, gate

from lifecycle.reporting.model_card import feature_reliance, lineage, render


def test_lineage_is_the_cards_inputs_and_what_model_json_records() -> None:
    meta = META | {
        "data": {"file": "train.parquet", "rows": 10, "sha256": "d" * 64},
        "model": dict(META["model"], file="model.joblib", sha256="m" * 64),
        "onnx": {"file": "model.onnx", "sha256": "o" * 64},
        "contract": {"file": "data/contracts/telemetry.yaml"},
    }
    assert lineage(meta, {"models/model.json": "j" * 64, "metrics.json": "x" * 64}) == [
        ("metrics.json", "x" * 64, "input of this card"),
        ("models/model.json", "j" * 64, "input of this card"),
        ("training data (train.parquet, 10 rows)", "d" * 64, "model.json"),
        ("model (model.joblib)", "m" * 64, "model.json"),
        ("ONNX graph (model.onnx)", "o" * 64, "model.json"),
        ("data contract (data/contracts/telemetry.yaml)", "-", "model.json (in git)"),
    ]


def test_card_has_every_section_and_nothing_volatile() -> None:
    decision = decide(gate(), METRICS, META, champion(0.93))
    report = {
        "contract": "data/contracts/telemetry.yaml",
        "success": True,
        "failures": [],
        "checks": [{"rule": "state_of_charge_pct.range", "level": "row", "column": "state_of_charge_pct",
                    "success": False, "unexpected_count": 3}],
    }  # fmt: skip
    card = render(
        META, METRICS, {"rows_checked": 4000, "success": True}, decision,
        {"source": "telemetry", "data_version": "v1"}, {"metrics.json": "x" * 64},
        ["../metrics/evaluate/plots/images/roc.png"],
        validation_report=report, validation_link="validation.md",
    )  # fmt: skip
    for heading in ("## Intended use and limits", "## Promotion decision", "## Model", "## Data", "## Schema",
                    "## Metrics", "### Plots", "## Validation summary", "## Lineage"):  # fmt: skip
        assert heading in card
    assert "**Decision: REJECT** (compared with champion v1.0.0)." in card
    assert "![ROC, one vs rest](../metrics/evaluate/plots/images/roc.png)" in card
    assert "| scikit-learn | 1.9.1 |" in card
    assert "rejected: accuracy 0.9 does not beat champion v1.0.0" in card
    assert "Data contract `data/contracts/telemetry.yaml`: passed. Full report: [validation.md](validation.md)." in card
    assert "| state_of_charge_pct.range | row | state_of_charge_pct | FAIL | 3 |" in card


def test_card_says_when_train_metrics_come_from_a_sample() -> None:
    decision = decide(gate(), METRICS, META, champion(0.93))

    def card(sample: dict) -> str:
        meta = META | {"metrics_sample": {"train": sample}}
        return render(meta, METRICS, {}, decision, {"source": "telemetry"}, {}, [])

    sampled = card({"rows": 50000, "sampled_from": 7946000, "seed": 42})
    assert "Train metrics: on a sample of 50,000 of the 7,946,000 training rows, drawn with seed 42" in sampled
    assert "Train metrics: on a sample" not in card({"rows": 900, "sampled_from": 900, "seed": 42})


def test_card_says_what_the_model_relies_on(tmp_path) -> None:
    custom = tmp_path / "plots" / "custom"
    custom.mkdir(parents=True)
    (custom / "shap_importance.json").write_text(
        json.dumps(
            [{"feature": "cell_temp_max_c", "mean_abs_shap": 1.25}, {"feature": "chemistry", "mean_abs_shap": 0.5}]
        )
    )
    (custom / "importance.json").write_text(json.dumps([{"feature": "chemistry", "importance": 0.02}]))
    rows = feature_reliance(tmp_path / "plots")
    assert rows == [
        {"feature": "cell_temp_max_c", "mean_abs_shap": 1.25, "importance": None},  # SHAP's order; absent: None
        {"feature": "chemistry", "mean_abs_shap": 0.5, "importance": 0.02},
    ]
    decision = decide(gate(), METRICS, META, champion(0.93))
    card = render(META, METRICS, {}, decision, {}, {}, [], reliance=rows)
    assert "### What the model relies on" in card
    assert "| cell_temp_max_c | 1.25 | - |" in card and "| chemistry | 0.5 | 0.02 |" in card
    assert feature_reliance(tmp_path / "elsewhere") == []
    assert "What the model relies on" not in render(META, METRICS, {}, decision, {}, {}, [])
