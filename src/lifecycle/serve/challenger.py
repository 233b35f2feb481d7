"""A challenger beside the champion: ``shadow`` (predicts every request off the request path, logged, never
returned) or ``canary`` (answers a fixed share of requests, chosen deterministically from the request id)."""

from __future__ import annotations

import logging
import queue
import threading
import zlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from lifecycle.errors import DataError
from lifecycle.serve.predictors import ServedModel, limit_threads

log = logging.getLogger(__name__)


def canary_hit(request_id: str, percent: float) -> bool:
    """True for ``percent``% of request ids: CRC-32 of the id in 10,000 buckets, so a retried request (same id)
    always reaches the same model and the split is exact over many ids."""
    return zlib.crc32(request_id.encode("utf-8")) % 10_000 < round(percent * 100)


def check_compatible(champion: ServedModel, challenger: ServedModel) -> None:
    """Requests are validated against the champion's schema, so the challenger must expect the same features
    and categories; otherwise it would see values it never trained on. Refuse to start when they differ."""

    def features(model: ServedModel) -> list[tuple[str, str, tuple[str, ...]]]:
        return [(c.name, c.role, c.categories) for c in model.schema.columns if c.role in ("numeric", "categorical")]

    a, b = features(champion), features(challenger)
    if a != b or champion.schema.task != challenger.schema.task:
        diff = sorted(set(a).symmetric_difference(b))
        raise DataError(
            f"the challenger {challenger.version} was trained on a different schema than the champion "
            f"{champion.version} (task {challenger.schema.task} vs {champion.schema.task}; differing features: "
            f"{[d[0] for d in diff]}); train it on the same data contract or switch SERVE_CHALLENGER_MODE=off"
        )


class ShadowRunner:
    """One thread predicting with the challenger on what the champion answered; a full queue drops and counts."""

    def __init__(
        self,
        model: ServedModel,
        on_result: Callable[[float, str, str, Sequence[Mapping[str, Any]], Any, Any, str], None],
        queue_size: int = 1000,
        threads: int = 1,
        on_drop: Callable[[], None] | None = None,
        on_error: Callable[[], None] | None = None,
    ) -> None:
        self.model, self.threads = model, threads
        self.on_result, self.on_drop, self.on_error = on_result, on_drop, on_error
        self.queue: queue.Queue[tuple[float, str, str, Sequence[Mapping[str, Any]]] | None] = queue.Queue(queue_size)
        self._thread: threading.Thread | None = None
        self.done = 0

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="shadow", daemon=True)
        self._thread.start()

    def submit(self, arrived: float, request_id: str, endpoint: str, records: Sequence[Mapping[str, Any]]) -> bool:
        try:
            self.queue.put_nowait((arrived, request_id, endpoint, records))
            return True
        except queue.Full:
            if self.on_drop is not None:
                self.on_drop()
            return False

    def close(self, timeout: float = 10.0) -> None:
        if self._thread is None:
            return
        self.queue.put(None)
        self._thread.join(timeout)
        self._thread = None

    def _run(self) -> None:
        limit_threads(self.threads)
        while (item := self.queue.get()) is not None:
            arrived, request_id, endpoint, records = item
            try:
                predictor = self.model.predictor(len(records))
                y_pred, proba = predictor.predict(records)
                self.on_result(arrived, request_id, endpoint, records, y_pred, proba, predictor.engine)
            except Exception:
                log.exception("shadow prediction failed for request %s", request_id)
                if self.on_error is not None:
                    self.on_error()
            self.done += 1
