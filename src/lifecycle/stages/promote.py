"""Stage ``promote``: the promotion gate. Decide promote|reject and write the model card.

    python -m lifecycle.stages.promote --metrics metrics/evaluate/metrics.json --meta models/model.json
        --champion models/champion.json --validation metrics/validate.json --plots metrics/evaluate/plots
        --out models/promotion.json --card reports/model_card.md

The candidate (the model this pipeline run trained, with its test-split metrics) must pass every criterion:

- ``promote.min``: ``{metric: value}``, candidate >= value (scores such as accuracy, f1_macro, r2);
- ``promote.max``: ``{metric: value}``, candidate <= value (losses such as log_loss, rmse, mae);
- ``promote.min_improvement``: ``{metric: delta}``, the candidate beats the champion (models/champion.json, the
  registry's prod model as ``make release`` recorded it) by at least ``delta`` in the metric's better direction.
  Without a champion, or when the candidate *is* the champion (same model.sha256), the criterion passes and says so.

The decision file lists each criterion (metric, kind, observed, threshold, champion value, passed) and the
champion it was compared with; it holds nothing volatile. A reject leaves the champion in place (nothing here
touches the registry); with ``promote.strict: true`` the stage then exits 1 after writing the decision and card.
A metric named in a threshold but absent from the metrics file is an error that names it, never a silent pass.
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from lifecycle import cli
from lifecycle.config import Promote, load_params
from lifecycle.errors import DataError, GateError, ParamsError
from lifecycle.io import read_json, sha256_file, write_json, write_text
from lifecycle.modeling.metrics import CLASSIFICATION, LOSSES, REGRESSION, higher_is_better
from lifecycle.reporting import model_card

log = logging.getLogger(__name__)
KNOWN_METRICS = (*CLASSIFICATION, *REGRESSION)
KINDS = ("min", "max", "min_improvement")


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


def check_config(cfg: Promote, task: str | None = None) -> None:
    """Reject unknown metric names, non-numeric values, and a loss under ``min`` (or a score under ``max``)."""
    for kind in KINDS:
        mapping = getattr(cfg, kind)
        for name, value in mapping.items():
            dotted = f"promote.{kind}.{name}"
            if name not in KNOWN_METRICS:
                close = difflib.get_close_matches(str(name), KNOWN_METRICS, n=1)
                hint = f"did you mean '{close[0]}'? " if close else ""
                raise ParamsError(
                    f"params.yaml: {dotted}: unknown metric; {hint}metrics are: {', '.join(KNOWN_METRICS)}"
                )
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ParamsError(f"params.yaml: {dotted}: expected a number, got {value!r}")
            if kind == "min" and name in LOSSES:
                raise ParamsError(
                    f"params.yaml: {dotted}: {name} is a loss (lower is better); put it under promote.max instead"
                )
            if kind == "max" and name not in LOSSES:
                raise ParamsError(
                    f"params.yaml: {dotted}: {name} is a score (higher is better); put it under promote.min instead"
                )
            if kind == "min_improvement" and value < 0:
                log.warning("%s is negative (%s): a candidate worse than the champion can be promoted", dotted, value)


def observed_metrics(cfg: Promote, metrics: Mapping[str, Any], source: str, task: str | None = None) -> dict:
    """The candidate's value of every metric the thresholds name; a missing one is an error naming it."""
    wanted = sorted({name for kind in KINDS for name in getattr(cfg, kind)})
    missing = [name for name in wanted if name not in metrics]
    if missing:
        where = ", ".join(f"promote.{k}.{m}" for m in missing for k in KINDS if m in getattr(cfg, k))
        has = ", ".join(sorted(metrics)) or "nothing"
        task_hint = ""
        if task == "regression" and any(m in CLASSIFICATION for m in missing):
            task_hint = " The task is regression: use rmse, mae or r2 (see docs/registry.md, 'Regression thresholds')."
        elif task == "classification" and any(m in REGRESSION for m in missing):
            task_hint = " The task is classification: use accuracy, balanced_accuracy, f1_macro, roc_auc or log_loss."
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
    cfg: Promote, observed: Mapping[str, float], champion: Mapping[str, Any], candidate_sha256: str | None
) -> list[Criterion]:
    """Every criterion of ``cfg`` against the candidate's ``observed`` metrics and the ``champion`` record."""
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
        if name not in champ_metrics:
            raise DataError(
                f"champion {version}: metric {name} (promote.min_improvement.{name}) is missing from the "
                f"champion's metrics ({', '.join(sorted(champ_metrics)) or 'none'}); the champion was evaluated "
                "on other metrics (another task?): remove the criterion, or reset the champion file "
                "(`python -m lifecycle.registry reset-champion`) so the next release starts afresh"
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
    meta: Mapping[str, Any],
    champion: Mapping[str, Any],
    metrics_source: str = "metrics.json",
) -> dict[str, Any]:
    """The whole decision record (what models/promotion.json holds)."""
    model = meta.get("model") or {}
    task = model.get("task")
    check_config(cfg, task)
    champ_task = champion.get("task")
    if champion.get("version") and champ_task and task and champ_task != task and cfg.min_improvement:
        raise DataError(
            f"champion {champion.get('version')} is a {champ_task} model but the candidate is {task}; "
            "they cannot be compared: empty promote.min_improvement, or reset the champion file "
            "(`python -m lifecycle.registry reset-champion`)"
        )
    observed = observed_metrics(cfg, metrics, metrics_source, task)
    criteria = evaluate_criteria(cfg, observed, champion, model.get("sha256"))
    failed = [c for c in criteria if not c.passed]
    return {
        "decision": "reject" if failed else "promote",
        "reasons": [c.message for c in failed],
        "criteria": [c.to_dict() for c in criteria],
        "candidate": {
            "model_sha256": model.get("sha256"),
            "family": model.get("family"),
            "task": task,
            "data_sha256": (meta.get("data") or {}).get("sha256"),
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


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Read the inputs, decide, write the decision file and the model card; return the decision."""
    params = load_params(args.params)
    metrics = read_json(args.metrics)
    meta = read_json(args.meta)
    champion = read_json(args.champion)
    validation = read_json(args.validation)
    report = read_json(args.validation_report) if args.validation_report else None
    log.info("candidate %s, champion %s", args.metrics, champion.get("version") or "none")
    decision = decide(params.promote, metrics, meta, champion, metrics_source=str(args.metrics))
    write_json(args.out, decision)
    images = model_card.plot_images(Path(args.plots))
    card = model_card.render(
        meta=meta,
        metrics=metrics,
        validation=validation,
        validation_report=report,
        validation_link=model_card.relative_link(Path(args.validation_report).with_suffix(".md"), Path(args.card))
        if args.validation_report
        else None,
        decision=decision,
        ingest=params.ingest.model_dump(),
        inputs={
            str(p): sha256_file(p)
            for p in (args.metrics, args.meta, args.validation, args.validation_report, args.champion)
            if p
        },
        images=[model_card.relative_link(p, Path(args.card)) for p in images],
    )
    write_text(args.card, card)
    log.info("wrote %s (%s) and %s", args.out, decision["decision"], args.card)
    return decision


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m lifecycle.stages.promote", description=__doc__.split("\n")[0])
    parser.add_argument("--metrics", required=True, help="the candidate's test metrics (dvclive metrics.json)")
    parser.add_argument("--meta", required=True, help="the candidate's model.json")
    parser.add_argument("--champion", required=True, help="models/champion.json (committed; `make release`)")
    parser.add_argument("--validation", required=True, help="validate's metrics (validate.json)")
    parser.add_argument("--validation-report", default=None, help="validate's full report (validation.json)")
    parser.add_argument("--plots", required=True, help="evaluate's plots folder (PNG pictures under images/)")
    parser.add_argument("--out", required=True, help="decision file (JSON)")
    parser.add_argument("--card", required=True, help="model card (Markdown)")
    parser.add_argument("--params", default="params.yaml")
    args = parser.parse_args(argv)
    decision = run(args)
    if decision["decision"] == "reject":
        reasons = "; ".join(decision["reasons"])
        if decision["strict"]:
            raise GateError(f"promotion rejected: {reasons} (promote.strict is true; see {args.out})")
        log.warning("promotion rejected: %s; the champion stays in place (see %s)", reasons, args.out)
    else:
        log.info("promote: every criterion passed")


if __name__ == "__main__":
    cli.run(main)
