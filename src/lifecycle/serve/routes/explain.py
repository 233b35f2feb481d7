"""Explanations: ``POST /explain`` (the ``/predict`` body) and KServe V1 ``POST /v1/models/<name>:explain`` (the
``:predict`` body): for each row the prediction, the base value and one SHAP contribution per input feature.

The explainers (:class:`lifecycle.modeling.explain.Explainer`, one per served model) are built at startup from the
fitted scikit-learn pipeline and the background rows that model.json carries (:func:`build_explainers`, called in
the app's lifespan); a model without them (trained before explanations existed) or an estimator without an exact
explainer is served as before and its ``:explain`` answers 501 with the reason. A request is validated exactly like
its ``:predict`` twin (same request models, same ``SERVE_MAX_ROWS`` and body limit, same 4xx bodies), is answered by
the model that would answer it on ``:predict`` (the canary's choice by request id), and is counted in
``lifecycle_explained_rows_total`` / ``lifecycle_explanations_total``, not in the prediction counters or the
prediction log. Computed with scikit-learn whatever ``SERVE_ENGINE`` says (SHAP needs the fitted trees and
coefficients); the labels agree with the ONNX engine's by its parity check.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from typing import Any

from fastapi import APIRouter, Request
from starlette.exceptions import HTTPException as StarletteHTTPException

from lifecycle.errors import LifecycleError
from lifecycle.modeling.explain import OUTPUT_SPACES, Explainer, background_frame
from lifecycle.serve.deps import read_body, request_id, served_model, serving
from lifecycle.serve.errors import validate_records
from lifecycle.serve.predictors import ServedModel
from lifecycle.serve.routes.kserve_v1 import instance_location, instances_to_records
from lifecycle.serve.schemas import FastJSONResponse, openapi_body
from lifecycle.serve.state import INLINE_ROWS, State

log = logging.getLogger(__name__)
router = APIRouter(tags=["explain"])


@dataclasses.dataclass
class Explainers:
    """The served models' explainers by role, or why a role has none (``app.state.explainers``)."""

    by_role: dict[str, Explainer] = dataclasses.field(default_factory=dict)
    missing: dict[str, str] = dataclasses.field(default_factory=dict)

    def get(self, model: ServedModel) -> Explainer:
        """The explainer of ``model``; ``HTTPException(501)`` saying why there is none."""
        explainer = self.by_role.get(model.role)
        if explainer is None:
            why = self.missing.get(model.role, "the server is starting")
            raise StarletteHTTPException(501, f"model {model.name} {model.version} cannot be explained: {why}")
        return explainer


def build_explainers(state: State) -> Explainers:
    """An explainer for each loaded model (champion, challenger), from its fitted pipeline and model.json's
    background; a model that cannot have one is logged and recorded with the reason (its ``:explain`` is 501)."""
    out = Explainers()
    for model in filter(None, (state.champion, state.challenger)):
        started = time.perf_counter()
        try:
            background = background_frame(model.meta.explainer.background if model.meta.explainer else [], model.schema)
            out.by_role[model.role] = Explainer(model.sklearn.pipeline, background, model.schema)
        except (LifecycleError, ImportError) as exc:
            out.missing[model.role] = str(exc)
            log.warning("%s model %s: no explanations: %s", model.role, model.version, exc)
            continue
        explainer = out.by_role[model.role]
        log.info(
            "%s model %s: explanations by %s against %d background rows, in %s (%.2f s to build)",
            model.role, model.version, explainer.method, len(background), explainer.output_space,
            time.perf_counter() - started,
        )  # fmt: skip
    return out


async def explain(request: Request, records: list[dict[str, Any]]) -> tuple[ServedModel, Explainer, list[dict]]:
    """Explain validated ``records`` with the model that answers this request id on ``:predict``; count them.
    Large requests run in the server's thread pool, like predictions."""
    state = serving(request)
    if not state.ready or state.champion is None:
        raise StarletteHTTPException(503, "the model is not loaded (starting or stopping)")
    model = state.choose(request_id(request))
    explainer = request.app.state.explainers.get(model)
    if len(records) <= INLINE_ROWS:
        explanation = explainer.explain(records)
    else:
        loop = asyncio.get_running_loop()
        explanation = await loop.run_in_executor(state.executor, explainer.explain, records)  # threads limited
    state.metrics.count_explanations(model.role, explanation.y_pred, model.schema.task == "classification")
    return model, explainer, explanation.rows()


def describe(explainer: Explainer) -> dict[str, Any]:
    """How the contributions were computed and in which unit."""
    return {
        "method": explainer.method,
        "output_space": explainer.output_space,
        "output_description": OUTPUT_SPACES[explainer.output_space],
    }


@router.post("/explain", openapi_extra=openapi_body("PredictRequest"))
async def explain_records(request: Request) -> Any:
    """Explain one or more records (the ``/predict`` body): per record the prediction, the base value and one
    contribution per input feature, base value + contributions = the model's output (see ``output_space``)."""
    state, rid = serving(request), request_id(request)
    body = await read_body(request, state.models.predict_request)
    model, explainer, rows = await explain(request, body.records)
    return FastJSONResponse(
        {
            "request_id": rid,
            "model": {"name": model.name, "version": model.version, "role": model.role, "engine": "sklearn"},
            **describe(explainer),
            "explanations": rows,
        }
    )


@router.post("/v1/models/{name}:explain", openapi_extra=openapi_body("V1PredictRequest"))
async def v1_explain(name: str, request: Request) -> Any:
    """KServe V1 explain: the ``:predict`` body (records or rows of feature values); ``{"explanations": [...]}``
    with one entry per instance."""
    state = serving(request)
    served_model(state, name)  # 404 for another model's name, before the body is read
    body = await read_body(request, state.models.v1_request)
    raw = instances_to_records(body.instances, state.schema.features)
    records = validate_records(state.models.records, raw, instance_location)
    _, explainer, rows = await explain(request, records)
    return FastJSONResponse({**describe(explainer), "explanations": rows})
