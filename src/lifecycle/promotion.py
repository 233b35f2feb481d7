"""The promotion gate: may the candidate (the model this pipeline run trained) replace the champion (the registry's
prod model, as models/champion.json records it)? Pure functions, no I/O (the promote stage reads and writes).

The candidate must pass every criterion of ``params.promote.<task>`` (docs/registry.md), the thresholds of its own
task (the model's task, which ``ingest.task`` set):

- ``min``: ``{metric: value}``, candidate >= value (scores such as accuracy, f1_macro, r2);
- ``max``: ``{metric: value}``, candidate <= value (losses such as log_loss, rmse, mae);
- ``min_improvement``: ``{metric: delta}``, the candidate beats the champion by at least ``delta`` in the metric's
  better direction. Without a champion, or when the candidate *is* the champion (same model.sha256), the criterion
  passes and says so; a champion of the other task cannot be compared, and the criterion fails saying so.

A metric named in a threshold but absent from the metrics is an error that names it, never a silent pass.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from typing import Any

from lifecycle.artifact import ModelMetadata
from lifecycle.config import GATE_KINDS, Gates, Params, Promote
from lifecycle.errors import DataError
from lifecycle.modeling.metrics import CLASSIFICATION, REGRESSION, higher_is_better

log = logging.getLogger(__name__)
RESET_CHAMPION = "`python -m lifecycle.registry reset-champion`"


@dataclasses.dataclass(frozen=True)
class Criterion:
    """One rule of the gate and its outcome."""

    metric: str
    kind: str  # min | max | improvement
    threshold: float  # min/max: the bound; improvement: the required gain over the champion
    observed: float  # the candidate's value
    passed: bool
    message: str  # one sentence: observed, rule, threshold (and champion)
    champion: float | None = None  # improvement: the champion's value

    def to_dict(self) -> dict[str, Any]:
        """The criterion as models/promotion.json lists it (``champion`` only for an improvement)."""
        out = {
            "metric": self.metric,
            "kind": self.kind,
            "observed": self.observed,
            "threshold": self.threshold,
            "passed": self.passed,
            "message": self.message,
        }
        if self.kind == "improvement":
            out["champion"] = self.champion
        return out


def gates(params: Params) -> dict[str, tuple[str, float]]:
    """The fixed thresholds the promote stage applies under ``params``: those of the active task
    (``promote.<ingest.task>``), as reports show them: metric -> (">=", bound) for ``min`` (scores), ("<=", bound)
    for ``max`` (losses); {} without thresholds. ``min_improvement`` compares with the champion, not with a number,
    so it is not a gate here. The one place readers of the criteria (lifecycle.reporting.pr_report) get them from."""
    cfg = params.promote.gates(params.ingest.task)
    out = {str(name): (">=", float(bound)) for name, bound in sorted(cfg.min.items())}
    out.update({str(name): ("<=", float(bound)) for name, bound in sorted(cfg.max.items())})
    return out


def observed_metrics(cfg: Gates, metrics: Mapping[str, Any], source: str) -> dict[str, float]:
    """The candidate's value of every metric the thresholds of ``cfg`` (``promote.<task>``) name, as floats.

    Raises :class:`DataError` naming ``source`` and the missing metric(s) with the keys that name them (and, when
    the metrics file holds the other task's metrics, that the model was trained for the other task), or a metric
    that is not a number.
    """
    wanted = sorted({name for kind in GATE_KINDS for name in getattr(cfg, kind)})
    missing = [name for name in wanted if name not in metrics]
    if missing:
        where = ", ".join(f"promote.{cfg.TASK}.{k}.{m}" for m in missing for k in GATE_KINDS if m in getattr(cfg, k))
        has = ", ".join(sorted(metrics)) or "nothing"
        other = "regression" if cfg.TASK == "classification" else "classification"
        task_hint = ""
        if any(m in (REGRESSION if other == "regression" else CLASSIFICATION) for m in metrics):
            task_hint = (
                f" It holds {other} metrics for a {cfg.TASK} model: the two files come from different runs; "
                "rerun the pipeline (`dvc repro`)."
            )
        raise DataError(
            f"{source}: metric(s) {', '.join(missing)} named in {where} are missing from the metrics file "
            f"(it has: {has}); remove the threshold or fix the evaluate stage.{task_hint}"
        )
    out: dict[str, float] = {}
    for name in wanted:
        value = metrics[name]
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise DataError(f"{source}: metric {name} is {value!r}, not a number; rerun `dvc repro evaluate`")
        out[name] = float(value)
    return out


def _fmt(value: float) -> str:
    return f"{value:.6g}"


def evaluate_criteria(
    cfg: Gates, observed: Mapping[str, float], champion: Mapping[str, Any], candidate_sha256: str | None
) -> list[Criterion]:
    """Every criterion of ``cfg`` (``promote.<task>``) against the candidate's ``observed`` metrics and the
    ``champion`` record (models/champion.json: ``version``, ``task``, ``model_sha256``, ``metrics``), in the order
    min, max, improvement, each sorted by metric name. An improvement is ``candidate - champion`` for a score,
    ``champion - candidate`` for a loss (lifecycle.modeling.metrics.LOSSES), compared with the required delta with a
    1e-12 tolerance; against a champion of another task than ``cfg.TASK`` it fails (the models cannot be compared).

    Raises :class:`DataError` when an improvement metric is missing from the champion's metrics.
    """
    criteria: list[Criterion] = []
    for name, bound in sorted(cfg.min.items()):
        value = observed[name]
        ok = value >= bound
        rule = ">=" if ok else "<"
        criteria.append(Criterion(name, "min", float(bound), value, ok, f"{name} {_fmt(value)} {rule} min {bound}"))
    for name, bound in sorted(cfg.max.items()):
        value = observed[name]
        ok = value <= bound
        rule = "<=" if ok else ">"
        criteria.append(Criterion(name, "max", float(bound), value, ok, f"{name} {_fmt(value)} {rule} max {bound}"))
    version = champion.get("version")
    champ_metrics = champion.get("metrics") or {}
    champ_task = champion.get("task")
    same_model = bool(version) and candidate_sha256 is not None and champion.get("model_sha256") == candidate_sha256
    for name, delta in sorted(cfg.min_improvement.items()):
        value = observed[name]
        if not version:
            criteria.append(
                Criterion(
                    name, "improvement", float(delta), value, True,
                    f"{name} {_fmt(value)}: no champion yet (models/champion.json has no version), nothing to beat",
                )
            )  # fmt: skip
            continue
        if champ_task and champ_task != cfg.TASK:
            criteria.append(
                Criterion(
                    name, "improvement", float(delta), value, False,
                    f"{name} {_fmt(value)}: champion {version} is a {champ_task} model and the candidate a "
                    f"{cfg.TASK} one, which cannot be compared; to start a {cfg.TASK} line of models, reset the "
                    f"champion ({RESET_CHAMPION}) or empty promote.{cfg.TASK}.min_improvement",
                )
            )  # fmt: skip
            continue
        if name not in champ_metrics:
            raise DataError(
                f"champion {version}: metric {name} (promote.{cfg.TASK}.min_improvement.{name}) is missing from the "
                f"champion's metrics ({', '.join(sorted(champ_metrics)) or 'none'}); the champion was evaluated "
                f"on other metrics (another task?): remove the criterion, or reset the champion file "
                f"({RESET_CHAMPION}) so the next release starts afresh"
            )
        base = float(champ_metrics[name])
        gain = value - base if higher_is_better(name) else base - value
        if same_model:
            criteria.append(
                Criterion(
                    name, "improvement", float(delta), value, True,
                    f"{name} {_fmt(value)}: the candidate is the champion {version} itself (same model.sha256)",
                    champion=base,
                )
            )  # fmt: skip
            continue
        ok = gain >= delta - 1e-12
        direction = "higher" if higher_is_better(name) else "lower"
        verdict = "beats" if ok else "does not beat"
        criteria.append(
            Criterion(
                name, "improvement", float(delta), value, ok,
                f"{name} {_fmt(value)} {verdict} champion {version} ({_fmt(base)}) by the required {delta} "
                f"({direction} is better; gain {_fmt(round(gain, 6))})",
                champion=base,
            )
        )  # fmt: skip
    return criteria


def decide(
    cfg: Promote,
    metrics: Mapping[str, Any],
    candidate: ModelMetadata,
    champion: Mapping[str, Any],
    metrics_source: str = "metrics.json",
) -> dict[str, Any]:
    """The decision record (the content of models/promotion.json): ``decision`` promote|reject, the ``reasons``
    (messages of the failed criteria), the ``gates`` that applied (``promote.<task>``, the candidate's task), every
    criterion, the ``candidate`` (model and data sha256, family, task, test ``metrics``), the ``champion`` it was
    compared with (None without one) and ``strict``.

    ``metrics``: the candidate's test metrics (evaluate's metrics.json, named ``metrics_source`` in errors);
    ``candidate``: its metadata (model.json); ``champion``: models/champion.json.

    Raises :class:`DataError` for a missing metric (see :func:`observed_metrics`).
    """
    task = candidate.model.task
    task_gates = cfg.gates(task)
    observed = observed_metrics(task_gates, metrics, metrics_source)
    criteria = evaluate_criteria(task_gates, observed, champion, candidate.model.sha256)
    failed = [c for c in criteria if not c.passed]
    return {
        "decision": "reject" if failed else "promote",
        "reasons": [c.message for c in failed],
        "gates": f"promote.{task}",
        "criteria": [c.to_dict() for c in criteria],
        "candidate": {
            "model_sha256": candidate.model.sha256,
            "family": candidate.model.family,
            "task": task,
            "data_sha256": candidate.data.sha256,
            "metrics": {k: metrics[k] for k in sorted(metrics)},
        },
        "champion": {
            "artifact": champion.get("artifact"),
            "version": champion.get("version"),
            "model_sha256": champion.get("model_sha256"),
            "metrics": dict(sorted((champion.get("metrics") or {}).items())),
        }
        if champion.get("version")
        else None,
        "strict": cfg.strict,
    }
