"""``GET /model``: what this server serves, and the rules its requests must follow."""

from typing import Any

from fastapi import APIRouter

from lifecycle.serve.deps import ServingSettings, ServingState
from lifecycle.serve.predictors import ServedModel

router = APIRouter(tags=["model"])


def describe(model: ServedModel | None, max_rows: int) -> dict[str, Any] | None:
    """One served model: name, version, role, engine (of small requests) and why, the engine of every request size
    (up to ``max_rows``), family, task, sha256, classes, metrics."""
    if model is None:
        return None
    return {
        "name": model.name,
        "version": model.version,
        "role": model.role,
        "engine": model.engine,
        "engine_note": model.engine_note,
        "engines": model.engines(max_rows),
        "family": model.meta.model.family,
        "task": model.schema.task,
        "sha256": model.meta.model.sha256,
        "classes": model.classes,
        "metrics": model.meta.metrics,
    }


@router.get("/model")
async def model_info(state: ServingState, settings: ServingSettings) -> dict[str, Any]:
    """The served model(s): version, family, task, metrics, features with their rules, engines, challenger."""
    limits = state.models.limits
    columns = {c.name: c for c in state.schema.columns}
    return {
        "champion": describe(state.champion, settings.max_rows),
        "challenger": describe(state.challenger, settings.max_rows),
        "challenger_mode": settings.challenger_mode,
        "canary_percent": settings.canary_percent if settings.challenger_mode == "canary" else None,
        "features": [
            {"name": c, "role": columns[c].role}
            | ({"min": limits[c][0], "max": limits[c][1]} if c in limits else {})
            | ({"categories": list(columns[c].categories)} if columns[c].role == "categorical" else {})
            for c in state.schema.features
        ],
        "limits": {"max_rows": settings.max_rows, "max_body_bytes": settings.max_body_bytes},
    }
