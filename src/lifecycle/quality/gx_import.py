"""Workaround: import Great Expectations early, in a background thread, with the cyclic garbage collector off.

``import great_expectations`` takes ~2 s of mostly Python bytecode here (with :mod:`lifecycle.quality.lazy_imports`;
~3.5 s without), more than reading and checking 1M rows. :func:`prefetch_gx`, called first by the validate stage,
starts it in a thread so it overlaps the Parquet read and the pandas masks (C++ and numpy loops that release the
GIL); the first ``import great_expectations`` in :func:`lifecycle.quality.gx_suite.gx_context` then simply waits for it
(Python's per-module import lock).

The import creates ~10^6 container objects; with the collector on, each 700 allocations start a collection and the
older generations are traversed again and again. So the import runs with ``gc.disable()``, then ``gc.freeze()``
moves what it made out of later collections' way and the collector is turned back on. Public ``gc`` API only;
the gain depends on the pinned great-expectations version (pyproject.toml), measured by bench/validate.py.
"""

from __future__ import annotations

import gc
import importlib
import os
import sys
import threading

from lifecycle.quality.lazy_imports import defer_imports


def prefetch_gx() -> threading.Thread:
    """Start importing Great Expectations in a background thread and return it (join it before exiting).

    A no-op thread when GE is imported already. Sets ``GX_ANALYTICS_ENABLED=False`` unless set.
    """
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
    if "great_expectations" in sys.modules:
        thread = threading.Thread(target=lambda: None, name="gx-import", daemon=True)
    else:
        defer_imports()
        thread = threading.Thread(target=import_gx_without_gc, name="gx-import", daemon=True)
        gc.disable()
    thread.start()
    return thread


def import_gx_without_gc() -> None:
    """Import GE (the collector is off: :func:`prefetch_gx` turned it off), then ``gc.freeze()`` what the import
    made and turn the collector back on, even if the import failed."""
    try:
        importlib.import_module("great_expectations")
    finally:
        gc.freeze()
        gc.enable()
