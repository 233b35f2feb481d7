"""dvc.yaml declares each evaluate plot once, as lifecycle.modeling.evaluation.PLOTS says, and `dvc plots show` draws
them without a "DVC failed to load some plots" warning on a classification run and on a regression run (real DVC
on a scratch repository holding what the evaluate stage writes)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from dvclive import Live
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import Pipeline
from tests.conftest import ROOT, run

from lifecycle.config import Evaluate
from lifecycle.modeling.evaluation import PLOTS, evaluate
from lifecycle.modeling.features import build_preprocessor
from lifecycle.schema import infer_schema
from lifecycle.stages.evaluate import log_to_live

DVC_YAML = yaml.safe_load((ROOT / "dvc.yaml").read_text())
PARAMS = yaml.safe_load((ROOT / "params.yaml").read_text())
CUSTOM = "${paths.metrics}/evaluate/plots/custom/"


def test_top_level_plots_are_the_evaluation_plots_each_once() -> None:
    declared = {}
    for item in DVC_YAML["plots"]:
        assert isinstance(item, dict), f"{item}: a bare path (a directory?) is drawn with the default template"
        ((path, props),) = item.items()
        assert path.startswith(CUSTOM) and path.endswith(".json")
        declared[path.removeprefix(CUSTOM).removesuffix(".json")] = props
    assert list(declared) == list(PLOTS)
    for name, spec in PLOTS.items():
        assert declared[name] == {"template": spec.template, "x": spec.x, "y": spec.y, "title": spec.title}
    for name, stage in DVC_YAML["stages"].items():
        assert "plots" not in stage, f"stage {name} declares plots: DVC draws those files a second time"


def _frame(task: str, n: int = 120) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    signal = rng.normal(size=n)
    target = np.where(signal > 0, "high", "low") if task == "classification" else 2 * signal
    return pd.DataFrame({"signal": signal, "noise": rng.normal(size=n), "y": target})


@pytest.mark.parametrize("task", ["classification", "regression"])
def test_plots_show_draws_the_tasks_plots_without_a_warning(task: str, tmp_path: Path) -> None:
    df = _frame(task)
    schema = infer_schema(df, "y", task)
    estimator = LogisticRegression() if task == "classification" else Ridge()
    model = Pipeline([("preprocess", build_preprocessor(schema)), ("model", estimator)]).fit(
        df[["signal", "noise"]], df["y"]
    )
    cfg = Evaluate(permutation_repeats=1, permutation_max_rows=50, shap_max_rows=50)
    result = evaluate(model, df, schema, cfg, seed=1, background=df[schema.features].head(20))
    repo = tmp_path / "repo"
    repo.mkdir()
    run(["git", "init", "-q"], repo)
    run(["dvc", "init", "-q"], repo)
    shutil.copytree(ROOT / ".dvc" / "plots", repo / ".dvc" / "plots", dirs_exist_ok=True)
    (repo / "params.yaml").write_text(yaml.safe_dump(PARAMS))
    (repo / "dvc.yaml").write_text(yaml.safe_dump({"plots": DVC_YAML["plots"]}))
    with Live(dir=str(repo / PARAMS["paths"]["metrics"] / "evaluate"), dvcyaml=False, save_dvc_exp=False,
              report=None) as live:  # fmt: skip
        log_to_live(result, live)
    proc = run(["dvc", "plots", "show", "--json"], repo)
    assert "failed to load" not in proc.stderr
    shown = json.loads(proc.stdout)
    assert "errors" not in shown, shown.get("errors")
    drawn = {Path(path).stem for path, renderers in shown["data"].items() if renderers}
    assert drawn == {name for name, spec in PLOTS.items() if spec.task in (task, None)}
    if task == "classification":
        (spec,) = shown["data"][f"{PARAMS['paths']['metrics']}/evaluate/plots/custom/confusion_matrix.json"]
        encoding = spec["content"]["spec"]["encoding"]  # the confusion template: a facet per revision
        assert (encoding["x"]["field"], encoding["y"]["field"]) == ("predicted", "actual")  # as the PNG's axes
