"""params.yaml -> typed sections: unknown, missing and mistyped keys fail with their dotted name."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from lifecycle.config import load_params, parse_params
from lifecycle.errors import ParamsError

ROOT = Path(__file__).resolve().parents[2]
RAW = yaml.safe_load((ROOT / "params.yaml").read_text())


def changed(path: str, value: object = None, delete: bool = False) -> dict:
    raw = copy.deepcopy(RAW)
    *parents, last = path.split(".")
    node = raw
    for key in parents:
        node = node[key]
    if delete:
        del node[last]
    else:
        node[last] = value
    return raw


def test_repository_params_load() -> None:
    params = load_params(ROOT / "params.yaml")
    assert params.train.model == "hist_gradient_boosting"
    assert params.ingest.rows == 50_000
    assert params.base.seed == 42


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
    with pytest.raises(AttributeError):
        params.train.model = "ridge"  # type: ignore[misc]


def test_unknown_key_from_dvc_exp_set_param_stops_the_stage(tmp_path: Path) -> None:
    """`dvc exp run -S train.n_estimatrs=5` writes the key into params.yaml; the stage must refuse it."""
    import subprocess
    import sys

    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump(changed("train.n_estimatrs", 5)))
    proc = subprocess.run(
        [sys.executable, "-m", "lifecycle.stages.train", "--params", str(params), "--data", "x.parquet",
         "--schema", "s.json", "--model", "m.joblib", "--meta", "m.json"],
        cwd=tmp_path, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert proc.returncode == 1
    assert "train.n_estimatrs: unknown key" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "m.joblib").exists()
