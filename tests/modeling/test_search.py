"""Hyperparameter search inside training (lifecycle.modeling.search): train.search = none | random | grid, the
candidates and their CV scores, and bad search spaces refused with the dotted key."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml
from tests.helpers import SMALL_SPACE

from lifecycle.config import Params, parse_params
from lifecycle.data.telemetry import generate
from lifecycle.errors import DataError, ParamsError
from lifecycle.modeling.pipeline import build_pipeline
from lifecycle.modeling.search import run_search, search_space
from lifecycle.schema import infer_schema

ROOT = Path(__file__).resolve().parents[2]
RAW = yaml.safe_load((ROOT / "params.yaml").read_text())


def make_params(**train: object) -> Params:
    raw = copy.deepcopy(RAW)
    raw["train"]["hist_gradient_boosting"]["max_iter"] = 15
    raw["train"]["random_forest"] |= {"n_estimators": 10, "n_jobs": 1}
    raw["train"].update(train)
    return parse_params(raw)


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def data() -> tuple:
    df = generate(1200, "v1", 7, 0.0, 0.0, 0.0).drop_duplicates()
    schema = infer_schema(df, target="fault", task="classification")
    return df, schema


def features(data: tuple) -> tuple:
    df, schema = data
    return df[schema.features], df[schema.target], schema


def test_none_searches_nothing(data) -> None:
    params = make_params()
    X, y, schema = features(data)
    pipeline = build_pipeline(schema, params)
    assert run_search(pipeline, X, y, params.train, schema.task, 42) == {"method": "none", "best_params": {}}


def test_grid_tries_every_candidate_and_picks_the_best(data) -> None:
    params = make_params(search="grid", cv_folds=2, search_space=SMALL_SPACE)
    X, y, schema = features(data)
    result = run_search(build_pipeline(schema, params), X, y, params.train, schema.task, 42)
    assert result["method"] == "grid"
    assert result["metric"] == "f1_macro"
    assert len(result["candidates"]) == 4
    assert {tuple(sorted(c["params"].items())) for c in result["candidates"]} == {
        (("learning_rate", lr), ("max_leaf_nodes", leaves)) for lr in (0.05, 0.2) for leaves in (7, 15)
    }
    best = result["candidates"][0]
    assert best["rank"] == 1
    assert best["mean"] == max(c["mean"] for c in result["candidates"])
    assert result["best_params"] == best["params"]
    assert len(best["folds"]) == 2


def test_random_samples_ranges_reproducibly_and_flips_loss_sign(data) -> None:
    space = dict(SMALL_SPACE, hist_gradient_boosting={"learning_rate": {"low": 0.01, "high": 0.3, "log": True}})
    params = make_params(search="random", cv_folds=2, search_iterations=3, search_metric="log_loss", search_space=space)
    X, y, schema = features(data)
    first = run_search(build_pipeline(schema, params), X, y, params.train, schema.task, 42)
    second = run_search(build_pipeline(schema, params), X, y, params.train, schema.task, 42)
    assert first == second  # seeded sampling and folds
    assert len(first["candidates"]) == 3
    rates = [c["params"]["learning_rate"] for c in first["candidates"]]
    assert all(0.01 <= r <= 0.3 for r in rates)
    assert all(c["mean"] > 0 for c in first["candidates"])  # log loss is reported positive
    assert first["best_score"] == min(c["mean"] for c in first["candidates"])  # ... and lower is better


# ------------------------------------------------------------------------------------------------ bad input
@pytest.mark.parametrize(
    ("train", "message"),
    [
        ({"search": "grid", "search_space": SMALL_SPACE | {"hist_gradient_boosting": {}}}, r"empty, but train.search"),
        (
            {"search": "grid", "search_space": SMALL_SPACE | {"hist_gradient_boosting": {"learning_rte": [0.1]}}},
            r"hist_gradient_boosting\.learning_rte: not a hyperparameter of hist_gradient_boosting",
        ),
        (
            {"search": "grid", "search_space": SMALL_SPACE | {"hist_gradient_boosting": {"max_leaf_nodes": [7, "x"]}}},
            r"max_leaf_nodes\[1\]: expected int, got 'x'",
        ),
        (
            {"search": "grid", "search_space": SMALL_SPACE | {"hist_gradient_boosting": {"max_leaf_nodes": 7}}},
            r"max_leaf_nodes: expected a non-empty list",
        ),
        (
            {
                "search": "grid",
                "search_space": SMALL_SPACE | {"hist_gradient_boosting": {"learning_rate": {"low": 0.1}}},
            },
            r"needs train.search: random",
        ),
        (
            {
                "search": "random",
                "search_space": SMALL_SPACE | {"hist_gradient_boosting": {"learning_rate": {"low": 1}}},
            },
            r"learning_rate: a range is \{low: number, high: number",
        ),
    ],
)
def test_bad_search_space(train: dict, message: str) -> None:
    with pytest.raises(ParamsError, match=message):
        search_space(make_params(**train).train)


def test_bad_search_method_is_refused_by_the_loader() -> None:
    with pytest.raises(ParamsError, match=r"train\.search: 'bayes' is not allowed; use one of: none, random, grid"):
        make_params(search="bayes")


def test_class_smaller_than_the_folds(data) -> None:
    df, schema = data
    rare = df[df[schema.target] != "none"].groupby(schema.target).head(2)
    params = make_params(search="grid", cv_folds=3, search_space=SMALL_SPACE)
    pipeline = build_pipeline(schema, params)
    with pytest.raises(DataError, match=r"fewer than train\.cv_folds=3"):
        run_search(pipeline, rare[schema.features], rare[schema.target], params.train, schema.task, 42)
