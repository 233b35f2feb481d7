"""The pipeline's own components after the stages: register and deploy (behind the promotion gate) and notify
(the exit handler). Lightweight Python components: KFP ships each function's source into the container, where it
calls lifecycle.kfp.runtime.

No ``from __future__ import annotations`` here: KFP reads the annotations as objects (Input[Model], ...).
"""

from kfp import dsl
from kfp.dsl import Artifact, Input, Model, Output


def register(
    model: Input[Model],
    model_meta: Input[Artifact],
    onnx: Input[Model],
    promotion: Input[Artifact],
    registry_uri: str,
    registered: Output[Model],
) -> str:
    """Register the promoted model: its files under <registry_uri>/<version>/, <registry_uri>/champion.json.

    Args:
        model: the fitted pipeline (paths.model)
        model_meta: its metadata, model.json (paths.model_meta)
        onnx: its ONNX copy (paths.onnx; 0 bytes when unusable)
        promotion: the promote stage's decision (paths.promotion)
        registry_uri: the registry folder (kfp.registry_uri)
        registered: the registered version's files; metadata: version, sha256, storage_uri
    """
    from lifecycle.cli import setup_logging
    from lifecycle.kfp.runtime import register_model

    setup_logging()
    return register_model({"model": model, "model_meta": model_meta, "onnx": onnx}, promotion, registry_uri, registered)


def deploy(
    registered: Input[Model],
    inference_service: str,
    image: str,
    namespace: str,
    apply: bool,
    manifest: Output[Artifact],
) -> None:
    """Apply deploy/kserve/inferenceservice.yaml for the registered version (STORAGE_URI -> /mnt/models).

    Args:
        registered: the register step's output
        inference_service: the InferenceService manifest (YAML text) from deploy/kserve at compile time
        image: the serving image (kfp.image)
        namespace: where to apply it
        apply: false renders the manifest only (a dry run)
        manifest: the rendered InferenceService
    """
    import yaml

    from lifecycle.cli import setup_logging
    from lifecycle.kfp.runtime import apply_inference_service, render_inference_service

    setup_logging()
    rendered = render_inference_service(inference_service, registered.metadata, image, namespace)
    with open(manifest.path, "w", encoding="utf-8") as f:
        yaml.safe_dump(rendered, f, sort_keys=False)
    manifest.metadata["applied"] = apply_inference_service(rendered) if apply else "dry run"


def notify(status: dsl.PipelineTaskFinalStatus, notify_params: str, pipeline_name: str) -> None:
    """The exit handler: the run's outcome to notify.webhook_url.

    Args:
        status: the final status of the pipeline's tasks (filled in by Kubeflow)
        notify_params: the notify section of params.yaml (JSON)
        pipeline_name: the pipeline's name, for the message
    """
    from lifecycle.cli import setup_logging
    from lifecycle.kfp.runtime import notify_outcome

    setup_logging()
    notify_outcome(status.state, status.pipeline_job_resource_name, status.error_message, notify_params, pipeline_name)
