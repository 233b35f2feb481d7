"""Liveness, readiness and the Prometheus metrics: ``GET /health/live``, ``/health/ready``, ``/metrics``."""

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response

from lifecycle.serve.deps import ServingState
from lifecycle.serve.metrics import CONTENT_TYPE

router = APIRouter(tags=["health"])


@router.get("/health/live")
async def live() -> dict[str, str]:
    """200 while the process runs."""
    return {"status": "alive"}


@router.get("/health/ready")
async def ready(state: ServingState) -> JSONResponse:
    """200 with the champion's name and version once it is loaded; 503 while starting or stopping."""
    if not state.ready or state.champion is None:
        return JSONResponse({"status": "not ready"}, status_code=503)
    return JSONResponse({"status": "ready", "model": state.champion.name, "version": state.champion.version})


@router.get("/metrics")
async def prometheus(state: ServingState) -> Response:
    """Prometheus text format (docs/serving.md lists the metrics)."""
    return Response(state.metrics.render(), media_type=CONTENT_TYPE)
