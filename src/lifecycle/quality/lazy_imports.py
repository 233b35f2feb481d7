"""Workaround: ``scipy.stats`` becomes a lazy module before Great Expectations is imported (~1 s of its ~3.5 s).

``import great_expectations`` runs ``from scipy import stats`` for the KL-divergence and KS-test expectations
only, which the contracts never use. :func:`defer_imports` swaps the module for an
:class:`importlib.util.LazyLoader` module (public standard-library API): executed on first attribute access, so
semantics do not change and only the cost moves to the first real use. It depends on how the pinned
great-expectations version imports scipy (pyproject.toml); tests/quality/test_gx.py fails if that changes.
(altair, ~0.4 s more, cannot be deferred this way: GE imports it with ``import altair``, which reads the module's
``__spec__`` and so loads it.)
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Sequence

DEFERRED_IMPORTS = ("scipy.stats",)


def defer_imports(names: Sequence[str] = DEFERRED_IMPORTS) -> list[str]:
    """Make ``names`` lazy modules (:class:`importlib.util.LazyLoader`): executed on first attribute access.

    ``from scipy import stats`` still works; ``stats.entropy`` loads scipy.stats then. Modules already imported, or
    not installed, are left alone. Returns the names that were made lazy. (Python 3.11's lazy modules take no lock
    on that first use: the stage makes it, if ever, from one thread.)
    """
    deferred = []
    for name in names:
        if name in sys.modules:
            continue
        spec = importlib.util.find_spec(name)
        if spec is None or spec.loader is None:
            continue
        spec.loader = importlib.util.LazyLoader(spec.loader)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
        parent, _, child = name.rpartition(".")
        if parent:
            setattr(sys.modules[parent], child, module)
        deferred.append(name)
    return deferred
