"""The ONNX fast path: a derived copy of the fitted pipeline, used only after its parity check passed.

- :mod:`lifecycle.onnx.convert`: ``convert`` (skl2onnx) and ``export_pipeline`` (convert + parity report), used by
  the export stage;
- :mod:`lifecycle.onnx.parity`: ``check_parity`` and its ``Parity`` report;
- :mod:`lifecycle.onnx.runtime`: ``OnnxPredictor`` (onnxruntime) and ``load_predictor``, the server's gate;
- :mod:`lifecycle.onnx.skl2onnx_patches`: the workarounds inside skl2onnx (pinned version), in one place.

Import the submodule you need: this package imports nothing, so the server does not load skl2onnx.
"""
