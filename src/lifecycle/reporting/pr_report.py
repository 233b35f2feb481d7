"""The pull-request report: metrics, params and plots of the workspace against a base git revision, in Markdown.

    python -m lifecycle.reporting.pr_report --base origin/main --out reports/pr/report.md

Sections: a metrics table (base, PR, change, and whether each promotion gate of ``promote.<task>.min``/``max``
(the task's, ``ingest.task``) in params.yaml passes; "-" when there is no such gate), the params that changed, the validation summary
(``<paths.metrics>/validate.json``), the promotion decision (``paths.promotion``, when a promote stage wrote one) and
every plot of dvc.yaml drawn as a PNG beside the report, base and PR overlaid. The workspace's params.yaml is read
with :func:`lifecycle.config.load_params` (a params file it rejects stops the report with that error).
All numbers come from DVC (``Repo.metrics.diff``, ``Repo.params.diff``, ``Repo.plots.diff``): the same as
``dvc metrics diff`` and ``dvc plots diff`` print, read from git and the DVC cache, not re-parsed by hand. In CI,
``cml comment update`` posts the file (see .github/workflows/pr-report.yml).
"""

from __future__ import annotations

import argparse
import base64
import logging
import math
import re
import sys
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lifecycle import cli
from lifecycle.config import Promote, load_params
from lifecycle.errors import LifecycleError
from lifecycle.io import atomic_path, read_json
from lifecycle.modeling.metrics import higher_is_better

log = logging.getLogger(__name__)
WORKSPACE = "workspace"
PR_LABEL = "PR"
MAX_ROWS = 40  # of the validation and promotion tables: the report is a PR comment, not a dump
IMAGE_PREFIX = "plot_"  # PNG files the report owns in its directory (rewritten on each run)


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


# --------------------------------------------------------------------------------------------- gathering
def promotion_gates(promote: Promote, task: str) -> dict[str, tuple[str, float]]:
    """``promote.<task>.min`` / ``.max`` -> metric -> (">=" | "<=", threshold); {} without thresholds.

    ``task``: the PR's ``ingest.task``, whose thresholds apply (raises ValueError for another name)."""
    gates = promote.gates(task)
    out: dict[str, tuple[str, float]] = {}
    for thresholds, op in ((gates.min, ">="), (gates.max, "<=")):
        out.update({str(m): (op, float(v)) for m, v in thresholds.items() if _number(v)})
    return out


def metric_rows(diff: Mapping[str, Mapping[str, Mapping[str, Any]]], gates: Mapping[str, tuple]) -> list[MetricRow]:
    """``Repo.metrics.diff(all=True)["diff"]`` -> one row per metric, gates applied to the PR's value."""
    rows = []
    for file in sorted(diff):
        for name in sorted(diff[file]):
            values = diff[file][name]
            base, new = values.get("old"), values.get("new")
            gate, passed = "-", None
            if name in gates:  # top-level keys only: `feedback.test.accuracy` of monitor is not the gated metric
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
def render_plots(repo: Any, base: str, out_dir: Path) -> list[Figure]:
    """Every plot of dvc.yaml for ``base`` and the workspace -> PNG files in ``out_dir``.

    Data plots (JSON/CSV) are drawn with matplotlib, base and PR overlaid; image plots (PNG outputs) are copied,
    one per revision. A file that both a stage's ``plots:`` and the top-level ``plots:`` declare is drawn once,
    with the top-level definition's template and axes."""
    from dvc.render.match import match_defs_renderers
    from dvc_render import ImageRenderer

    data = repo.plots.diff(revs=[base, WORKSPACE])
    items = match_defs_renderers(data, templates_dir=repo.plots.templates_dir)
    top_level = {item.renderer.name.split("::", 1)[1] for item in items if "::" in item.renderer.name}
    figures: list[Figure] = []
    seen: set[str] = set()
    slugs: set[str] = set()
    for item in items:
        renderer = item.renderer
        if renderer.name in top_level or renderer.name in seen:
            continue  # a stage-level twin of a top-level definition, or an image already copied
        seen.add(renderer.name)
        name = IMAGE_PREFIX + _slug(renderer.name.split("::")[-1], slugs)
        try:
            if isinstance(renderer, ImageRenderer):
                files = _copy_images(renderer.datapoints, base, out_dir, name)
                if files:
                    figures.append(Figure(Path(renderer.name).name, files))
            elif _draw(renderer.datapoints, renderer.properties, base, out_dir / f"{name}.png"):
                title = str(renderer.properties.get("title") or renderer.name)
                figures.append(Figure(title, [("", f"{name}.png")]))
        except Exception as exc:  # one odd plot must not cost the whole report
            log.warning("plot %s skipped: %s", renderer.name, exc)
    return figures


def _copy_images(points: Sequence[Mapping[str, Any]], base: str, out_dir: Path, name: str) -> list[tuple[str, str]]:
    found = []
    for point in sorted(points or [], key=lambda p: p.get("rev") == WORKSPACE):  # base first
        src = str(point.get("src", ""))
        if not src.startswith("data:image") or "," not in src:
            continue
        label = _rev_label(point.get("rev", ""), base)
        file = f"{name}_{'pr' if label == PR_LABEL else 'base'}.png"
        with atomic_path(out_dir / file) as tmp:
            tmp.write_bytes(base64.b64decode(src.split(",", 1)[1]))
        found.append((label, file))
    return found


def _draw(points: Sequence[Mapping[str, Any]], props: Mapping[str, Any], base: str, path: Path) -> bool:
    """Draw one DVC plot with matplotlib: base and PR overlaid (side by side for confusion matrices)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x, y = props.get("x"), props.get("y")
    if not points or not isinstance(x, str) or not isinstance(y, str):
        return False
    template = str(props.get("template", "linear"))
    by_rev: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for point in points:
        by_rev[_rev_label(point.get("rev", ""), base)].append(point)
    labels = sorted(by_rev, key=lambda r: r == PR_LABEL)  # base first, the PR last (on top)
    title = str(props.get("title") or path.stem)
    if "confusion" in template:
        fig, axes = plt.subplots(1, len(labels), figsize=(4.2 * len(labels), 3.8), squeeze=False)
        for ax, label in zip(axes[0], labels, strict=True):
            _confusion(ax, by_rev[label], x, y, label)
    else:
        fig, ax = plt.subplots(figsize=(6.4, 4.2))
        if template.startswith("bar"):
            _bars(ax, by_rev, labels, x, y)
        else:
            classes = sorted({str(p.get("class", "")) for p in points})
            colors = {c: f"C{i % 10}" for i, c in enumerate(classes)}  # one colour per class, in both revisions
            for label in labels:
                style = "-" if label == PR_LABEL else "--"
                for group in classes:
                    members = [m for m in by_rev[label] if str(m.get("class", "")) == group]
                    if not members:
                        continue
                    xs, ys = [float(m[x]) for m in members], [float(m[y]) for m in members]
                    tag = f"{label} {group}".strip()
                    if template.startswith("scatter"):
                        ax.scatter(xs, ys, s=6, alpha=0.5, color=colors[group], label=tag)
                    else:
                        ax.plot(xs, ys, style, color=colors[group], label=tag)
        ax.set_xlabel(x)
        ax.set_ylabel(y)
        ax.legend(fontsize=7)
    fig.suptitle(title)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=90, metadata={"Software": None})
    plt.close(fig)
    return True


def _bars(ax: Any, by_rev: Mapping[str, Sequence[Mapping[str, Any]]], labels: Sequence[str], x: str, y: str) -> None:
    """Horizontal bars (``y`` = category, ``x`` = value), one bar per revision side by side, sorted by the PR."""
    values = {label: {str(p[y]): float(p[x]) for p in by_rev[label]} for label in labels}
    last = values[labels[-1]]
    categories = sorted({c for v in values.values() for c in v}, key=lambda c: last.get(c, float("-inf")))
    height = 0.8 / len(labels)
    for i, label in enumerate(labels):
        positions = [k + i * height for k in range(len(categories))]
        ax.barh(positions, [values[label].get(c, 0.0) for c in categories], height=height, label=label)
    ax.set_yticks([k + 0.4 - height / 2 for k in range(len(categories))], categories, fontsize=7)


def _confusion(ax: Any, rows: Sequence[Mapping[str, Any]], x: str, y: str, label: str) -> None:
    actual = sorted({str(r.get(x)) for r in rows} | {str(r.get(y)) for r in rows})
    index = {c: i for i, c in enumerate(actual)}
    counts = [[0] * len(actual) for _ in actual]
    for r in rows:
        counts[index[str(r.get(y))]][index[str(r.get(x))]] += 1
    ax.imshow(counts, cmap="Blues")
    for i, row in enumerate(counts):
        for j, value in enumerate(row):
            ax.text(j, i, str(value), ha="center", va="center", fontsize=7)
    ax.set_xticks(range(len(actual)), actual, rotation=45, ha="right", fontsize=7)
    ax.set_yticks(range(len(actual)), actual, fontsize=7)
    ax.set_xlabel(x)
    ax.set_ylabel(y)
    ax.set_title(label)


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
    if _number(value):
        return f"{value:.4g}" if isinstance(value, float) else str(value)
    return str(value).replace("|", "\\|")


def _delta(row: MetricRow) -> str:
    delta = row.delta
    if delta is None:
        return "-" if row.base == row.new else "changed"
    if delta == 0:
        return "0"
    better = (delta > 0) == higher_is_better(row.name.rsplit(".", 1)[-1])
    return f"{delta:+.4g} {'▲' if better else '▼'}"


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
    headline = [r for r in rows if r.gate != "-" or r.base != r.new]
    unchanged = [r for r in rows if r not in headline and _number(r.new)]
    header = ["| File | Metric | Base | PR | Change | Gate |", "|---|---|---:|---:|---:|---|"]
    if headline:
        lines += header + [_metric_line(r) for r in headline]
    elif rows:
        lines.append("No metric changed.")
    if unchanged:
        lines += ["", f"<details><summary>{len(unchanged)} unchanged metrics</summary>", "", *header]
        lines += [_metric_line(r) for r in unchanged[: MAX_ROWS * 2]]
        if len(unchanged) > MAX_ROWS * 2:
            lines.append(f"| ... | {len(unchanged) - MAX_ROWS * 2} more | | | | |")
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


# --------------------------------------------------------------------------------------------- command
def build_report(root: Path, base: str, out: Path, params_file: str = "params.yaml", plots: bool = True) -> str:
    """Write the report to ``out`` (PNG plots beside it) for the workspace of ``root`` against ``base``; return it.

    Raises :class:`lifecycle.errors.ParamsError` when ``root/params_file`` does not load, and
    :class:`LifecycleError` when ``base`` is not a git revision.
    """
    from dvc.exceptions import DvcException
    from dvc.repo import Repo

    params = load_params(root / params_file)
    errors: list[str] = []
    out.parent.mkdir(parents=True, exist_ok=True)
    for stale in out.parent.glob(f"{IMAGE_PREFIX}*.png"):
        stale.unlink()
    with Repo(str(root)) as repo:
        try:
            repo.scm.resolve_rev(base)
        except Exception as exc:
            raise LifecycleError(
                f"--base {base!r}: not a git revision of {root} ({exc}); fetch it (checkout with fetch-depth: 0)"
            ) from exc
        metrics = repo.metrics.diff(a_rev=base, b_rev=WORKSPACE, all=True)
        params_diff = repo.params.diff(a_rev=base, b_rev=WORKSPACE)
        for result, what in ((metrics, "metrics"), (params_diff, "params")):
            for rev, problem in (result.get("errors") or {}).items():
                errors.append(f"{what} of {rev}: {problem}")
        images: list[Figure] = []
        if plots:
            try:
                images = render_plots(repo, base, out.parent)
            except DvcException as exc:
                errors.append(f"plots: {exc}")
    text = render_markdown(
        base,
        metric_rows(metrics.get("diff", {}), promotion_gates(params.promote, params.ingest.task)),
        params_diff.get("diff", {}),
        read_optional_json(root / params.paths.metrics / "validate.json"),
        read_optional_json(root / params.paths.promotion),
        images,
        errors,
        promotion_file=params.paths.promotion,
    )
    with atomic_path(out) as tmp:
        tmp.write_text(text, encoding="utf-8")
    log.info("wrote %s with %d metrics and %d plots against %s", out, len(metrics.get("diff", {})), len(images), base)
    return text


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", required=True, help="git revision to compare with, e.g. origin/main or HEAD~1")
    parser.add_argument("--out", default="reports/pr/report.md", help="Markdown file; PNG plots are written beside it")
    parser.add_argument("--repo", default=".", help="repository root")
    parser.add_argument("--params", default="params.yaml", help="params file, relative to the repository root")
    parser.add_argument("--no-plots", action="store_true", help="skip the plots")
    parser.add_argument("--quiet", action="store_true", help="do not print the report")
    args = parser.parse_args(argv)
    text = build_report(Path(args.repo), args.base, Path(args.out), args.params, plots=not args.no_plots)
    if not args.quiet:
        sys.stdout.write(text)


if __name__ == "__main__":
    cli.run(main)
