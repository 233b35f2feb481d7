"""The serving state of one app: what it serves, and the request path every protocol shares.

:func:`build_state` runs in ``create_app`` and reads only the model's metadata (cheap): the training schema, from
which the request models are generated. :meth:`State.start` runs in the app's ``lifespan``: it verifies and loads
the champion (and the challenger), starts the prediction log and the shadow runner; :meth:`State.stop` drains and
closes them. :meth:`State.predict` is the one request path of the three protocols: choose the model (canary), pick
its engine, predict (on the event loop for small requests, in a thread pool for large ones), fall back to
scikit-learn when the ONNX engine fails, count, log, and hand the request to the shadow challenger.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
from starlette.exceptions import HTTPException as StarletteHTTPException

from lifecycle import registry
from lifecycle.artifact import ModelMetadata
from lifecycle.errors import DataError
from lifecycle.schema import Schema
from lifecycle.serve import challenger as challengers
from lifecycle.serve.metrics import Metrics
from lifecycle.serve.predictors import Predictor, ServedModel, limit_threads, load_served_model
from lifecycle.serve.predlog import Entry, PredictionLog
from lifecycle.serve.schemas import RequestModels, numeric_limits, request_models
from lifecycle.serve.settings import Settings

log = logging.getLogger(__name__)
INLINE_ROWS = 64  # requests up to this many rows are predicted on the event loop; larger ones in a thread
BODY_FIELDS = ("body", "records", "instances", "inputs", "outputs", "id", "parameters")  # metric `field` labels


def package_version() -> str:
    """This package's installed version ("0" when running from a source tree without metadata)."""
    try:
        return metadata.version("lifecycle")
    except metadata.PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "0"


@dataclasses.dataclass(frozen=True)
class Source:
    """The champion's files, and its version when it came from the registry (else its sha256 prefix is used)."""

    model_path: Path
    meta_path: Path
    onnx_path: Path | None
    version: str | None


def resolve_source(settings: Settings) -> Source:
    """The files in settings, or (``SERVE_MODEL_SOURCE=registry``) the version in ``SERVE_REGISTRY_STAGE`` fetched
    by :func:`lifecycle.registry.fetch` into ``SERVE_REGISTRY_DEST``; answers then carry the registry's version.

    Raises :class:`lifecycle.registry.RegistryError` when the registry has no such stage or its files cannot be had.
    """
    if settings.model_source == "file":
        return Source(settings.model_path, settings.meta_path, settings.onnx_path, None)
    try:
        version, files = registry.fetch(settings.registry_stage, settings.registry_repo, settings.registry_dest)
    except registry.RegistryError as exc:
        raise registry.RegistryError(f"{exc}; or serve files (SERVE_MODEL_SOURCE=file)") from exc
    log.info("registry: serving %s in stage %s (commit %s)", version.tag, settings.registry_stage, version.commit[:12])
    # without a usable graph, model.onnx is absent and the engine note says so; scikit-learn serves
    return Source(files.model, files.meta, files.onnx or files.model.with_suffix(".onnx"), version.version)


@dataclasses.dataclass
class State:
    """Everything the routes share (``app.state.serving``; routes get it through :mod:`lifecycle.serve.deps`)."""

    settings: Settings
    source: Source
    meta: ModelMetadata  # the champion's
    schema: Schema  # the champion's training schema: requests are validated against it
    models: RequestModels
    metrics: Metrics
    champion: ServedModel | None = None
    challenger: ServedModel | None = None
    log: PredictionLog | None = None
    shadow: challengers.ShadowRunner | None = None
    ready: bool = False
    routes: list[Any] = dataclasses.field(default_factory=list)  # the app's routes (the middleware's 413 route)
    executor: ThreadPoolExecutor | None = None  # large requests, off the event loop

    # ----------------------------------------------------------------------------------------- lifespan
    def start(self) -> None:
        """Verify and load the champion (and challenger), start the prediction log and the shadow runner.

        Raises :class:`lifecycle.artifact.ModelIntegrityError` (a model or ONNX graph that is not the recorded one,
        or the two disagreeing on the start-up probe),
        :class:`DataError` (a challenger with another schema) or ``OSError`` (an unwritable log directory).
        """
        s = self.settings
        limit_threads(s.predict_threads)  # this thread runs the event loop: small requests predict here
        self.executor = ThreadPoolExecutor(
            max_workers=2, thread_name_prefix="predict", initializer=limit_threads, initargs=(s.predict_threads,)
        )
        engines = {"engine": s.engine, "name": s.model_name, "onnx_max_rows": s.onnx_max_rows}
        engines |= {"onnx_threads": s.onnx_threads, "limits": self.models.limits}
        self.champion = load_served_model(
            self.source.model_path, self.meta, meta_path=self.source.meta_path, onnx_path=self.source.onnx_path,
            version=self.source.version, **engines,
        )  # fmt: skip
        if s.challenger_mode != "off":
            self.challenger = self._load_challenger(engines)
        for model in filter(None, (self.champion, self.challenger)):
            classes = model.meta.data.target_distribution if model.schema.task == "classification" else {}
            self.metrics.set_model(model.role, model.name, model.version, model.engine, classes)
        if s.prediction_log_dir is not None and str(s.prediction_log_dir) not in ("", "."):
            classes = list(self.champion.classes)
            classes += [c for c in (self.challenger.classes if self.challenger else []) if c not in classes]
            self.log = PredictionLog(
                s.prediction_log_dir, self.schema, classes, flush_rows=s.log_flush_rows,
                flush_seconds=s.log_flush_seconds, rotate_rows=s.log_rotate_rows, rotate_seconds=s.log_rotate_seconds,
                queue_size=s.log_queue_size, on_drop=self.metrics.log_dropped.inc, on_error=self.metrics.log_errors.inc,
            )  # fmt: skip
            self.log.start()
            log.info("prediction log: %s", s.prediction_log_dir)
        if self.challenger is not None and s.challenger_mode == "shadow":
            self.shadow = challengers.ShadowRunner(
                self.challenger, self._shadow_result, queue_size=s.shadow_queue_size, threads=s.predict_threads,
                on_drop=self.metrics.shadow_dropped.inc, on_error=self.metrics.shadow_errors.inc,
            )  # fmt: skip
            self.shadow.start()
        self.ready = True

    def _load_challenger(self, engines: dict[str, Any]) -> ServedModel:
        s = self.settings
        assert s.challenger_model_path is not None  # Settings checks both
        assert s.challenger_meta_path is not None
        challenger = load_served_model(
            s.challenger_model_path, ModelMetadata.read(s.challenger_meta_path), meta_path=s.challenger_meta_path,
            onnx_path=s.challenger_onnx_path or s.challenger_model_path.with_suffix(".onnx"), role="challenger",
            **engines,
        )  # fmt: skip
        assert self.champion is not None
        challengers.check_compatible(self.champion, challenger)
        if challenger.version == self.champion.version:
            log.warning("the challenger is the same model as the champion (%s)", self.champion.version)
        canary = f" ({s.canary_percent:g}% of request ids)" if s.challenger_mode == "canary" else ""
        log.info("challenger %s in %s mode%s", challenger.version, s.challenger_mode, canary)
        return challenger

    def stop(self) -> None:
        """Stop answering, drain the shadow queue and the prediction log (publishing its file), stop the pool."""
        self.ready = False
        if self.shadow is not None:
            self.shadow.close()
        if self.log is not None:
            self.log.close()
        if self.executor is not None:
            self.executor.shutdown(wait=True)

    # ----------------------------------------------------------------------------------------- requests
    def choose(self, request_id: str) -> ServedModel:
        """The model that answers ``request_id``: the challenger for the canary's share of ids, else the champion."""
        assert self.champion is not None
        if (
            self.challenger is not None
            and self.settings.challenger_mode == "canary"
            and challengers.canary_hit(request_id, self.settings.canary_percent)
        ):
            return self.challenger
        return self.champion

    async def predict(
        self, records: list[dict[str, Any]], endpoint: str, request_id: str
    ) -> tuple[ServedModel, str, np.ndarray, np.ndarray | None]:
        """Predict validated ``records`` for one request: ``(model, engine, y_pred (n,), proba (n, classes) or None)``.

        Raises ``HTTPException(503)`` before startup or after shutdown, :class:`DataError` for data the model refuses.
        """
        arrived = time.time()
        if not self.ready or self.champion is None:
            raise StarletteHTTPException(503, "the model is not loaded (starting or stopping)")
        model = self.choose(request_id)
        predictor = model.predictor(len(records))
        try:
            y_pred, proba = await self._run(predictor, records)
        except DataError:
            raise
        except Exception:
            if predictor is model.sklearn:
                raise
            # the ONNX engine failed on valid input: answer with scikit-learn, count it, keep the trace in the log
            log.exception("%s engine failed on request %s; answering with scikit-learn", predictor.engine, request_id)
            self.metrics.engine_fallbacks.labels(model.role, predictor.engine).inc()
            predictor = model.sklearn
            y_pred, proba = await self._run(predictor, records)
        self.record(arrived, request_id, endpoint, model, True, predictor.engine, records, y_pred, proba)
        if self.shadow is not None:
            self.shadow.submit(arrived, request_id, endpoint, records)
        return model, predictor.engine, y_pred, proba

    async def _run(self, predictor: Predictor, records: list[dict[str, Any]]) -> tuple[np.ndarray, np.ndarray | None]:
        if len(records) <= INLINE_ROWS:
            return predictor.predict(records)
        return await asyncio.get_running_loop().run_in_executor(self.executor, predictor.predict, records)

    def record(
        self,
        arrived: float,
        request_id: str,
        endpoint: str,
        model: ServedModel,
        served: bool,
        engine: str,
        records: Sequence[Mapping[str, Any]],
        y_pred: np.ndarray,
        proba: np.ndarray | None,
    ) -> None:
        """Count one model's predictions for a request and hand them to the prediction log."""
        self.metrics.count_predictions(model.role, y_pred, model.schema.task == "classification")
        if self.log is not None:
            self.log.submit(
                Entry(
                    arrived, request_id, endpoint, model.name, model.version, model.role, served, engine, records,
                    y_pred, proba, model.classes,
                )
            )  # fmt: skip

    def _shadow_result(
        self,
        arrived: float,
        request_id: str,
        endpoint: str,
        records: Sequence[Mapping[str, Any]],
        y_pred: np.ndarray,
        proba: np.ndarray | None,
        engine: str,
    ) -> None:
        assert self.challenger is not None
        self.record(arrived, request_id, endpoint, self.challenger, False, engine, records, y_pred, proba)


def build_state(settings: Settings) -> State:
    """The state for ``settings``: the champion's metadata read (not the model), its request models generated.

    Raises :class:`lifecycle.artifact.ModelIntegrityError` for missing or malformed metadata, ``ValueError`` for
    ``SERVE_NUMERIC_LIMITS`` naming a column that is not a numeric feature, and the registry's errors.
    """
    source = resolve_source(settings)
    meta = ModelMetadata.read(source.meta_path)
    schema = meta.training_schema
    packaged = meta.contract.limits if meta.contract is not None else {}
    limits = numeric_limits(schema, settings.numeric_limits, settings.builtin_limits, packaged)
    models = request_models(schema, limits, settings.max_rows)
    metrics = Metrics([c.name for c in schema.columns] + list(BODY_FIELDS))
    return State(settings, source, meta, schema, models, metrics)
