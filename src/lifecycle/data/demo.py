"""The built-in demo batch: new telemetry for the score and monitor stages, made by the simulator from params.

A fresh clone has no batch of its own to score, and a file committed in ``data/incoming/`` would be invisible to
nothing but would hide how it was made. So the ``simulate`` stage draws it: ``simulate.rows`` rows of fleet
``simulate.data_version`` with ``simulate.seed`` and the ingest section's messiness rates, without the target (a
batch to score has no labels), plus the labels of a seeded ``simulate.feedback_fraction`` share of its rows, as
feedback that "arrived later". Same params, same bytes: experiments and clones rebuild it with ``dvc repro``.

Only for the built-in data: with ``ingest.source`` set to your file, the telemetry batch would not fit your model,
and the stage writes no batch (your batches are the DVC-tracked files in ``paths.incoming``).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pandas as pd

from lifecycle.config import TELEMETRY_SOURCE, Ingest, Simulate
from lifecycle.data import telemetry


@dataclasses.dataclass(frozen=True)
class DemoBatch:
    """The demo batch (None when there is none), its labels, and what was made (``manifest``, JSON-ready)."""

    batch: pd.DataFrame | None  # the rows to score, without the target
    labels: pd.DataFrame | None  # row id + target for the labelled share
    manifest: dict[str, Any]

    @property
    def name(self) -> str:
        """The file stem of the batch and its labels: ``telemetry_<fleet>``."""
        return f"telemetry_{self.manifest['data_version']}"


def demo_batch(cfg: Simulate, ingest: Ingest) -> DemoBatch:
    """The demo batch of ``cfg`` (params ``simulate``) with the messiness rates of ``ingest``.

    No batch (``batch`` and ``labels`` None, the manifest says why) when ``ingest.source`` is not ``telemetry`` or
    ``cfg.rows`` is 0. Otherwise ``batch`` has ``cfg.rows`` rows (duplicates included) of the simulator's columns
    but the target, and ``labels`` the ``reading_id`` and target of ``round(feedback_fraction * rows)`` distinct
    rows drawn with ``cfg.seed`` (in batch order). Deterministic for the same arguments.
    """
    manifest: dict[str, Any] = {"data_version": cfg.data_version, "rows": 0, "labelled_rows": 0, "seed": cfg.seed}
    if ingest.source != TELEMETRY_SOURCE:
        reason = f"ingest.source is {ingest.source!r}, not the built-in telemetry: score your own batches"
        return DemoBatch(None, None, manifest | {"reason": reason})
    if cfg.rows == 0:
        return DemoBatch(None, None, manifest | {"reason": "simulate.rows is 0"})
    rows = telemetry.generate(
        rows=cfg.rows,
        version=cfg.data_version,
        seed=cfg.seed,
        missing_rate=ingest.missing_rate,
        glitch_rate=ingest.glitch_rate,
        duplicate_rate=ingest.duplicate_rate,
    )
    ids = rows[["reading_id", telemetry.TARGET]].drop_duplicates("reading_id")
    n_labels = round(cfg.feedback_fraction * len(ids))
    picked = np.sort(np.random.default_rng(cfg.seed).choice(len(ids), size=n_labels, replace=False))
    labels = ids.iloc[picked].reset_index(drop=True)
    batch = rows.drop(columns=[telemetry.TARGET])
    manifest |= {"rows": len(batch), "labelled_rows": len(labels)}
    return DemoBatch(batch, labels, manifest)
