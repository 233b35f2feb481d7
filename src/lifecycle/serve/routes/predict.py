"""``POST /predict``: the custom REST protocol, records in, predictions and probabilities out."""

from typing import Any

import numpy as np
from fastapi import APIRouter, Request

from lifecycle.serve.deps import read_body, request_id, serving
from lifecycle.serve.predictors import ServedModel
from lifecycle.serve.schemas import FastJSONResponse, PredictResponse, openapi_body

router = APIRouter(tags=["predict"])


def probabilities(model: ServedModel, proba: np.ndarray | None) -> list[dict[str, float]] | None:
    """Rows of ``proba`` (shape (n, classes)) as ``{class: probability}``; None for regression."""
    if proba is None:
        return None
    names = [str(c) for c in model.classes]
    return [dict(zip(names, row, strict=True)) for row in proba.tolist()]


@router.post("/predict", response_model=PredictResponse, openapi_extra=openapi_body("PredictRequest"))
async def predict_records(request: Request) -> Any:
    """Predict one or more records (objects keyed by the training schema's columns)."""
    state, rid = serving(request), request_id(request)
    body = await read_body(request, state.models.predict_request)
    model, engine, y_pred, proba = await state.predict(body.records, "/predict", rid)
    return FastJSONResponse(
        {
            "request_id": rid,
            "model": {"name": model.name, "version": model.version, "role": model.role, "engine": engine},
            "predictions": y_pred.tolist(),
            "probabilities": probabilities(model, proba),
        }
    )
