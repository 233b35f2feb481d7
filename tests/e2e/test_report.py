"""The pull-request report (`python -m lifecycle.reporting --base REV`) and the offline plots page, on real git + DVC
repositories in tmp dirs: a tiny one with two commits whose params and metrics differ (exact deltas), and a copy of
the built pipeline with one train param changed and reproduced."""

from __future__ import annotations

import json
import re
import shutil
import sys
from pathlib import Path

import pytest
import yaml
from tests.conftest import ROOT, git_commit, run, set_params

from lifecycle.config import load_params
from lifecycle.promotion import gates as promotion_gates

DVC_YAML = """
params:
  - params.yaml
metrics:
  - metrics/evaluate/metrics.json
  - metrics/validate.json
plots:
  - metrics/evaluate/plots/custom/roc.json:
      x: fpr
      y: tpr
      title: ROC
"""


def params_with(**sections: dict) -> dict:
    """The repository's params.yaml (the report loads it whole, like every stage) with ``sections`` updated."""
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    for name, changes in sections.items():
        params[name].update(changes)
    return params


def write(repo: Path, accuracy: float, log_loss: float, alpha: int) -> None:
    files = {
        "params.yaml": params_with(
            train={"ridge": {"alpha": alpha}},
            promote={"classification": {"min": {"accuracy": 0.8}, "max": {"log_loss": 0.5}, "min_improvement": {}}},
        ),
        "metrics/evaluate/metrics.json": {"accuracy": accuracy, "log_loss": log_loss},
        "metrics/validate.json": {"success": True, "rows_checked": 4000, "rows_quarantined": 12},
        "metrics/evaluate/plots/custom/roc.json": [
            {"fpr": x / 10, "tpr": min(1.0, (x / 10) ** (1 / (alpha + 1)))} for x in range(11)
        ],
    }
    for name, content in files.items():
        path = repo / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(content) if name.endswith(".yaml") else json.dumps(content))


@pytest.fixture
def tiny_repo(tmp_path: Path) -> Path:
    """Two commits: base (alpha 1, accuracy 0.80, log_loss 0.40) -> PR (alpha 2, accuracy 0.85, log_loss 0.60)."""
    repo = tmp_path / "tiny"
    repo.mkdir()
    run(["git", "init", "-q", "-b", "main"], repo)
    run(["dvc", "init", "-q"], repo)
    run(["dvc", "config", "core.analytics", "false"], repo)
    (repo / "dvc.yaml").write_text(DVC_YAML)
    write(repo, 0.80, 0.40, 1)
    git_commit(repo, "base")
    write(repo, 0.85, 0.60, 2)
    git_commit(repo, "pr")
    return repo


def report(repo: Path, *args: str) -> str:
    proc = run(
        [
            sys.executable,
            "-m",
            "lifecycle.reporting",
            "--base",
            "HEAD~1",
            "--out",
            "reports/pr/report.md",
            *args,
        ],
        repo,
    )
    text = (repo / "reports/pr/report.md").read_text()
    assert proc.stdout == text  # printed and written
    return text


def test_report_prints_deltas_gates_params_and_plots(tiny_repo: Path) -> None:
    text = report(tiny_repo)
    assert "| metrics/evaluate/metrics.json | accuracy | 0.8 | 0.85 | +0.05 ▲ better | >= 0.8: ✅ pass |" in text
    assert "| metrics/evaluate/metrics.json | log_loss | 0.4 | 0.6 | +0.2 ▼ worse | <= 0.5: ❌ fail |" in text
    assert "**1 promotion gate(s) fail:** `log_loss`" in text
    assert "| params.yaml | train.ridge.alpha | 1 | 2 |" in text
    assert "train.model" not in text  # unchanged params are not listed
    assert "| rows_quarantined | 12 |" in text  # validation summary
    assert "No promotion decision (models/promotion.json not found" in text
    images = re.findall(r"!\[[^\]]*\]\(\./([^)]+\.png)\)", text)
    assert images, text
    for image in images:
        assert (tiny_repo / "reports/pr" / image).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_report_shows_the_promotion_decision(tiny_repo: Path) -> None:
    decision = {
        "decision": "reject",
        "criteria": [
            {"message": "accuracy 0.85 >= min 0.8", "passed": True},
            {"message": "log_loss 0.6 <= max 0.5", "passed": False},
        ],
    }
    (tiny_repo / "models").mkdir()
    (tiny_repo / "models/promotion.json").write_text(json.dumps(decision))
    text = report(tiny_repo, "--no-plots")
    assert "**Decision:** reject" in text
    assert "- ✅ accuracy 0.85 >= min 0.8" in text
    assert "- ❌ log_loss 0.6 <= max 0.5" in text


def test_no_gates_show_a_dash(tiny_repo: Path) -> None:
    (tiny_repo / "params.yaml").write_text(
        yaml.safe_dump(params_with(promote={"classification": {"min": {}, "max": {}, "min_improvement": {}}}))
    )
    text = report(tiny_repo, "--no-plots")
    assert "| metrics/evaluate/metrics.json | accuracy | 0.8 | 0.85 | +0.05 ▲ better | - |" in text
    assert "gate(s) fail" not in text


def test_unknown_base_is_a_clear_error(tiny_repo: Path) -> None:
    proc = run([sys.executable, "-m", "lifecycle.reporting", "--base", "nope", "--quiet"], tiny_repo, check=False)
    assert proc.returncode == 1
    assert "--base 'nope': not a git revision" in proc.stderr
    assert "fetch-depth: 0" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_params_the_config_rejects_stop_the_report(tiny_repo: Path) -> None:
    set_params(tiny_repo, {"promote": {"strictt": True}})
    proc = run([sys.executable, "-m", "lifecycle.reporting", "--base", "HEAD~1"], tiny_repo, check=False)
    assert proc.returncode == 1
    assert "params.yaml: promote.strictt: unknown key; did you mean 'promote.strict'?" in proc.stderr
    assert "Traceback" not in proc.stderr


# ------------------------------------------------------------------------------------- the real pipeline
@pytest.fixture(scope="module")
def changed_repo(built_repo: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The built pipeline committed as the base, then a commit with train.hist_gradient_boosting.max_iter 30 -> 10
    reproduced up to evaluate (what the report compares; the later stages are left for the suite's other tests)."""
    repo = tmp_path_factory.mktemp("report") / "repo"
    shutil.copytree(built_repo, repo, symlinks=True, ignore=shutil.ignore_patterns("tmp"))
    git_commit(repo, "base: the built pipeline")
    set_params(repo, {"train": {"hist_gradient_boosting": {"max_iter": 10}}})
    run(["dvc", "repro", "--quiet", "evaluate"], repo, env={"OMP_NUM_THREADS": "1"})  # train, evaluate: enough
    git_commit(repo, "pr: fewer boosting iterations")
    return repo


@pytest.mark.slow
@pytest.mark.xdist_group("report_pipeline")  # one worker builds changed_repo once for both tests
def test_report_on_the_pipeline(changed_repo: Path) -> None:
    text = report(changed_repo)
    assert "| params.yaml | train.hist_gradient_boosting.max_iter | 30 | 10 |" in text
    base = json.loads(run(["git", "show", "HEAD~1:metrics/evaluate/metrics.json"], changed_repo).stdout)
    new = json.loads((changed_repo / "metrics/evaluate/metrics.json").read_text())
    gates = promotion_gates(load_params(changed_repo / "params.yaml"))
    line = next(ln for ln in text.splitlines() if ln.startswith("| metrics/evaluate/metrics.json | accuracy |"))
    cells = [c.strip() for c in line.strip("|").split("|")]
    assert float(cells[2]) == pytest.approx(base["accuracy"], abs=1e-4)
    assert float(cells[3]) == pytest.approx(new["accuracy"], abs=1e-4)
    assert float(cells[4].split()[0]) == pytest.approx(new["accuracy"] - base["accuracy"], abs=1e-4)
    if "accuracy" in gates:
        assert ("✅ pass" if new["accuracy"] >= gates["accuracy"][1] else "❌ fail") in cells[5]
    assert "## Validation" in text
    assert "| success | yes |" in text
    if (changed_repo / "models/promotion.json").exists():
        decision = json.loads((changed_repo / "models/promotion.json").read_text())
        assert f"**Decision:** {decision['decision']}" in text
    assert "### Confusion matrix (test split)" in text
    assert len(list((changed_repo / "reports/pr").glob("plot_*.png"))) >= 4


@pytest.mark.slow
@pytest.mark.xdist_group("report_pipeline")
def test_plots_page_works_offline(changed_repo: Path, tmp_path: Path) -> None:
    """`dvc plots diff` uses the repository's template (config plots.html_template): vega inlined, no CDN."""
    template = (ROOT / ".dvc/plots/html/offline.html").read_text()
    for library in ("vega 5.", "vega-lite 5.", "vega-embed 6."):
        assert f"<!-- {library}" in template
    run(["dvc", "plots", "diff", "HEAD~1", "-o", str(tmp_path / "plots")], changed_repo)
    html = (tmp_path / "plots/index.html").read_text()
    assert re.findall(r"<script[^>]*\ssrc\s*=", html) == []
    assert "cdn.jsdelivr" not in html
    assert "vegaEmbed(" in html
    assert html.count("<script>") >= 3  # the three inlined libraries, then the plots
