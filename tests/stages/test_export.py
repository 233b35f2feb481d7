"""The export stage: model.json = train.json + the ONNX parity report, model.onnx beside model.joblib; a model
that cannot convert is recorded (empty model.onnx, usable: false, reason) and the stage still succeeds; bad input
exits 1 with a clear message and leaves the previous outputs alone; a real `dvc repro` produces both files."""

from __future__ import annotations

import json
import subprocess
import sys
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
import pytest
import yaml
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer
from threadpoolctl import threadpool_limits

from lifecycle.config import Export, HistGradientBoosting
from lifecycle.data import telemetry
from lifecycle.errors import DataError
from lifecycle.io import sha256_file, write_json, write_table
from lifecycle.modeling.estimators import build_model
from lifecycle.modeling.features import build_preprocessor
from lifecycle.onnx.runtime import OnnxPredictor, load_predictor
from lifecycle.quality.contract import parse_contract
from lifecycle.schema import Schema, coerce_frame, infer_schema, read_schema
from lifecycle.stages.export import run

ROOT = Path(__file__).resolve().parents[2]
CFG = Export(enabled=True, opset=17, max_abs_diff=1e-4, min_label_agreement=0.999, parity_rows=0)
GOOD = {"onnx": b"previous good onnx", "meta": b'{"previous": "model.json"}\n'}


@pytest.fixture(scope="module", autouse=True)
def one_openmp_thread() -> Iterator[None]:
    """HistGradientBoosting fits and predicts with OpenMP; on a busy 2-core machine (pytest -n 2, other jobs) its
    threads contend and one-row predictions take 100x longer. One thread keeps the tests fast and the sums stable."""
    with threadpool_limits(limits=1):
        yield


def write_model(folder: Path, pipeline: Pipeline) -> dict[str, Any]:
    """model.joblib and a train.json as the train stage writes them (the keys export must keep)."""
    joblib.dump(pipeline, folder / "model.joblib", compress=3)
    model = {"file": "model.joblib", "sha256": sha256_file(folder / "model.joblib"), "bytes": 1, "family": "x"}
    meta = {
        "model": model | {"task": "classification", "hyperparameters": {}, "seed": 1, "search": {}},
        "data": {"file": "train.parquet", "sha256": "0" * 64, "rows": 2000, "target_distribution": {}},
        "metrics": {"train": {"accuracy": 0.9}},
        "packages": {"scikit-learn": "x"},
        "schema": read_schema(folder / "schema.json").to_dict(),
    }
    write_json(folder / "train.json", meta)
    return meta


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with schema.json, test.parquet, model.joblib and train.json of a small HistGradientBoosting."""
    folder = tmp_path_factory.mktemp("export")
    raw = telemetry.generate(rows=2500, version="v1", seed=3)
    schema = infer_schema(raw, telemetry.TARGET, "classification")
    df = coerce_frame(raw, schema)
    train, test = df.iloc[:2000], df.iloc[2000:]
    write_json(folder / "schema.json", schema.to_dict())
    write_table(test, folder / "test.parquet")
    params = types.SimpleNamespace(  # the train params section as build_model reads it
        model="hist_gradient_boosting",
        hist_gradient_boosting=HistGradientBoosting(
            max_iter=20, learning_rate=0.1, max_leaf_nodes=31, min_samples_leaf=20, l2_regularization=0.0
        ),
    )
    pipeline = Pipeline(
        [("preprocess", build_preprocessor(schema)), ("model", build_model(params, schema.task, seed=1))]
    ).fit(train[schema.features], train[schema.target])
    write_model(folder, pipeline)
    return folder


def export(folder: Path, cfg: Export = CFG) -> dict[str, Any]:
    return run(
        folder / "model.joblib",
        folder / "train.json",
        folder / "test.parquet",
        folder / "schema.json",
        folder / "out" / "model.onnx",
        folder / "out" / "model.json",
        cfg,
        seed=0,
    ).to_dict()


def copy_inputs(src: Path, dest: Path) -> Path:
    for name in ("model.joblib", "train.json", "test.parquet", "schema.json"):
        (dest / name).write_bytes((src / name).read_bytes())
    return dest


def test_model_json_is_train_json_plus_the_parity_report(inputs: Path, tmp_path: Path) -> None:
    folder = copy_inputs(inputs, tmp_path)
    content = export(folder)
    train_meta = json.loads((folder / "train.json").read_text())
    written = json.loads((folder / "out/model.json").read_text())
    assert written == content
    assert {k: v for k, v in written.items() if k != "onnx"} == train_meta  # train's keys unchanged
    section = written["onnx"]
    assert section["usable"] is True and section["reason"] == ""
    assert section["file"] == "model.onnx"
    assert section["sha256"] == sha256_file(folder / "out/model.onnx")
    assert section["bytes"] == (folder / "out/model.onnx").stat().st_size > 0
    assert section["parity"]["rows"] == 500 and section["parity"]["passed"] is True
    assert section["parity"]["label_agreement"] == 1.0
    assert section["parity"]["thresholds"] == {"max_abs_diff": 1e-4, "min_label_agreement": 0.999}
    assert set(section["packages"]) == {"skl2onnx", "onnx", "onnxruntime"}
    # what the server does with it
    predictor, why = load_predictor(written, folder / "out/model.onnx", read_schema(folder / "schema.json"))
    assert isinstance(predictor, OnnxPredictor) and why == ""


def test_the_contracts_numeric_bounds_go_into_model_json(inputs: Path, tmp_path: Path) -> None:
    folder = copy_inputs(inputs, tmp_path)
    contract = parse_contract(
        {
            "dataset": "telemetry",
            "columns": {
                "charge_cycles": {"type": "float", "min": 0, "max": 10000},
                "ambient_temp_c": {"type": "float", "max": 60},  # one side open
                "pack_voltage_v": {"type": "float"},  # no bounds: not listed
                "charge_mode": {"type": "str", "values": ["ac", "dc"]},  # not numeric: not listed
                "not_a_feature": {"type": "float", "min": 0, "max": 1},
            },
        },
        "c.yaml",
    )
    content = run(
        folder / "model.joblib", folder / "train.json", folder / "test.parquet", folder / "schema.json",
        folder / "out" / "model.onnx", folder / "out" / "model.json", CFG, seed=0, contract=contract,
    ).to_dict()  # fmt: skip
    assert content["contract"] == {
        "file": "c.yaml",
        "dataset": "telemetry",
        "limits": {"charge_cycles": [0.0, 10000.0], "ambient_temp_c": [None, 60.0]},
    }
    assert json.loads((folder / "out/model.json").read_text())["contract"] == content["contract"]


def test_outputs_are_byte_identical_across_runs(inputs: Path, tmp_path: Path) -> None:
    folder = copy_inputs(inputs, tmp_path)
    export(folder)
    first = [(folder / "out" / n).read_bytes() for n in ("model.onnx", "model.json")]
    export(folder)
    assert [(folder / "out" / n).read_bytes() for n in ("model.onnx", "model.json")] == first


def test_a_pipeline_that_cannot_convert_is_recorded_and_the_stage_goes_on(inputs: Path, tmp_path: Path) -> None:
    folder = copy_inputs(inputs, tmp_path)
    fitted = joblib.load(folder / "model.joblib")
    custom = Pipeline(
        [("preprocess", fitted.steps[0][1]), ("clip", FunctionTransformer(np.tanh)), ("model", fitted.steps[1][1])]
    )
    write_model(folder, custom)
    content = export(folder)
    assert (folder / "out/model.onnx").read_bytes() == b""  # DVC needs the output; empty = no usable graph
    section = content["onnx"]
    assert section["usable"] is False and section["sha256"] is None and section["bytes"] == 0
    assert section["parity"] is None
    assert "skl2onnx cannot convert the pipeline" in section["reason"] and "FunctionTransformer" in section["reason"]
    predictor, why = load_predictor(content, folder / "out/model.onnx", read_schema(folder / "schema.json"))
    assert predictor is None and why.startswith("ONNX model not usable: skl2onnx cannot convert")


def test_failed_parity_ships_no_graph(inputs: Path, tmp_path: Path) -> None:
    folder = copy_inputs(inputs, tmp_path)
    content = export(folder, Export(enabled=True, opset=17, max_abs_diff=0.0, min_label_agreement=1.0, parity_rows=0))
    assert (folder / "out/model.onnx").read_bytes() == b""
    assert content["onnx"]["usable"] is False and content["onnx"]["parity"]["passed"] is False
    assert content["onnx"]["reason"].startswith("parity failed on the test split")


# --------------------------------------------------------------------------------------------- bad input
def test_a_model_that_is_not_the_one_train_recorded_is_refused(inputs: Path, tmp_path: Path) -> None:
    folder = copy_inputs(inputs, tmp_path)
    meta = json.loads((folder / "train.json").read_text())
    meta["model"]["sha256"] = "0" * 64
    write_json(folder / "train.json", meta)
    with pytest.raises(DataError, match=r"model.joblib: its sha256 .* does not match model.sha256 000000000000"):
        export(folder)


def test_train_metadata_with_an_onnx_key_is_refused(inputs: Path, tmp_path: Path) -> None:
    folder = copy_inputs(inputs, tmp_path)
    onnx = {"file": "model.onnx", "sha256": None, "bytes": 0, "usable": False, "opset": 17, "ml_opset": 3}
    onnx |= {"inputs": {}, "packages": {}, "parity": None, "reason": "from an earlier export"}
    meta = json.loads((folder / "train.json").read_text()) | {"onnx": onnx}
    write_json(folder / "train.json", meta)
    with pytest.raises(DataError, match="already has a key 'onnx'; only export writes it"):
        export(folder)


def test_a_test_split_without_a_feature_is_refused(inputs: Path, tmp_path: Path) -> None:
    folder = copy_inputs(inputs, tmp_path)
    write_table(pd.read_parquet(folder / "test.parquet").drop(columns=["chemistry"]), folder / "test.parquet")
    with pytest.raises(DataError, match=r"test.parquet: test split lacks feature column\(s\) \['chemistry'\]"):
        export(folder)


def test_an_empty_test_split_is_refused(inputs: Path, tmp_path: Path) -> None:
    folder = copy_inputs(inputs, tmp_path)
    write_table(pd.read_parquet(folder / "test.parquet").head(0), folder / "test.parquet")
    with pytest.raises(DataError, match=r"test\.parquet: test split has no rows"):
        export(folder)


def test_bad_input_exits_1_and_keeps_the_previous_outputs(inputs: Path, tmp_path: Path) -> None:
    folder = copy_inputs(inputs, tmp_path)
    (folder / "model.joblib").unlink()
    (folder / "out").mkdir()
    (folder / "out/model.onnx").write_bytes(GOOD["onnx"])
    (folder / "out/model.json").write_bytes(GOOD["meta"])
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    (folder / "params.yaml").write_text(yaml.safe_dump(params))
    args = ["--model", "model.joblib", "--train-meta", "train.json", "--data", "test.parquet"]
    args += ["--schema", "schema.json", "--onnx", "out/model.onnx", "--meta", "out/model.json"]
    proc = subprocess.run(
        [sys.executable, "-m", "lifecycle.stages.export", "--params", "params.yaml", *args],
        cwd=folder,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 1
    assert "model.joblib: model not found; run `dvc repro train`" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert (folder / "out/model.onnx").read_bytes() == GOOD["onnx"]
    assert (folder / "out/model.json").read_bytes() == GOOD["meta"]


# --------------------------------------------------------------------------------------------- dvc repro
@pytest.mark.slow
def test_dvc_repro_writes_model_onnx_beside_the_joblib(built_repo: Path) -> None:
    models = built_repo / "models"
    meta = json.loads((models / "model.json").read_text())
    train_meta = json.loads((models / "train.json").read_text())
    assert {k: v for k, v in meta.items() if k not in ("onnx", "contract")} == train_meta
    assert meta["model"]["sha256"] == sha256_file(models / "model.joblib")
    # the telemetry contract's bounds on the numeric features: its physical limits, for the server
    assert meta["contract"]["file"] == "data/contracts/telemetry.yaml"
    numeric = Schema.from_dict(meta["schema"]).numeric
    limits = {k: tuple(v) for k, v in meta["contract"]["limits"].items()}
    assert set(limits) <= set(numeric)
    assert {k: v for k, v in telemetry.PHYSICAL_LIMITS.items() if k in numeric}.items() <= limits.items()
    assert meta["onnx"]["usable"] is True, meta["onnx"]["reason"]
    assert meta["onnx"]["sha256"] == sha256_file(models / "model.onnx")
    assert meta["onnx"]["parity"]["passed"] is True
    assert meta["onnx"]["parity"]["rows"] == len(pd.read_parquet(built_repo / "data/processed/test.parquet"))
