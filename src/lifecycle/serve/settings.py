"""Server settings, from environment variables (prefix ``SERVE_``) or a ``.env`` file; typed, checked at startup.

Nothing here belongs to the pipeline (params.yaml): the same model is served with different limits, ports or
challengers in different places, so these are deployment settings. Examples::

    SERVE_MODEL_PATH=models/model.joblib SERVE_META_PATH=models/model.json SERVE_ENGINE=auto
    SERVE_MAX_ROWS=10000 SERVE_MAX_BODY_BYTES=8388608 SERVE_PREDICTION_LOG_DIR=logs/predictions
    SERVE_CHALLENGER_MODE=canary SERVE_CANARY_PERCENT=10 SERVE_CHALLENGER_MODEL_PATH=... SERVE_CHALLENGER_META_PATH=...
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Every knob of the server. Unknown ``SERVE_*`` variables are ignored; wrong types stop the start."""

    model_config = SettingsConfigDict(env_prefix="SERVE_", env_file=".env", extra="ignore", frozen=True)

    # ----------------------------------------------------------------------------------------- the model
    model_source: Literal["file", "registry"] = "file"  # registry: lifecycle.registry resolves `registry_stage`
    registry_stage: str = "prod"
    registry_repo: Path = Path(".")  # the git repository holding the GTO tags (and DVC remote config)
    registry_dest: Path | None = None  # where the registry's files are materialized (default: a private cache dir)
    model_path: Path = Path("models/model.joblib")
    meta_path: Path = Path("models/model.json")  # model.json: sha256, schema, metrics, ONNX parity report
    onnx_path: Path = Path("models/model.onnx")
    model_name: str = Field(default="lifecycle", pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")  # in /v1 and /v2 URLs
    engine: Literal["auto", "onnx", "sklearn"] = "auto"  # auto: ONNX when parity passed, else scikit-learn
    onnx_max_rows: int = Field(default=1000, ge=0)  # auto: larger requests go to scikit-learn
    onnx_threads: int = Field(default=1, ge=1)  # onnxruntime intra-op threads
    predict_threads: int = Field(default=1, ge=1)  # OpenMP/BLAS threads of scikit-learn (HGB has no n_jobs)

    # ----------------------------------------------------------------------------------------- limits
    max_rows: int = Field(default=10_000, ge=1)  # records per request
    max_body_bytes: int = Field(default=8 * 1024 * 1024, ge=1024)
    # Allowed [low, high] of numeric features, e.g. SERVE_NUMERIC_LIMITS='{"alcohol": [0, 30]}'. The built-in
    # telemetry's physical limits apply to its own columns unless `builtin_limits` is false.
    numeric_limits: dict[str, tuple[float, float]] = Field(default_factory=dict)
    builtin_limits: bool = True

    # ----------------------------------------------------------------------------------------- prediction log
    prediction_log_dir: Path | None = Path("logs/predictions")  # empty: no log
    log_flush_rows: int = Field(default=2000, ge=1)  # write when this many rows are waiting ...
    log_flush_seconds: float = Field(default=1.0, gt=0)  # ... or this long after the first one
    log_rotate_rows: int = Field(default=100_000, ge=1)  # publish a file (see predlog.py) after this many rows
    log_rotate_seconds: float = Field(default=300.0, gt=0)  # ... or this long after it was opened
    log_queue_size: int = Field(default=10_000, ge=1)  # requests waiting to be logged; more are dropped and counted

    # ----------------------------------------------------------------------------------------- challenger
    challenger_mode: Literal["off", "shadow", "canary"] = "off"
    challenger_model_path: Path | None = None
    challenger_meta_path: Path | None = None
    challenger_onnx_path: Path | None = None
    canary_percent: float = Field(default=10.0, ge=0, le=100)  # canary: share of request ids the challenger answers
    shadow_queue_size: int = Field(default=1000, ge=1)  # shadow requests waiting; more are dropped and counted

    # ----------------------------------------------------------------------------------------- process
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    workers: int = Field(default=1, ge=1)
    log_level: Literal["debug", "info", "warning", "error"] = "info"

    @model_validator(mode="after")
    def _check(self) -> Settings:
        if self.challenger_mode != "off" and (self.challenger_model_path is None or self.challenger_meta_path is None):
            raise ValueError(
                f"SERVE_CHALLENGER_MODE={self.challenger_mode} needs SERVE_CHALLENGER_MODEL_PATH and "
                "SERVE_CHALLENGER_META_PATH (the challenger's model.joblib and model.json)"
            )
        for name, (low, high) in self.numeric_limits.items():
            if not low <= high:
                raise ValueError(f"SERVE_NUMERIC_LIMITS[{name!r}]: low {low} > high {high}")
        return self
