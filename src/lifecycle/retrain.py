"""Continuous training: from the latest monitor decision to a branch that a pull request can propose.

``python -m lifecycle.retrain`` (``make retrain``), in a repository whose ``dvc repro`` is up to date:

1. **Decide.** Read the monitor stage's decision: ``metrics/monitor.json`` (``retrain``) and its details in
   ``reports/drift.json`` (reasons, drifted features, feedback metrics); refused when ``dvc status`` says the
   monitor stage is out of date. ``retrain: false`` -> exit :data:`NO_RETRAIN`, nothing changed.
2. **Build the retraining data.** The rows of the incoming batches (``paths.incoming``, then the ``simulate`` stage's
   demo batch in ``paths.demo/incoming``, the order ``score`` reads them) that have a label (their own target
   column, or a feedback file in ``paths.demo/feedback`` or ``paths.feedback``, yours winning for the same row id;
   :func:`lifecycle.data.labelled.label_batches`), minus
   those an earlier retrain already added, are the new labelled batch. Fewer than ``retrain.min_labelled_rows``
   -> exit :data:`NEED_LABELS`, nothing changed. Else it is written to ``paths.labelled/labelled-<sha>.parquet``,
   tracked with ``dvc add`` and staged: data, versioned with DVC. The ingest stage adds it to ``ingest.source``'s
   rows (``retrain.strategy: combined``) or trains on the labelled batches alone (``recent``).
3. **Train the candidate as a DVC experiment**: ``dvc exp run --temp`` (the workspace is left alone), which reruns
   ingest and everything after it, the promotion gate included.
4. **Gate.** ``dvc exp branch`` puts the experiment on ``<retrain.branch>-candidate`` (one commit on top of HEAD:
   params, dvc.lock, the labelled batch's .dvc file, metrics, promotion.json, the model card). A ``reject`` in its
   ``models/promotion.json`` -> that branch is deleted, exit :data:`REJECTED` (the experiment stays in
   ``dvc exp show``; an earlier ``retrain.branch`` stays as it was). A ``promote`` -> it becomes ``retrain.branch``
   (replacing an earlier one: one pull request), exit :data:`BRANCH_WRITTEN`.
5. **The pull-request body** (``--body``, Markdown): why retraining started (data drift, or concept drift: a metric
   drop on feedback labels while the inputs did not drift; the monitor's reasons), the retraining data, the gate's
   verdict with every criterion, and the PR report of :mod:`lifecycle.reporting.pr_report` (metrics and params of
   the branch against the current model, validation, promotion), the same report the PR workflow comments.

Whatever the outcome, the workspace and the index are as they were (the new labelled batch lives on the branch and
in the DVC cache only). Exit codes, for schedulers: 0 branch written, 1 error (message names the file or key),
2 usage, 3 no retrain needed, 4 candidate rejected by the gate, 5 not enough new labelled rows yet.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import logging
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from lifecycle import cli
from lifecycle.config import Params, load_params
from lifecycle.data.labelled import batch_name, known_ids, label_batches
from lifecycle.errors import LifecycleError
from lifecycle.io import TABLE_SUFFIXES, read_json, write_json, write_table, write_text
from lifecycle.modeling.metrics import higher_is_better
from lifecycle.monitoring.feedback import read_feedback, row_id
from lifecycle.schema import coerce_frame, read_schema

log = logging.getLogger(__name__)

BRANCH_WRITTEN = 0  # the candidate passed the gate: retrain.branch holds it, --body the pull-request body
NO_RETRAIN = 3  # the latest monitor decision is retrain: false
REJECTED = 4  # the candidate was trained and the promotion gate rejected it
NEED_LABELS = 5  # monitor says retrain, but fewer than retrain.min_labelled_rows new labelled rows exist
OUTCOMES = {BRANCH_WRITTEN: "branch written", NO_RETRAIN: "no retrain needed", REJECTED: "candidate rejected",
            NEED_LABELS: "not enough labelled rows"}  # fmt: skip


@dataclasses.dataclass(frozen=True)
class Trigger:
    """Why the monitor asked for retraining.

    ``kind``: ``data drift`` (inputs or predictions drifted), ``concept drift`` (a metric drop on feedback labels
    while neither the inputs nor the predictions drifted: the relation between them changed), or ``data drift and a
    metric drop on feedback labels``; ``reasons``: the monitor's sentences.
    """

    kind: str
    reasons: tuple[str, ...]
    metric_drop: str | None = None  # "accuracy 0.71 on 800 feedback labels vs 0.90 on the test split", when it fell


@dataclasses.dataclass
class Result:
    """What one run did: the exit ``code`` (one of the module's constants) and what a scheduler or a person needs."""

    code: int
    message: str
    trigger: Trigger | None = None
    branch: str | None = None
    experiment: str | None = None
    labelled_rows: int = 0
    labelled_file: str | None = None
    decision: dict[str, Any] | None = None
    title: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["outcome"] = OUTCOMES.get(self.code, "error")
        return out


# --------------------------------------------------------------------------------------------- decide
def trigger(monitor: Mapping[str, Any], params: Params) -> Trigger:
    """Classify the monitor decision ``monitor`` (reports/drift.json: :func:`lifecycle.monitoring.analysis.analyse`'s
    result) into a :class:`Trigger`.

    Data drift: a feature or its missing-value rate drifted, the predictions drifted, or the server's prediction log
    drifted. A metric drop: ``monitor.feedback.<ingest.task>.metric`` on the feedback labels is worse than on the
    test split by more than its ``max_drop`` with at least ``monitor.min_feedback_rows`` labels of known classes (the
    monitor's own rule, :func:`lifecycle.monitoring.decision.retrain_reasons`). Feedback labels of classes the model
    never saw count with it as a change of the target (concept drift when the inputs did not drift).
    """
    features = monitor.get("features") or {}
    data = bool(monitor.get("drifted_features")) or any(f.get("missing_drifted") for f in features.values())
    data = data or bool((monitor.get("prediction") or {}).get("drifted"))
    log_drift = monitor.get("prediction_log") or {}
    data = data or bool(log_drift.get("drifted_features")) or bool((log_drift.get("prediction") or {}).get("drifted"))
    drop = _metric_drop(monitor.get("feedback") or {}, params)
    unseen = (monitor.get("feedback") or {}).get("unseen_labels") or {}
    if unseen:
        new = f"{sum(unseen.values())} label(s) of class(es) the model never saw: " + ", ".join(
            f"{value} ({rows})" for value, rows in unseen.items()
        )
        drop = f"{drop}; {new}" if drop else new
    if drop and not data:
        kind = "concept drift"
    elif drop:
        kind = "data drift and a metric drop on feedback labels"
    elif data:
        kind = "data drift"
    else:
        kind = "monitor decision"
    return Trigger(kind, tuple(monitor.get("reasons") or ()), drop)


def _metric_drop(feedback: Mapping[str, Any], params: Params) -> str | None:
    rule = params.monitor.feedback_rule(params.ingest.task)
    name = rule.metric
    observed = (feedback.get("metrics") or {}).get(name)
    baseline = (feedback.get("test") or {}).get(name)
    rows = (feedback.get("rows") or 0) - sum((feedback.get("unseen_labels") or {}).values())  # the metric's rows
    if observed is None or baseline is None or rows < params.monitor.min_feedback_rows:
        return None
    drop = (baseline - observed) if higher_is_better(name) else (observed - baseline)
    if drop <= rule.max_drop:
        return None
    return f"{name} {observed:.4f} on {rows} feedback labels vs {baseline:.4f} on the test split"


def monitor_is_current(root: Path) -> list[str]:
    """What ``dvc status monitor --with-deps`` reports as changed (empty: metrics/monitor.json is up to date)."""
    out = _run(["dvc", "status", "monitor", "--with-deps", "--json"], root).stdout.strip() or "{}"
    return sorted(json.loads(out))


# --------------------------------------------------------------------------------------------- data
def new_labelled_rows(root: Path, params: Params) -> Any:
    """The labelled rows of the incoming batches (yours, then the demo batch) that no earlier retrain added (a
    DataFrame in the training schema's columns and dtypes; empty when there is none). Labels: the demo's, then yours
    (a later one wins for the same row id, as in the monitor stage). Raises :class:`DataError` for an unreadable batch or
    label file, or one that lacks the row id or a schema column."""
    paths = params.paths
    schema = read_schema(root / paths.schema)
    id_column = row_id(schema)
    batches = [
        p
        for folder in (root / paths.incoming, root / paths.demo / "incoming")
        if folder.is_dir()
        for p in sorted(folder.iterdir())
        if p.is_file() and p.suffix.lower() in TABLE_SUFFIXES
    ]
    labels = read_feedback([root / paths.demo / "feedback", root / paths.feedback], schema)
    columns = [c.name for c in schema.columns]
    rows = label_batches(
        batches, labels, id_column, schema.target, columns, params.ingest.read_options, params.ingest.normalize_columns
    )
    seen = known_ids(root / paths.labelled, id_column)
    fresh = rows[~rows[id_column].isin(seen)].reset_index(drop=True)
    if len(fresh) < len(rows):
        log.info("%d labelled rows were added by an earlier retrain (%s); %d are new", len(rows) - len(fresh),
                 paths.labelled, len(fresh))  # fmt: skip
    return coerce_frame(fresh, schema)


# --------------------------------------------------------------------------------------------- run
def retrain(root: Path, params: Params, body: Path, params_file: str = "params.yaml") -> Result:
    """Steps 1-5 of the module docstring in the repository ``root``; the pull-request body goes to ``body``.

    Returns the :class:`Result`; raises :class:`LifecycleError` (exit 1) for a missing or stale monitor decision, a
    dirty labelled folder, a checked-out ``retrain.branch``, bad batches or labels, and a failed experiment (its
    output is in the log). The workspace and index are restored in every case.
    """
    decision_file = root / params.paths.metrics / "monitor.json"
    if not decision_file.is_file():
        raise LifecycleError(f"{decision_file}: no monitor decision; run `dvc repro monitor` first")
    stale = monitor_is_current(root)
    if stale:
        raise LifecycleError(
            f"{decision_file} is out of date ({', '.join(stale)} changed since it was written); run "
            "`dvc repro monitor` so the decision covers the latest batches and labels, then `make retrain`"
        )
    if not read_json(decision_file).get("retrain"):
        body.unlink(missing_ok=True)  # a body of an earlier run must not be mistaken for this one's
        return Result(NO_RETRAIN, f"no retrain needed: {decision_file} says retrain: false; nothing changed")
    details = root / params.paths.reports / "drift.json"
    if not details.is_file():
        raise LifecycleError(f"{details}: the monitor decision's details are missing; run `dvc repro monitor`")
    monitor = read_json(details)
    why = trigger(monitor, params)
    log.info("monitor asks for retraining (%s): %s", why.kind, "; ".join(why.reasons))

    rows = new_labelled_rows(root, params)
    need = params.retrain.min_labelled_rows
    if len(rows) < need:
        body.unlink(missing_ok=True)
        return Result(
            NEED_LABELS,
            f"retraining needed ({why.kind}) but only {len(rows)} new labelled rows, fewer than "
            f"retrain.min_labelled_rows={need}: put labels (row id + {params.ingest.target}) for the scored batches "
            f"into {params.paths.feedback}/ (dvc add), `dvc repro monitor`, then run again; nothing changed",
            why,
        )
    branch = params.retrain.branch
    if _run(["git", "branch", "--show-current"], root).stdout.strip() == branch:
        raise LifecycleError(f"retrain.branch {branch!r} is checked out; switch to the base branch (e.g. main) first")
    dirty = _run(["git", "status", "--porcelain", "--", params.paths.labelled], root).stdout.strip()
    if dirty:
        raise LifecycleError(
            f"{params.paths.labelled} has uncommitted changes ({dirty.splitlines()[0]} ...); commit or remove them"
        )
    pending = _run(["git", "status", "--porcelain", "--untracked-files=no"], root).stdout.splitlines()
    if pending:
        log.warning(
            "the experiment starts from your workspace, so these uncommitted changes go into branch %s too: %s",
            branch, ", ".join(line[3:] for line in pending),
        )  # fmt: skip
    schema = read_schema(root / params.paths.schema)
    name = batch_name(rows, row_id(schema), schema.target)
    base = _run(["git", "rev-parse", "HEAD"], root).stdout.strip()
    data_file = Path(params.paths.labelled) / f"{name}.parquet"
    with _staged_batch(root, data_file, rows):
        log.info("training the candidate: dvc exp run --temp -n %s (strategy %s, %d new labelled rows in %s)",
                 name, params.retrain.strategy, len(rows), data_file)  # fmt: skip
        _run(["dvc", "exp", "remove", name], root, check=False)
        _run(["dvc", "exp", "run", "--temp", "-n", name], root, stream=True)
    candidate = f"{branch}-candidate"  # the gate decides whether it replaces retrain.branch
    _delete_branch(root, candidate)
    _run(["dvc", "exp", "branch", name, candidate], root)
    shown = _run(["git", "show", f"{candidate}:{params.paths.promotion}"], root, check=False)
    if shown.returncode != 0:
        _delete_branch(root, candidate)
        raise LifecycleError(
            f"experiment {name} wrote no {params.paths.promotion} (does dvc.yaml still end with the promote stage?)"
        )
    verdict = json.loads(shown.stdout)
    result = Result(
        BRANCH_WRITTEN, "", why, branch, name, len(rows), str(data_file), verdict,
        title=f"Retrain on {len(rows)} new labelled rows ({why.kind})",
    )  # fmt: skip
    if verdict.get("decision") != "promote":
        _delete_branch(root, candidate)
        result.code, result.branch = REJECTED, None
        result.message = (
            f"candidate rejected by the promotion gate: {'; '.join(verdict.get('reasons') or ['see the criteria'])}; "
            f"nothing changed (the experiment stays in `dvc exp show` as {name}; `dvc exp remove {name}` drops it)"
        )
    else:
        _run(["git", "branch", "-M", candidate, branch], root)
        result.message = (
            f"branch {branch} written (experiment {name} on top of {base[:12]}); push it with "
            f"`git push origin {branch}` and `dvc push`, open the pull request with the body in {body}"
        )
    write_text(body, pr_body(root, result, base, params, params_file))
    return result


@contextlib.contextmanager
def _staged_batch(root: Path, data_file: Path, rows: Any) -> Iterator[None]:
    """Write the new labelled batch ``rows`` to ``data_file`` (relative to ``root``), ``dvc add`` it and stage its
    .dvc file and the folder's .gitignore for the experiment; on exit, put those files and the index back as they
    were (the batch itself stays in the DVC cache, where the experiment's commit finds it)."""
    touched = [data_file.with_name(data_file.name + ".dvc"), data_file.parent / ".gitignore"]
    saved = {rel: (root / rel).read_bytes() if (root / rel).exists() else None for rel in touched}
    try:
        write_table(rows, root / data_file)
        _run(["dvc", "add", str(data_file)], root)
        _run(["git", "add", "--", *map(str, touched)], root)
        yield
    finally:
        _run(["git", "reset", "-q", "--", *map(str, touched)], root, check=False)
        for rel, content in saved.items():
            if content is None:
                (root / rel).unlink(missing_ok=True)
            else:
                (root / rel).write_bytes(content)
        (root / data_file).unlink(missing_ok=True)


# --------------------------------------------------------------------------------------------- body
def pr_body(root: Path, result: Result, base: str, params: Params, params_file: str = "params.yaml") -> str:
    """The pull-request body (Markdown): the outcome, why retraining started, the retraining data, the gate's
    verdict and, for a written branch, :func:`lifecycle.reporting.pr_report.build_report` of the branch against
    ``base`` (the current model's commit), without plots (a body cannot carry images; the PR workflow's comment
    has them)."""
    why = result.trigger
    lines = [f"# {result.title or 'Retraining'}", ""]
    if why is not None:
        lines += [f"## Why retraining started: {why.kind}", ""]
        if why.kind == "concept drift":
            lines += ["The inputs did not drift but the model got worse on the labels that arrived later: the relation "
                      "between inputs and target changed.", ""]  # fmt: skip
        if why.metric_drop:
            lines += [f"On the feedback labels: {why.metric_drop}.", ""]
        lines += [f"The monitor's reasons (`{params.paths.reports}/drift.json` at `{base[:12]}`):", ""]
        lines += [f"- {reason}" for reason in why.reasons] + [""]
    lines += ["## Retraining data", ""]
    lines += [
        f"`retrain.strategy: {params.retrain.strategy}`: "
        + ("`ingest.source` plus every labelled batch in" if params.retrain.strategy == "combined" else "only")
        + f" `{params.paths.labelled}`; this run added {result.labelled_rows} labelled rows as `{result.labelled_file}`"
        f" (DVC-tracked: `dvc pull` gets it), from the batches in `{params.paths.incoming}` and the labels in "
        f"`{params.paths.feedback}`.",
        "",
    ]
    verdict = result.decision or {}
    lines += [f"## Promotion gate: **{verdict.get('decision', 'not run')}** (`{params.paths.promotion}`)", ""]
    for criterion in verdict.get("criteria") or []:
        mark = "pass" if criterion.get("passed") else "FAIL"
        lines.append(f"- {mark}: {criterion.get('message', criterion.get('name'))}")
    lines += [
        "",
        f"Experiment `{result.experiment}`; reproduce the branch with `dvc pull && dvc repro` (changes nothing).",
        "",
    ]
    if result.code == BRANCH_WRITTEN and result.branch:
        if result.labelled_rows:
            lines += [
                f"Note: the candidate trained on the {result.labelled_rows} feedback-labelled rows above, so its "
                "feedback metrics below (the monitor's, on those same labels) are not held out and flatter it; judge "
                "it by the test split's metrics and the gate.",
                "",
            ]
        lines.append(_branch_report(root, result.branch, base, params_file))
    return "\n".join(lines).rstrip() + "\n"


def _branch_report(root: Path, branch: str, base: str, params_file: str) -> str:
    """build_report of ``branch`` against ``base``, in a temporary git worktree of the branch (removed after)."""
    from lifecycle.reporting.pr_report import build_report

    with tempfile.TemporaryDirectory(prefix="retrain-report-") as tmp:
        tree = Path(tmp) / "tree"
        _run(["git", "worktree", "add", "--detach", "-q", str(tree), branch], root)
        try:
            return build_report(tree, base, Path(tmp) / "report.md", params_file, plots=False)
        finally:
            _run(["git", "worktree", "remove", "--force", str(tree)], root, check=False)


# --------------------------------------------------------------------------------------------- shell
def _delete_branch(root: Path, branch: str) -> None:
    if _run(["git", "rev-parse", "--verify", "-q", f"refs/heads/{branch}"], root, check=False).returncode == 0:
        _run(["git", "branch", "-D", branch], root)


def _run(cmd: Sequence[str], cwd: Path, check: bool = True, stream: bool = False) -> subprocess.CompletedProcess[str]:
    """Run ``cmd`` in ``cwd`` (text output captured, or passed through to stderr with ``stream``); a non-zero exit
    with ``check`` raises :class:`LifecycleError` with the command and its output."""
    proc = subprocess.run(
        list(cmd), cwd=cwd, text=True, check=False,
        stdout=None if stream else subprocess.PIPE, stderr=None if stream else subprocess.PIPE,
    )  # fmt: skip
    if check and proc.returncode != 0:
        output = "" if stream else (proc.stderr or proc.stdout or "").strip()[-2000:]
        raise LifecycleError(
            f"`{' '.join(cmd)}` exited {proc.returncode}" + (f": {output}" if output else " (see above)")
        )
    return proc


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repo", default=".", help="repository root")
    parser.add_argument("--params", default="params.yaml", help="params file, relative to the repository root")
    parser.add_argument("--body", default="reports/pr/retrain.md", help="pull-request body (Markdown) to write")
    parser.add_argument("--summary", default="reports/pr/retrain.json", help="the outcome as JSON, for schedulers")
    args = parser.parse_args(argv)
    root = Path(args.repo).resolve()
    params = load_params(root / args.params)
    body = Path(args.body) if Path(args.body).is_absolute() else root / args.body
    result = retrain(root, params, body, args.params)
    summary = {**result.to_dict(), "body": str(body) if result.code in (BRANCH_WRITTEN, REJECTED) else None}
    write_json(Path(args.summary) if Path(args.summary).is_absolute() else root / args.summary, summary)
    log.info("%s (exit %d): %s", OUTCOMES[result.code], result.code, result.message)
    return result.code


def _entry(argv: Sequence[str] | None = None) -> None:
    code = main(argv)
    if code:
        sys.exit(code)


if __name__ == "__main__":
    cli.run(_entry)
