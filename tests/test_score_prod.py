"""``python -m lifecycle.score_prod``: a batch scored outside the pipeline with a model file or the registry's."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from lifecycle import score_prod
from lifecycle.errors import LifecycleError
from lifecycle.io import write_table
from tests.scoring import batch, train_small_model

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return train_small_model(tmp_path_factory.mktemp("models"))


def test_score_prod_command_with_a_model_file(trained, tmp_path) -> None:
    d = trained["dir"]
    write_table(batch(900), tmp_path / "new.csv")
    proc = subprocess.run(
        [sys.executable, "-m", "lifecycle.score_prod", "--params", str(ROOT / "params.yaml"),
         "--batch", str(tmp_path / "new.csv"), "--model", str(d / "model.joblib"), "--out", str(tmp_path / "s.parquet")],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["rows_read"] == 900
    assert summary["model_version"] == trained["record"].model.sha256[:12]
    out = pd.read_parquet(tmp_path / "s.parquet")
    assert len(out) == summary["rows_scored"]
    assert (tmp_path / "s.quarantine.parquet").exists()


def test_score_prod_without_a_prod_model_says_what_to_do(tmp_path) -> None:
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    write_table(batch(10), tmp_path / "new.csv")
    argv = ["--batch", str(tmp_path / "new.csv"), "--out", str(tmp_path / "s.parquet"), "--repo", str(tmp_path)]
    with pytest.raises(LifecycleError, match=r"'prod'.*make release.*--model"):
        score_prod.main(argv)
