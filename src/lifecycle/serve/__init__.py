"""The prediction API (FastAPI) for the trained model; see docs/serving.md."""
