"""``POST /predict``: the custom REST protocol, records in, predictions and probabilities out."""

from typing import Any

import numpy as np
from fastapi import APIRouter

from lifecycle.serve.deps import PredictBody, RequestId, ServingState
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
async def predict_records(body: PredictBody, state: ServingState, request_id: RequestId) -> Any:
    """Predict one or more records (objects keyed by the training schema's columns)."""
    model, engine, labels, proba = await state.predict(body.records, "/predict", request_id)
    return FastJSONResponse(
        {
            "request_id": request_id,
            "model": {"name": model.name, "version": model.version, "role": model.role, "engine": engine},
            "predictions": labels.tolist(),
            "probabilities": probabilities(model, proba),
        }
    )
