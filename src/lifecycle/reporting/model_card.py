"""The model card (reports/model_card.md): what the model is, what it was trained on, how good it is, whether it
was promoted, what it is for, and where every byte came from.

Pure functions: :func:`render` turns already-read inputs into Markdown, deterministically (no timestamps, hosts,
absolute paths or git commits: the commit of a registered model is its registry tag, see docs/registry.md).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

PLOT_TITLES = {
    "confusion_matrix": "Confusion matrix (test split)",
    "roc": "ROC, one vs rest",
    "precision_recall": "Precision-recall",
    "importance": "Permutation importance",
    "shap_importance": "Mean |SHAP| (test split)",
    "predicted_vs_actual": "Predicted vs actual",
    "residuals": "Residuals",
}


def plot_images(plots: Path) -> list[Path]:
    """The PNG pictures evaluate wrote (``<plots>/images/*.png`` or ``<plots>/*.png``), sorted by name."""
    folder = plots / "images" if (plots / "images").is_dir() else plots
    return sorted(folder.glob("*.png")) if folder.is_dir() else []


def feature_reliance(plots: Path) -> list[dict[str, Any]]:
    """What the model relies on, per raw input column, from evaluate's plot data in ``plots``
    (``custom/shap_importance.json``: mean |SHAP| in the model's output space; ``custom/importance.json``:
    permutation importance, the drop of the test score): ``[{"feature", "mean_abs_shap", "importance"}]`` in the
    SHAP order (permutation order when there is no SHAP view), a missing value as ``None``; ``[]`` without either
    file. Raises ``ValueError`` for a file that is not evaluate's JSON."""
    custom = plots / "custom"
    tables = {}
    for name, key in (("shap_importance", "mean_abs_shap"), ("importance", "importance")):
        path = custom / f"{name}.json"
        if path.is_file():
            tables[key] = {str(row["feature"]): row[key] for row in json.loads(path.read_text())}
    order = next(iter(tables.values()), {})
    return [{"feature": f, **{key: table.get(f) for key, table in tables.items()}} for f in order]


def relative_link(target: Path, card: Path) -> str:
    """``target`` relative to the card's folder, with forward slashes (a link that works in any clone)."""
    return Path(os.path.relpath(target, card.parent)).as_posix()


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value).replace("|", "\\|").replace("\n", " ")


def _table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
    return lines


def lineage(meta: Mapping[str, Any], inputs: Mapping[str, str]) -> list[tuple[str, str, str]]:
    """(artifact, sha256, where the hash comes from): the card's own inputs as the promote stage read them, then
    what model.json records upstream (training data, model, ONNX graph, data contract).

    A function of the stage's declared inputs only (never of dvc.lock, which ``dvc repro`` rewrites while it
    runs): the same inputs give the same card, whether the pipeline ran in steps or from a fresh clone.
    """
    rows = [(path, digest, "input of this card") for path, digest in sorted(inputs.items())]
    data, model, onnx = meta.get("data") or {}, meta.get("model") or {}, meta.get("onnx") or {}
    if data.get("sha256"):
        rows.append(
            (f"training data ({data.get('file', '?')}, {data.get('rows', '?')} rows)", data["sha256"], "model.json")
        )
    if model.get("sha256"):
        rows.append((f"model ({model.get('file', '?')})", model["sha256"], "model.json"))
    if onnx.get("sha256"):
        rows.append((f"ONNX graph ({onnx.get('file', '?')})", onnx["sha256"], "model.json"))
    contract = meta.get("contract") or {}
    if contract.get("file"):
        rows.append((f"data contract ({contract['file']})", "-", "model.json (in git)"))
    return rows


def intended_use(task: str | None, ingest: Mapping[str, Any], target: str | None) -> list[str]:
    """Intended use and limits: what the model may be used for, and what it must not be trusted with."""
    source = ingest.get("source")
    if source == "telemetry":
        use = (
            "Flags EV battery packs whose latest telemetry snapshot looks like a developing fault (degradation, "
            "overheating, cell imbalance), so that a technician inspects the pack. It supports, and does not "
            "replace, a diagnosis: every alert needs a human look."
        )
        data = (
            "simulated EV battery telemetry (`lifecycle.data.telemetry`, fleet " + str(ingest.get("data_version")) + ")"
        )
    else:
        kind = "predicts" if task == "regression" else "classifies"
        use = f"A model that {kind} `{target}` from the columns listed under Schema, for rows like its training data."
        data = f"`{source}`"
    return [
        use,
        "",
        f"- Trained and tested on {data}; the test metrics hold for rows drawn from the same population only.",
        "- Rows must match the schema below (column names, types, categories); the serving API and the batch "
        "scorer reject rows that do not.",
        "- Outside the ranges seen in training (other vehicles, climates, sensors, chemistries, or another "
        "population) the predictions are extrapolations: watch the drift report (`monitor` stage) and retrain.",
        "- Not for decisions about people, and not for safety-critical automation without a human in the loop.",
    ]


def _validation_checks(report: Mapping[str, Any], link: str | None) -> list[str]:
    """The data contract's checks from validate's full report (reports/validation.json)."""
    verdict = "passed" if report.get("success") else "FAILED"
    lines = [f"Data contract `{report.get('contract') or '-'}`: {verdict}."]
    if link:
        lines[0] += f" Full report: [{Path(link).name}]({link})."
    lines.append("")
    lines += [f"- failure: {f}" for f in report.get("failures") or []]
    checks = report.get("checks") or []
    if checks:
        lines += _table(
            ("rule", "level", "column", "result", "unexpected rows"),
            (
                (c.get("rule"), c.get("level"), c.get("column"), "pass" if c.get("success") else "FAIL",
                 c.get("unexpected_count"))
                for c in checks
            ),
        )  # fmt: skip
    lines.append("")
    return lines


def render(
    meta: Mapping[str, Any],
    metrics: Mapping[str, Any],
    validation: Mapping[str, Any],
    decision: Mapping[str, Any],
    ingest: Mapping[str, Any],
    inputs: Mapping[str, str],
    images: Sequence[str],
    validation_report: Mapping[str, Any] | None = None,
    validation_link: str | None = None,
    reliance: Sequence[Mapping[str, Any]] = (),
) -> str:
    """The model card as Markdown.

    ``meta``: model.json's content (``ModelMetadata.to_dict()``); ``metrics``: the test metrics; ``validation``:
    validate's metrics (and ``validation_report``, its full report, linked as ``validation_link``); ``decision``:
    :func:`lifecycle.promotion.decide`'s record; ``ingest``: the ingest params; ``inputs``: path -> sha256 of the
    card's inputs; ``images``: links to the evaluate plots, relative to the card; ``reliance``:
    :func:`feature_reliance`'s rows (the section "What the model relies on"). Deterministic for the same inputs.
    """
    model = meta.get("model") or {}
    data = meta.get("data") or {}
    schema = meta.get("schema") or {}
    task = model.get("task") or schema.get("task")
    target = schema.get("target") or ingest.get("target")
    champion = decision.get("champion") or {}
    lines: list[str] = [f"# Model card: {model.get('family', 'model')} ({task})", ""]

    verdict = str(decision.get("decision", "?")).upper()
    against = f"champion {champion.get('version')}" if champion else "no champion yet"
    lines += [f"**Decision: {verdict}** (compared with {against}).", ""]
    for reason in decision.get("reasons") or []:
        lines.append(f"- rejected: {reason}")
    if decision.get("reasons"):
        lines.append("")

    lines += ["## Intended use and limits", "", *intended_use(task, ingest, target), ""]

    lines += ["## Promotion decision", ""]
    lines += _table(
        ("metric", "rule", "threshold", "observed", "champion", "result", "detail"),
        (
            (c["metric"], c["kind"], c["threshold"], c["observed"], c.get("champion"),
             "pass" if c["passed"] else "FAIL", c["message"])
            for c in decision.get("criteria") or []
        ),
    )  # fmt: skip
    gates = decision.get("gates") or f"promote.{task}"
    lines += [
        "",
        f"Thresholds are `{gates}.*` in params.yaml (the model's task); the champion is models/champion.json.",
    ]
    lines += [""]

    lines += ["## Model", ""]
    rows: list[tuple[str, Any]] = [
        ("family", model.get("family")),
        ("task", task),
        ("target", target),
        ("model.joblib sha256", model.get("sha256")),
        ("size (bytes)", model.get("bytes")),
        ("seed", model.get("seed")),
    ]
    rows += [(f"hyperparameter `{k}`", v) for k, v in sorted((model.get("hyperparameters") or {}).items())]
    onnx = meta.get("onnx")
    if isinstance(onnx, Mapping):
        rows.append(("ONNX copy usable", f"{onnx.get('usable')} {onnx.get('reason') or ''}".strip()))
    lines += [*_table(("field", "value"), rows), ""]

    lines += ["## Data", ""]
    rows = [
        ("source", ingest.get("source")),
        ("data version", ingest.get("data_version")),
        ("training file", data.get("file")),
        ("training rows", data.get("rows")),
        ("training data sha256", data.get("sha256")),
    ]
    rows += [(f"rows with {target} = {k}", v) for k, v in sorted((data.get("target_distribution") or {}).items())]
    lines += [*_table(("field", "value"), rows), ""]

    lines += ["## Schema", ""]
    lines += _table(
        ("column", "role", "type", "categories"),
        (
            (c.get("name"), c.get("role"), c.get("dtype"), ", ".join(map(str, c.get("categories") or [])) or None)
            for c in schema.get("columns") or []
        ),
    )
    if schema.get("classes"):
        lines += ["", f"Classes: {', '.join(map(str, schema['classes']))}."]
    lines.append("")

    lines += ["## Metrics", ""]
    train_metrics = (meta.get("metrics") or {}).get("train") or {}
    champ_metrics = champion.get("metrics") or {}
    names = sorted(set(metrics) | set(train_metrics))
    lines += _table(
        ("metric", "test (candidate)", "train (candidate)", f"test (champion {champion.get('version', '-')})"),
        ((n, metrics.get(n), train_metrics.get(n), champ_metrics.get(n)) for n in names),
    )
    sample = ((meta.get("metrics_sample") or {}).get("train")) or {}
    if sample and sample.get("rows") != sample.get("sampled_from"):
        lines += [
            "",
            f"Train metrics: on a sample of {sample.get('rows'):,} of the {sample.get('sampled_from'):,} training "
            f"rows, drawn with seed {sample.get('seed')} (`train.metrics_sample_rows`).",
        ]
    lines.append("")
    if reliance:
        lines += ["### What the model relies on", ""]
        lines += [
            "Per input column, on the test split: mean |SHAP| (the average size of its contribution to the model's "
            "output, in the output space of the model's explanations: log-odds for gradient boosting and logistic "
            "regression, probability for random forests, the target's unit for regressors; averaged over classes; "
            "docs/serving.md) and permutation importance (how much the test score drops when the column is "
            "shuffled).",
            "",
        ]
        lines += _table(
            ("feature", "mean abs SHAP", "permutation importance"),
            ((r.get("feature"), r.get("mean_abs_shap"), r.get("importance")) for r in reliance),
        )
        lines.append("")
    if images:
        lines += ["### Plots", ""]
        for link in images:
            title = PLOT_TITLES.get(Path(link).stem, Path(link).stem.replace("_", " "))
            lines += [f"![{title}]({link})", ""]

    lines += ["## Validation summary", ""]
    lines += _table(
        ("check", "value"),
        ((k, v) for k, v in sorted(validation.items()) if not isinstance(v, Mapping | list)),
    )
    lines += ["", "Rows that failed row-level checks are in the quarantine file (`paths.quarantine`).", ""]
    if validation_report:
        lines += _validation_checks(validation_report, validation_link)

    lines += ["## Lineage", ""]
    lines += ["What this card was made from (sha256): its inputs, and the artifacts model.json records upstream.", ""]
    lines += [*_table(("artifact", "sha256", "from"), lineage(meta, inputs)), ""]
    lines += [
        "Code and every stage's hashes: the git commit of the version (`dvc.lock` at that commit lists the md5 of "
        "every dependency and output of every stage).",
        "",
    ]
    packages = meta.get("packages") or {}
    if packages:
        lines += ["### Packages", "", *_table(("package", "version"), sorted(packages.items())), ""]
    lines += [
        "The git commit of a registered version is its registry tag, never stored in this card: "
        "`gto show model` lists versions and stages; `git rev-list -n 1 model@vX.Y.Z` prints the commit; "
        "`git checkout model@vX.Y.Z && dvc pull` restores that exact model.",
        "",
    ]
    return "\n".join(lines)
