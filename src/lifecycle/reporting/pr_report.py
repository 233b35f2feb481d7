"""The pull-request report: metrics, params and plots of the workspace against a base git revision, in Markdown.

    python -m lifecycle.reporting --base origin/main --out reports/pr/report.md    (the shell: __main__.py)

Sections: a metrics table (base, PR, change marked better/worse by each metric's direction, and whether each
promotion gate of ``promote.<task>.min``/``max`` (the task's, ``ingest.task``) passes; "-" when there is no such
gate), the params that changed, the validation summary
(``<paths.metrics>/validate.json``), the promotion decision (``paths.promotion``, when a promote stage wrote one) and
every plot of dvc.yaml as a PNG beside the report, base and PR in one picture. The workspace's params.yaml is read
with :func:`lifecycle.config.load_params` (a params file it rejects stops the report with that error); the gates
come from :func:`lifecycle.promotion.gates` and apply to the metrics file the promote stage reads
(``<paths.metrics>/evaluate/metrics.json``).

Every number and plot comes from DVC's public command line, read from git and the DVC cache, never re-parsed by hand:
``dvc metrics diff --all --json``, ``dvc params diff --json`` and ``dvc plots diff --json`` (the Vega-Lite specs
filled with both revisions' data, exactly what ``dvc plots diff`` draws in its HTML page). The specs are rendered to
PNG by vl-convert (the Vega-Lite compiler and renderer packaged for Python), so the PNGs, the confusion matrix's
orientation included, are the pictures DVC shows. In CI, ``cml comment update`` posts the file
(.github/workflows/pr-report.yml).
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lifecycle.config import load_params
from lifecycle.errors import LifecycleError
from lifecycle.io import atomic_path, read_json
from lifecycle.modeling.metrics import CLASSIFICATION, REGRESSION, higher_is_better
from lifecycle.promotion import gates as promotion_gates

log = logging.getLogger(__name__)
WORKSPACE = "workspace"  # DVC's name of the working tree's revision
PR_LABEL = "PR"
MAX_ROWS = 40  # of the validation and promotion tables: the report is a PR comment, not a dump
IMAGE_PREFIX = "plot_"  # PNG files the report owns in its directory (rewritten on each run)
PNG_SCALE = 1.5  # vl-convert's pixel ratio: readable in a PR comment without being heavy
# Headline metrics of the pipeline's stages where a smaller value is better (the model's metrics carry their own
# direction, lifecycle.modeling.metrics.higher_is_better). Any other metric (row counts, candidates, versions)
# has no better direction: its change is shown unmarked.
LOWER_IS_BETTER = frozenset(
    {"n_drifted", "drift_share", "prediction_psi", "quarantine_fraction", "rows_quarantined", "table_failures"}
)
MODEL_METRICS = frozenset(CLASSIFICATION) | frozenset(REGRESSION)


@dataclass(frozen=True)
class Figure:
    title: str
    files: list[tuple[str, str]]  # (label, PNG file name beside the report): one picture, or one per revision


@dataclass(frozen=True)
class MetricRow:
    file: str
    name: str
    base: Any
    new: Any
    gate: str  # e.g. ">= 0.85", or "-"
    passed: bool | None  # None: no gate for this metric (or no PR value)

    @property
    def delta(self) -> float | None:
        if _number(self.base) and _number(self.new):
            return float(self.new) - float(self.base)
        return None


# --------------------------------------------------------------------------------------------- DVC's command line
def dvc_json(root: Path, *args: str) -> tuple[Any, list[str]]:
    """Run ``dvc <args> --json`` in ``root`` (the DVC of this interpreter) -> (parsed stdout, its warnings).

    DVC's warnings (stderr lines such as "DVC failed to load some metrics for following revisions") are returned for
    the report to show. Raises :class:`LifecycleError` naming the command when DVC exits non-zero or prints no JSON.
    """
    command = [sys.executable, "-m", "dvc", *args, "--json"]
    env = {**os.environ, "DVC_NO_ANALYTICS": "1"}
    proc = subprocess.run(command, cwd=root, capture_output=True, text=True, env=env, check=False)
    shown = "dvc " + " ".join(args) + " --json"
    if proc.returncode != 0:
        raise LifecycleError(f"`{shown}` failed in {root} (exit {proc.returncode}): {proc.stderr.strip()[-2000:]}")
    try:
        data = json.loads(proc.stdout) if proc.stdout.strip() else {}
    except ValueError as exc:
        raise LifecycleError(f"`{shown}` printed no JSON in {root}: {proc.stdout[:300]!r}") from exc
    warnings = [line.strip() for line in proc.stderr.splitlines() if line.strip()]
    return data, [f"`{shown}`: {w}" for w in warnings]


def check_revision(root: Path, base: str) -> None:
    """Raise :class:`LifecycleError` unless ``base`` names a commit of the git repository at ``root``."""
    proc = subprocess.run(
        ["git", "rev-parse", "--verify", "--quiet", f"{base}^{{commit}}"],
        cwd=root,
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise LifecycleError(
            f"--base {base!r}: not a git revision of {root}; fetch it (in CI: actions/checkout with fetch-depth: 0)"
        )


# --------------------------------------------------------------------------------------------- gathering
def direction(name: str) -> int | None:
    """+1 when a larger value of metric ``name`` is better, -1 when a smaller one is, None when neither is.

    ``name`` as ``dvc metrics diff`` prints it (``a.b.c``): the last part decides; ``feedback_<metric>`` (monitor) and
    the cross-validation score (train) are model metrics with :func:`higher_is_better`'s direction; the stages'
    other headline metrics are in :data:`LOWER_IS_BETTER` or have no direction (a higher PSI is not better)."""
    key = name.rsplit(".", 1)[-1].removeprefix("feedback_")
    if key in MODEL_METRICS:
        return 1 if higher_is_better(key) else -1
    if key in LOWER_IS_BETTER:
        return -1
    return None


def metric_rows(
    diff: Mapping[str, Mapping[str, Mapping[str, Any]]], gates: Mapping[str, tuple], gated_file: str | None = None
) -> list[MetricRow]:
    """``dvc metrics diff --all --json`` -> one row per metric; ``gates`` (metric -> (">=" | "<=", bound)) applied to
    the PR's values of ``gated_file`` (every file when None)."""
    rows = []
    for file in sorted(diff):
        for name in sorted(diff[file]):
            values = diff[file][name]
            base, new = values.get("old"), values.get("new")
            gate, passed = "-", None
            # top-level keys of the gated file only: `feedback_accuracy` of monitor is not the gated metric
            if name in gates and (gated_file is None or Path(file) == Path(gated_file)):
                op, threshold = gates[name]
                gate = f"{op} {threshold:g}"
                if _number(new):
                    passed = float(new) >= threshold if op == ">=" else float(new) <= threshold
            rows.append(MetricRow(file, name, base, new, gate, passed))
    return rows


def flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    """Nested mappings -> ``{"a.b": value}`` (lists kept as values)."""
    if not isinstance(data, Mapping):
        return {prefix or "value": data}
    out: dict[str, Any] = {}
    for key, value in data.items():
        dotted = f"{prefix}.{key}" if prefix else str(key)
        out.update(flatten(value, dotted) if isinstance(value, Mapping) and value else {dotted: value})
    return out


def read_optional_json(path: Path) -> dict[str, Any] | None:
    """A JSON file the report summarises when it exists (validate's metrics, promote's decision)."""
    if not path.exists():
        return None
    try:
        data = read_json(path)
    except (LifecycleError, ValueError) as exc:
        log.warning("cannot read %s: %s", path, exc)
        return {"error": f"unreadable: {exc}"}
    return data if isinstance(data, dict) else {"value": data}


# --------------------------------------------------------------------------------------------- plots
def render_plots(root: Path, base: str, out_dir: Path) -> tuple[list[Figure], list[str]]:
    """Every plot of dvc.yaml for ``base`` and the workspace -> PNG files in ``out_dir``, and warnings.

    ``dvc plots diff <base> --json`` gives each plot's Vega-Lite spec with both revisions' data filled in (a plot
    without data, e.g. the other task's, is left out by DVC); vl-convert renders it to PNG. Image plots (PNG
    outputs) are copied, one per revision. A plot that cannot be rendered is a warning, not a lost report."""
    import vl_convert

    figures: list[Figure] = []
    slugs: set[str] = set()
    with tempfile.TemporaryDirectory(prefix="pr_report_") as tmp:
        data, warnings = dvc_json(root, "plots", "diff", base, "-o", tmp)
        warnings = [w.replace(tmp, "<tmp>") for w in warnings]  # the same report for the same inputs
        warnings += [f"plots: {_error_text(e)}" for e in data.get("errors", [])]
        for name, items in sorted((data.get("data") or {}).items()):
            slug = IMAGE_PREFIX + _slug(name.split("::")[-1], slugs)
            try:
                if items and all(item.get("type") == "image" for item in items):
                    files = _copy_images(items, Path(tmp), base, out_dir, slug)
                    if files:
                        figures.append(Figure(Path(name).name, files))
                for k, item in enumerate(i for i in items if i.get("type") == "vega"):
                    spec = item["content"]
                    file = f"{slug}.png" if k == 0 else f"{slug}_{k + 1}.png"
                    with atomic_path(out_dir / file) as path:
                        path.write_bytes(vl_convert.vegalite_to_png(spec, scale=PNG_SCALE))
                    figures.append(Figure(_title(spec, name), [("", file)]))
            except Exception as exc:  # one odd plot must not cost the whole report
                log.warning("plot %s skipped: %s", name, exc)
                warnings.append(f"plot {name} skipped: {exc}")
    return figures, warnings


def _copy_images(items: Sequence[Mapping[str, Any]], tmp: Path, base: str, out_dir: Path, slug: str) -> list:
    found = []
    for item in sorted(items, key=lambda i: _rev_label((i.get("revisions") or [""])[0], base) == PR_LABEL):
        src = tmp / str(item.get("url", ""))
        if not src.is_file():
            src = Path(str(item.get("url", "")))
        if not src.is_file():
            continue
        label = _rev_label((item.get("revisions") or [""])[0], base)
        file = f"{slug}_{'pr' if label == PR_LABEL else 'base'}.png"
        with atomic_path(out_dir / file) as path:
            shutil.copyfile(src, path)
        found.append((label, file))
    return found


def _title(spec: Mapping[str, Any], name: str) -> str:
    title = spec.get("title")
    if isinstance(title, Mapping):
        title = title.get("text")
    return str(title) if title else name


def _error_text(error: Mapping[str, Any]) -> str:
    where = " ".join(str(error[k]) for k in ("name", "rev", "source") if error.get(k))
    return f"{where}: {error.get('type', '')} {error.get('msg', '')}".strip()


def _rev_label(rev: Any, base: str) -> str:
    return PR_LABEL if str(rev) == WORKSPACE else f"base ({base})" if str(rev) == base else str(rev)


def _slug(text: str, used: set[str]) -> str:
    slug = re.sub(r"[^A-Za-z0-9]+", "_", Path(text).with_suffix("").as_posix()).strip("_").lower() or "plot"
    candidate, n = slug, 1
    while candidate in used:
        n += 1
        candidate = f"{slug}_{n}"
    used.add(candidate)
    return candidate


# --------------------------------------------------------------------------------------------- markdown
def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if _number(value):
        return f"{value:.4g}" if isinstance(value, float) else str(value)
    return str(value).replace("|", "\\|")


def _delta(row: MetricRow) -> str:
    delta = row.delta
    if delta is None:
        if row.base == row.new:
            return "-"
        return "removed" if row.new is None else "added" if row.base is None else "changed"
    if delta == 0:
        return "0"
    sign = direction(row.name)
    if sign is None:
        return f"{delta:+.4g}"
    return f"{delta:+.4g} {'▲ better' if delta * sign > 0 else '▼ worse'}"


def _gate(row: MetricRow) -> str:
    if row.gate == "-":
        return "-"
    if row.passed is None:
        return f"{row.gate}: no value"
    return f"{row.gate}: {'✅ pass' if row.passed else '❌ fail'}"


def render_markdown(
    base: str,
    rows: Sequence[MetricRow],
    params_diff: Mapping[str, Mapping[str, Mapping[str, Any]]],
    validation: Mapping[str, Any] | None,
    promotion: Mapping[str, Any] | None,
    plots: Sequence[Figure],
    errors: Sequence[str] = (),
    promotion_file: str = "models/promotion.json",
) -> str:
    """The report's Markdown (deterministic for the same inputs); ``promotion_file`` is named when there is no
    ``promotion`` decision."""
    lines = [f"# Pipeline report: this PR vs `{base}`", ""]
    failed = [r for r in rows if r.passed is False]
    if failed:
        lines += [f"**{len(failed)} promotion gate(s) fail:** " + ", ".join(f"`{r.name}`" for r in failed), ""]
    lines += ["## Metrics", ""]
    # no longer reported (moved to a plain output or dropped): listed apart, unless a gate needs the value
    removed = [r for r in rows if r.new is None and r.base is not None and r.gate == "-"]
    headline = [r for r in rows if r not in removed and (r.gate != "-" or r.base != r.new)]
    unchanged = [r for r in rows if r not in headline and r not in removed and _number(r.new)]
    header = ["| File | Metric | Base | PR | Change | Gate |", "|---|---|---:|---:|---:|---|"]
    if headline:
        lines += header + [_metric_line(r) for r in headline]
    elif rows:
        lines.append("No metric changed.")
    for hidden, summary in (
        (unchanged, f"{len(unchanged)} unchanged metrics"),
        (removed, f"{len(removed)} metrics of {base} no longer reported (removed, or moved to a plain output)"),
    ):
        if not hidden:
            continue
        lines += ["", f"<details><summary>{summary}</summary>", "", *header]
        lines += [_metric_line(r) for r in hidden[: MAX_ROWS * 2]]
        if len(hidden) > MAX_ROWS * 2:
            lines.append(f"| ... | {len(hidden) - MAX_ROWS * 2} more | | | | |")
        lines += ["", "</details>"]
    if not rows:
        lines.append("No metrics found (is the pipeline reproduced and are its metrics declared in dvc.yaml?).")
    lines += ["", "## Params changed", ""]
    changed = [(file, key, v) for file in sorted(params_diff) for key, v in sorted(params_diff[file].items())]
    if changed:
        lines += ["| File | Param | Base | PR |", "|---|---|---|---|"]
        lines += [f"| {f} | {k} | {_fmt(v.get('old'))} | {_fmt(v.get('new'))} |" for f, k, v in changed]
    else:
        lines.append("No params changed.")
    lines += ["", "## Validation", ""]
    lines += _key_values(validation, "No validation summary (the validate stage wrote none).")
    lines += ["", "## Promotion", ""]
    if promotion is not None:
        decision = next((promotion[k] for k in ("decision", "promoted", "promote") if k in promotion), None)
        if decision is not None:
            lines += [f"**Decision:** {_fmt(decision)}", ""]
    lines += _key_values(
        promotion, f"No promotion decision ({promotion_file} not found: the promote stage has not run)."
    )
    lines += ["", "## Plots", ""]
    for figure in plots:
        lines += [f"### {figure.title}", ""]
        if len(figure.files) == 1:
            lines += [f"![{figure.title}](./{figure.files[0][1]})", ""]
        else:
            lines += ["| " + " | ".join(label for label, _ in figure.files) + " |"]
            lines += ["|" + "---|" * len(figure.files)]
            lines += ["| " + " | ".join(f"![{label}](./{file})" for label, file in figure.files) + " |", ""]
    if not plots:
        lines.append("No plots.")
    if errors:
        lines += ["", "## Warnings", "", *[f"- {e}" for e in errors]]
    return "\n".join(lines).rstrip() + "\n"


def _metric_line(r: MetricRow) -> str:
    return f"| {r.file} | {r.name} | {_fmt(r.base)} | {_fmt(r.new)} | {_delta(r)} | {_gate(r)} |"


def _key_values(data: Mapping[str, Any] | None, missing: str) -> list[str]:
    """A summary table of a JSON document: top-level values, nested values unless zero/false/empty (those are
    counted), and lists of checks (dicts with a ``message``) as a bullet list with their pass/fail mark."""
    if data is None:
        return [missing]
    flat = flatten(data)
    checks = [(k, v) for k, v in flat.items() if _is_checks(v)]
    shown = {k: v for k, v in flat.items() if not _is_checks(v) and ("." not in k or _informative(v))}
    lines = ["| Key | Value |", "|---|---|"]
    lines += [f"| {k} | {_fmt(v)} |" for k, v in list(shown.items())[:MAX_ROWS]]
    if len(shown) > MAX_ROWS:
        lines.append(f"| ... | {len(shown) - MAX_ROWS} more |")
    hidden = len(flat) - len(shown) - len(checks)
    if hidden:
        lines += ["", f"{hidden} nested values are zero, false or empty (not listed)."]
    for key, items in checks:
        lines += ["", f"**{key}:**", ""]
        for item in items:
            mark = "" if "passed" not in item else ("✅ " if item["passed"] else "❌ ")
            lines.append(f"- {mark}{item['message']}")
    return lines


def _is_checks(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(i, Mapping) and "message" in i for i in value)


def _informative(value: Any) -> bool:
    return not (value in (0, False, None, "") or (isinstance(value, list | dict) and not value))


# --------------------------------------------------------------------------------------------- the report
def build_report(root: Path, base: str, out: Path, params_file: str = "params.yaml", plots: bool = True) -> str:
    """Write the report to ``out`` (PNG plots beside it) for the workspace of ``root`` against ``base``; return it.

    Raises :class:`lifecycle.errors.ParamsError` when ``root/params_file`` does not load, and
    :class:`LifecycleError` when ``base`` is not a git revision or a DVC command fails.
    """
    params = load_params(root / params_file)
    check_revision(root, base)
    out.parent.mkdir(parents=True, exist_ok=True)
    for stale in out.parent.glob(f"{IMAGE_PREFIX}*.png"):
        stale.unlink()
    metrics, errors = dvc_json(root, "metrics", "diff", base, "--all")
    params_diff, params_warnings = dvc_json(root, "params", "diff", base)
    errors += params_warnings
    images: list[Figure] = []
    if plots:
        images, plot_warnings = render_plots(root, base, out.parent)
        errors += plot_warnings
    gated_file = (Path(params.paths.metrics) / "evaluate" / "metrics.json").as_posix()  # what promote reads
    text = render_markdown(
        base,
        metric_rows(metrics, promotion_gates(params), gated_file),
        params_diff,
        read_optional_json(root / params.paths.metrics / "validate.json"),
        read_optional_json(root / params.paths.promotion),
        images,
        errors,
        promotion_file=params.paths.promotion,
    )
    with atomic_path(out) as tmp:
        tmp.write_text(text, encoding="utf-8")
    log.info("wrote %s with %d metrics files and %d plots against %s", out, len(metrics), len(images), base)
    return text
