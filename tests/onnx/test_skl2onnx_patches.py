"""The skl2onnx workarounds: fail loudly when skl2onnx changes what they reach into (pinned version, the signature
and call path of ``tree_ensemble.add_node``, the registered ``SimpleImputer`` converter), fail when a workaround is
no longer needed (then drop it), and show that the exact float64 thresholds survive a float32 tie."""

from __future__ import annotations

import inspect
import subprocess
import sys
import textwrap
import tomllib
from importlib import metadata

import numpy as np
import onnx
import pytest
from onnx import AttributeProto, numpy_helper
from sklearn.model_selection import train_test_split
from tests.onnx.conftest import ROOT, THRESHOLDS, fit, red_wine, split

from lifecycle.onnx import skl2onnx_patches
from lifecycle.onnx.convert import convert, export_pipeline
from lifecycle.onnx.skl2onnx_patches import TREE_OPS
from lifecycle.schema import infer_schema

ADD_NODE_PARAMETERS = [  # skl2onnx 1.20.0; the wrapper reads positions 0 (attr_pairs) and 7 (value)
    "attr_pairs", "is_classifier", "tree_id", "tree_weight", "node_id", "feature_id", "mode", "value",
    "true_child_id", "false_child_id", "weights", "weight_id_bias", "leaf_weights_are_counts",
    "adjust_threshold_for_sklearn", "dtype", "nodes_missing_value_tracks_true",
]  # fmt: skip


def test_skl2onnx_is_the_pinned_version() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert f"skl2onnx=={skl2onnx_patches.SKL2ONNX_VERSION}" in pyproject["project"]["dependencies"]
    assert metadata.version("skl2onnx") == skl2onnx_patches.SKL2ONNX_VERSION


def test_the_internals_the_patches_reach_into_are_unchanged() -> None:
    from skl2onnx import _supported_operators
    from skl2onnx.common import _registration, tree_ensemble
    from sklearn.impute import SimpleImputer

    skl2onnx_patches.patch_skl2onnx()
    original = tree_ensemble.add_node.__wrapped__
    assert list(inspect.signature(original).parameters) == ADD_NODE_PARAMETERS
    # the tree converters call add_node through tree_ensemble's globals (so replacing the attribute reaches them),
    # HistGradientBoosting passing the bool as the keyword the wrapper casts
    for builder in (tree_ensemble.add_tree_to_attribute_pairs,
                    tree_ensemble.add_tree_to_attribute_pairs_hist_gradient_boosting):  # fmt: skip
        assert builder.__globals__ is vars(tree_ensemble) and "add_node" in builder.__code__.co_names
    hgb_source = inspect.getsource(tree_ensemble.add_tree_to_attribute_pairs_hist_gradient_boosting)
    assert "nodes_missing_value_tracks_true=missing" in hgb_source
    # SimpleImputer converts through the registered converter named SklearnSimpleImputer, now ours
    assert _supported_operators.sklearn_operator_name_map[SimpleImputer] == "SklearnSimpleImputer"
    assert _registration.get_converter("SklearnSimpleImputer")._fct is skl2onnx_patches._convert_imputer


def test_each_workaround_is_still_needed() -> None:
    """Plain skl2onnx (a fresh process, nothing patched) still fails where the patches step in."""
    script = textwrap.dedent(
        """
        import numpy as np, onnxruntime as ort
        from sklearn.ensemble import HistGradientBoostingClassifier
        from sklearn.impute import SimpleImputer
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from skl2onnx import convert_sklearn
        from skl2onnx.common.data_types import DoubleTensorType

        rng = np.random.default_rng(0)
        X = rng.normal(size=(200, 3)); y = (X[:, 0] > 0).astype(int)
        def onnx(estimator):
            pipeline = make_pipeline(SimpleImputer(strategy="median"), estimator).fit(X, y)
            model = convert_sklearn(pipeline, initial_types=[("x", DoubleTensorType([None, 3]))],
                                    target_opset={"": 17, "ai.onnx.ml": 3},
                                    options={type(estimator): {"zipmap": False}})
            ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
        for estimator in (HistGradientBoostingClassifier(max_iter=3), LogisticRegression()):
            try:
                onnx(estimator)
                print(type(estimator).__name__, "OK")
            except Exception as exc:
                print(type(estimator).__name__, repr(exc.__cause__ or exc)[:300].replace("\\n", " "))
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    hgb, logistic = proc.stdout.strip().splitlines()
    from google.protobuf import __version__ as protobuf

    if int(protobuf.split(".")[0]) >= 7:  # protobuf 7 refuses skl2onnx's bool in an int attribute
        assert "Expected an int, got a boolean" in hgb, f"drop the nodes_missing_value_tracks_true cast? {hgb}"
    else:  # protobuf 6 (what kfp 2.17 pins) takes the bool: the cast is dormant, the float32 scores still fail
        assert "does not match expected type (tensor(float))" in hgb, f"is exact_trees still needed? {hgb}"
    assert "Imputer" in logistic and "NOT_IMPLEMENTED" in logistic, f"drop the float64 imputer? {logistic}"


def test_skl2onnx_still_writes_float32_thresholds(datasets: dict) -> None:
    """For float64 inputs skl2onnx writes the tree thresholds as float32 ``nodes_values``; :func:`exact_trees`
    replaces them with the recorded float64 ones (``nodes_values_as_tensor``)."""
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import DoubleTensorType

    schema, train, _ = datasets["wine"]
    pipeline = fit(schema, train, "hist_gradient_boosting")
    initial_types = [(c, DoubleTensorType([None, 1])) for c in schema.features]
    with skl2onnx_patches.recording_thresholds() as thresholds:
        model = convert_sklearn(pipeline, initial_types=initial_types, target_opset={"": 17, "ai.onnx.ml": 3})
    (tree,) = [n for n in model.graph.node if n.op_type in TREE_OPS]
    (values,) = [a for a in tree.attribute if a.name == "nodes_values"]
    assert values.type == AttributeProto.FLOATS, "skl2onnx writes exact thresholds now: drop exact_trees"
    assert np.asarray(thresholds[0], dtype=np.float32).tolist() == list(values.floats)
    skl2onnx_patches.exact_trees(model, thresholds)
    (tree,) = [n for n in model.graph.node if n.op_type in TREE_OPS]
    assert {a.name for a in tree.attribute} >= {"nodes_values_as_tensor"} and "nodes_values" not in {
        a.name for a in tree.attribute
    }
    with pytest.raises(ValueError, match="found 1 tree ensembles but recorded 2 threshold lists"):
        skl2onnx_patches.exact_trees(model, [*thresholds, []])


@pytest.mark.parametrize("task", ["classification", "regression"])
def test_hgb_on_red_wine_hits_and_survives_a_float32_tie(task: str) -> None:
    """Splits on which float32 thresholds bite (skl2onnx's default): 5.7 vs the threshold 5.699999999999999 made
    the classifier disagree on one row (probability difference 0.40), the regressor by 0.007."""
    wine = red_wine()
    schema = infer_schema(wine, "quality", task)  # type: ignore[arg-type]
    if task == "classification":
        train, test = split(wine, 1200)
    else:
        train, test = train_test_split(wine, test_size=0.2, random_state=42)
    pipeline = fit(schema, train, "hist_gradient_boosting", hgb_iterations=200)
    (tree,) = [n for n in onnx.load_from_string(convert(pipeline, schema, 17)).graph.node if n.op_type in TREE_OPS]
    (tensor,) = [a.t for a in tree.attribute if a.name == "nodes_values_as_tensor"]
    exact = np.unique(numpy_helper.to_array(tensor))  # the graph's thresholds are scikit-learn's float64 ones
    # a tie: a test value on one side of an exact threshold, on the other side when both are float32
    values = np.unique(pipeline[:-1].transform(test[schema.features]))
    in_float64 = values[:, None] <= exact[None, :]
    in_float32 = values.astype(np.float32)[:, None] <= exact.astype(np.float32)[None, :]
    ties = np.argwhere(in_float64 != in_float32)
    assert len(ties), "no float32 tie in the red wine test rows: the test no longer shows what exact_trees protects"
    _, report = export_pipeline(pipeline, schema, test[schema.features], enabled=True, opset=17, **THRESHOLDS)
    assert report["usable"], report["reason"]
    assert report["parity"]["max_abs_diff"] < 1e-5
