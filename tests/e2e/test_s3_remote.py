"""The `storage` remote against a real S3 endpoint on loopback (moto's server mode, started here, never a mock).

Push, a fresh `git clone`, pull: byte-identical outputs and nothing to reproduce; a registered version pulled by
its tag; the server stopped in the middle of a push: a clear error, a clean push after the restart, nothing
corrupted in the remote or the cache; objects replaced in the bucket (a pickle that runs code and a model.json that
matches it): the prediction server refuses to start and `dvc pull` refuses them (issue 15).
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from moto.server import ThreadedMotoServer
from tests.conftest import BIN, git_commit, run, set_params
from tests.e2e.test_registry import plant

from lifecycle import registry

pytestmark = pytest.mark.slow
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}
BUCKET = "lifecycle-test"
OUTAGE_SECONDS = 4.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class S3:
    """A moto S3 server on 127.0.0.1 that a test can stop and start again on the same port (state survives:
    moto's backend lives in this process, like the data of a real store during an outage)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.server: ThreadedMotoServer | None = None

    def start(self) -> None:
        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self.server.start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None

    def client(self) -> Any:  # a boto3 S3 client
        return boto3.client("s3", endpoint_url=self.endpoint, **_boto_credentials())

    def objects(self, bucket: str = BUCKET) -> list[str]:
        pages = self.client().get_paginator("list_objects_v2").paginate(Bucket=bucket)
        return [o["Key"] for page in pages for o in page.get("Contents", [])]


def _boto_credentials() -> dict[str, str]:
    return {
        "aws_access_key_id": CREDENTIALS["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        "region_name": CREDENTIALS["AWS_DEFAULT_REGION"],
    }


@pytest.fixture(scope="module")
def s3() -> Iterator[S3]:
    with pytest.MonkeyPatch.context() as mp:
        for key, value in CREDENTIALS.items():
            mp.setenv(key, value)
        server = S3()
        server.start()
        server.client().create_bucket(Bucket=BUCKET)
        try:
            yield server
        finally:
            server.stop()


def use_remote(repo: Path, s3: S3, prefix: str = "lifecycle", cli: bool = False) -> None:
    """What a user does once per clone: `make remote URL=s3://<bucket>/<prefix> ENDPOINT=<url>` (``cli``; the
    clone's .venv is this interpreter's), or the .dvc/config.local it writes (faster). Never committed."""
    if cli:
        venv = repo / ".venv"
        venv.mkdir(exist_ok=True)
        (venv / "bin").symlink_to(BIN)
        for stamp in (".synced", ".synced-dev"):  # newer than pyproject.toml/uv.lock: make does not sync
            (venv / stamp).touch()
        run(["make", "remote", f"URL=s3://{BUCKET}/{prefix}", f"ENDPOINT={s3.endpoint}"], repo)
        return
    (repo / ".dvc/config.local").write_text(
        "[core]\n    remote = storage\n"
        f"['remote \"storage\"']\n    url = s3://{BUCKET}/{prefix}\n    endpointurl = {s3.endpoint}\n"
        "    verify = true\n"
    )


def clone(source: Path, dest: Path, s3: S3, prefix: str = "lifecycle", cli: bool = False) -> Path:
    run(["git", "clone", "-q", str(source), str(dest)], source.parent)
    configure_git(dest)
    use_remote(dest, s3, prefix, cli=cli)
    return dest


def configure_git(repo: Path) -> None:
    run(["git", "config", "user.name", "t"], repo)
    run(["git", "config", "user.email", "t@example.com"], repo)


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def cached_outputs(repo: Path) -> dict[str, str]:
    """Every file under the cached outputs of dvc.lock -> md5 of its bytes."""
    lock = yaml.safe_load((repo / "dvc.lock").read_text())
    files: dict[str, str] = {}
    for stage in lock["stages"].values():
        for out in stage.get("outs") or []:
            path = repo / out["path"]
            for f in sorted(path.rglob("*")) if path.is_dir() else [path]:
                if f.is_file():
                    files[str(f.relative_to(repo))] = md5(f)
    return files


@pytest.fixture(scope="module")
def pushed(built_repo: Path, s3: S3, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the built repo, committed, pushed to the moto bucket."""
    repo = tmp_path_factory.mktemp("s3") / "origin"
    shutil.copytree(built_repo, repo, symlinks=True)
    configure_git(repo)
    git_commit(repo, "pipeline outputs")
    use_remote(repo, s3)
    run(["dvc", "push"], repo)
    return repo


def test_committed_config_names_no_remote() -> None:
    """No bucket anyone else could own: each clone names its own with `make remote` (tests/unit/test_make.py)."""
    config = (Path(__file__).resolve().parents[2] / ".dvc/config").read_text()
    assert "remote" not in config and "s3://" not in config


def test_push_fresh_clone_pull_is_byte_identical_and_up_to_date(pushed: Path, s3: S3, tmp_path: Path) -> None:
    keys = s3.objects()
    assert keys and all(k.startswith("lifecycle/files/md5/") for k in keys)
    fresh = clone(pushed, tmp_path / "fresh", s3, cli=True)
    assert not (fresh / "models/model.joblib").exists()
    run(["dvc", "pull"], fresh)
    assert cached_outputs(fresh) == cached_outputs(pushed)
    assert len(cached_outputs(fresh)) >= 10
    repro = run(["dvc", "repro"], fresh)
    assert "Data and pipelines are up to date." in repro.stdout
    status = run(["dvc", "status", "--cloud"], fresh)
    assert "in sync" in status.stdout


def test_registered_version_pulled_by_tag(pushed: Path, s3: S3, tmp_path: Path) -> None:
    repo = tmp_path / "work"
    shutil.copytree(pushed, repo, symlinks=True)
    use_remote(repo, s3)
    result = registry.release(repo)
    assert result["action"] == "released"
    v1_model = md5(repo / "models/model.joblib")
    git_commit(repo, "release champion")
    # a new model on main: another training run, committed and pushed
    set_params(repo, {"train": {"hist_gradient_boosting": {"max_iter": 5}}})
    run(["dvc", "repro", "train"], repo)
    git_commit(repo, "retrain")
    run(["dvc", "push"], repo)
    assert md5(repo / "models/model.joblib") != v1_model

    fresh = clone(repo, tmp_path / "fresh", s3)
    run(["git", "checkout", "-q", "model@v1.0.0"], fresh)
    run(["dvc", "pull"], fresh)
    assert md5(fresh / "models/model.joblib") == v1_model
    run(["git", "checkout", "-q", "main"], fresh)
    run(["dvc", "pull", "models/model.joblib"], fresh)
    assert md5(fresh / "models/model.joblib") == md5(repo / "models/model.joblib")

    # the registry resolves prod in a clone with an empty cache: the bytes come from S3
    other = clone(repo, tmp_path / "other", s3)
    prod = registry.resolve_prod(repo=other)
    assert (prod.version, prod.tag, prod.stage_tag) == ("v1.0.0", "model@v1.0.0", "model#prod#1")
    assert prod.commit == run(["git", "rev-list", "-n", "1", "model@v1.0.0"], other).stdout.strip()
    files = prod.materialize(tmp_path / "served")
    assert md5(files.model) == v1_model
    assert files.meta.name == "model.json"
    assert files.onnx is not None and files.onnx.stat().st_size > 0  # the graph came from S3 too


def test_server_stopped_mid_push_then_clean_push(s3: S3, repo_factory, tmp_path: Path) -> None:
    repo = repo_factory(name="bulk")
    configure_git(repo)
    bulk = repo / "bulk"
    bulk.mkdir()
    payload = os.urandom(16 * 1024)
    for i in range(150):
        (bulk / f"part-{i:04d}.bin").write_bytes(payload[i:] + i.to_bytes(4, "big"))
    run(["dvc", "add", "bulk"], repo)
    git_commit(repo, "bulk data")
    prefix = "outage"
    use_remote(repo, s3, prefix)
    expected = {p.name: md5(p) for p in bulk.iterdir()}

    # botocore's own retries off (s3fs still retries each file 5 times within ~2 s), so the outage below is
    # longer than a file's retries and the push reports the files that failed during it
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "AWS_MAX_ATTEMPTS": "1"}
    push = subprocess.Popen(["dvc", "push", "-j", "2"], cwd=repo, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    deadline = time.monotonic() + 60
    stopped_at = 0
    try:
        while time.monotonic() < deadline and push.poll() is None:
            count = sum(k.startswith(f"{prefix}/") for k in s3.objects())
            if count >= 10:
                stopped_at = count
                s3.stop()
                time.sleep(OUTAGE_SECONDS)
                break
            time.sleep(0.05)
    finally:
        if s3.server is None:
            s3.start()
    out, err = push.communicate(timeout=180)
    assert stopped_at, f"the push finished before the server could be stopped: {out}{err}"
    assert push.returncode == 1, out + err
    assert re.search(r"ERROR: failed to push data to the cloud - \d+ files? failed to upload", err), err
    landed = [k for k in s3.objects() if k.startswith(f"{prefix}/")]
    assert stopped_at <= len(landed) < len(expected)  # part of the files got there, not all

    status = run(["dvc", "status", "--cloud"], repo, check=False)
    assert "new:" in status.stdout  # DVC knows what is missing
    again = run(["dvc", "push"], repo)
    assert "pushed" in again.stdout
    assert "in sync" in run(["dvc", "status", "--cloud"], repo).stdout
    assert "up to date" in run(["dvc", "status", "bulk.dvc"], repo).stdout  # local cache intact

    fresh = clone(repo, tmp_path / "fresh", s3, prefix)
    run(["dvc", "pull", "bulk.dvc"], fresh)
    assert {p.name: md5(p) for p in (fresh / "bulk").iterdir()} == expected


def test_tampered_objects_in_the_bucket_are_refused_by_the_server_and_by_dvc_pull(
    pushed: Path, s3: S3, tmp_path: Path
) -> None:
    """The attack of issue 15: model.joblib's object in the bucket replaced by a pickle that runs code, and
    model.json's by one whose sha256 matches it. Git is the root of trust: the server (SERVE_MODEL_SOURCE=registry,
    started as in production) checks each fetched object against the md5 that dvc.lock records at the version's
    commit and refuses to start, naming the check; `dvc pull` (verify = true) refuses the objects too."""
    prefix = "tampered"
    repo = tmp_path / "origin"
    shutil.copytree(pushed, repo, symlinks=True)
    use_remote(repo, s3, prefix)
    assert registry.release(repo)["action"] == "released"
    git_commit(repo, "release champion")
    run(["dvc", "push"], repo)
    recorded = registry.recorded_md5s(repo, "model@v1.0.0")
    marker = tmp_path / "planted-code-ran"
    planted = plant(tmp_path / "planted", repo / "models/model.json", marker)
    for name in ("model.joblib", "model.json"):
        md5 = recorded[f"models/{name}"]
        s3.client().put_object(Bucket=BUCKET, Key=f"{prefix}/files/md5/{md5[:2]}/{md5[2:]}", Body=planted[name])

    # the server, from a fresh clone (empty DVC cache: every byte comes from S3), default private cache folder
    served = clone(repo, tmp_path / "served", s3, prefix)
    env = {
        **os.environ,
        "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
        "SERVE_MODEL_SOURCE": "registry",
        "SERVE_REGISTRY_REPO": str(served),
        "SERVE_PORT": str(free_port()),
        "SERVE_PREDICTION_LOG_DIR": "",
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
    }
    server = subprocess.Popen([sys.executable, "-m", "lifecycle.serve"], cwd=served, env=env, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT)  # fmt: skip
    try:
        out, _ = server.communicate(timeout=300)
    finally:
        server.kill()
    assert server.returncode != 0, out
    assert "refusing model@v1.0.0: models/model.json as fetched from DVC" in out, out
    assert "Failed check: md5 against dvc.lock (git)" in out
    assert f"records {recorded['models/model.json']}" in out
    assert not marker.exists()
    assert not [p for p in (tmp_path / "cache").rglob("*") if p.is_file()]  # nothing unverified was kept

    # dvc pull into a fresh clone: the remote's verification re-hashes the downloads and refuses them
    fresh = clone(repo, tmp_path / "fresh", s3, prefix)
    pull = run(["dvc", "pull"], fresh, check=False)
    assert pull.returncode != 0, pull.stdout + pull.stderr
    refused = pull.stderr.split("Checkout failed for following targets:", 1)[1]
    assert "models/model.json" in refused and "models/model.joblib" in refused
    for name in ("model.joblib", "model.json"):
        got = fresh / "models" / name
        assert not got.exists() or got.read_bytes() != planted[name], name
    assert not (fresh / "models/model.joblib").exists()
    assert (fresh / "models/model.onnx").read_bytes() == (repo / "models/model.onnx").read_bytes()  # the rest came


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__, "-q"]))
