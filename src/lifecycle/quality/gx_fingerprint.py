"""Workaround: turn off Great Expectations' per-batch md5 fingerprint of every row (a private module constant).

GE's ``PandasExecutionEngine`` fingerprints every pandas batch smaller than
``great_expectations.execution_engine.pandas_execution_engine.HASH_THRESHOLD`` (1e9 bytes) with an md5 over
``hash_pandas_object`` of every row: a batch marker only (``pandas_data_fingerprint`` in the result), yet at 1M rows
it costs about as much as the whole table suite (pandas 3's arrow strings hash slowly). DVC already hashes the data,
so :func:`skip_batch_fingerprint` sets the threshold to 0. The constant is not public API: great-expectations is
pinned to the exact version this was written for (pyproject.toml), and tests/quality/test_gx.py fails if the
constant, its default or its effect changes.
"""

from __future__ import annotations

GX_DEFAULT = 1e9  # HASH_THRESHOLD in the pinned version


def skip_batch_fingerprint() -> None:
    """Set GE's ``HASH_THRESHOLD`` to 0: no batch is fingerprinted (imports Great Expectations' engine module).

    Raises AttributeError if the pinned module no longer has the constant, rather than silently doing nothing.
    """
    from great_expectations.execution_engine import pandas_execution_engine

    if not hasattr(pandas_execution_engine, "HASH_THRESHOLD"):
        raise AttributeError("great_expectations pandas_execution_engine.HASH_THRESHOLD is gone; drop this workaround")
    pandas_execution_engine.HASH_THRESHOLD = 0
