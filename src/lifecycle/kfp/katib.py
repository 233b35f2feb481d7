"""Hyperparameter sweeps on the cluster: a Katib Experiment generated from ``train.search_space``, and its trial.

The Experiment (kubeflow.org/v1beta1) searches ``train.search_space.<train.model>`` (lists become ``discrete`` or
``categorical`` parameters, ``{low, high, log}`` ranges ``int`` or ``double`` ones) with Katib's ``grid`` algorithm
when ``train.search`` is grid, else ``random`` (``train.search_iterations`` trials). Its objective is the
promotion metric of ``ingest.task``: the first metric of ``promote.<task>.min_improvement`` (the one compared with
the champion), else of ``promote.<task>.min``, else of ``promote.<task>.max``; maximized for scores, minimized for
losses.

Each trial is a Job in the project's image running ``python -m lifecycle.kfp trial``: the dvc.yaml stage that
writes ``paths.model`` (``train``) with ``train.search: grid`` over the trial's single candidate, so its score is
the stage's own k-fold cross-validation on the train split (``train.cv_folds``, seeded): the objective is never
computed on the test split. The trial prints ``<metric>=<value>`` for Katib's StdOut metrics collector.
"""

from __future__ import annotations

import copy
import json
import logging
import math
import re
import tempfile
import types
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from lifecycle.config import Kfp
from lifecycle.errors import LifecycleError
from lifecycle.kfp.spec import S3_SECRET_KEYS, ProjectSpec, StageSpec, stage_spec
from lifecycle.modeling.metrics import higher_is_better

log = logging.getLogger(__name__)
TRIAL_CONTAINER = "training-container"


class KatibError(LifecycleError):
    """The search space or the promotion criteria cannot make a Katib Experiment."""


def objective(promote: Mapping[str, Any], task: str) -> tuple[str, str]:
    """``(metric, "maximize"|"minimize")`` of the promotion gate's params for ``task`` (``promote.<task>``, see the
    module docstring)."""
    gates = promote.get(task) or {}
    for key in ("min_improvement", "min", "max"):
        names = list(gates.get(key) or {})
        if names:
            return names[0], "maximize" if higher_is_better(names[0]) else "minimize"
    raise KatibError(
        f"params.yaml: promote.{task}: no metric in min_improvement, min or max to use as the Katib objective"
    )


def katib_parameters(space: Mapping[str, Any], where: str) -> list[dict[str, Any]]:
    """``train.search_space.<model>`` -> Katib ``parameters`` (feasible values as strings, as Katib wants)."""
    out: list[dict[str, Any]] = []
    for name, values in space.items():
        if isinstance(values, Mapping):
            low, high, use_log = values.get("low"), values.get("high"), bool(values.get("log", False))
            integer = isinstance(low, int) and isinstance(high, int) and not use_log
            feasible = {"min": str(low), "max": str(high), "distribution": "logUniform" if use_log else "uniform"}
            out.append({"name": name, "parameterType": "int" if integer else "double", "feasibleSpace": feasible})
        elif isinstance(values, list) and values:
            numeric = all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)
            listed = [_text(v) for v in values]
            out.append(
                {
                    "name": name,
                    "parameterType": "discrete" if numeric else "categorical",
                    "feasibleSpace": {"list": listed},
                }
            )
        else:
            raise KatibError(f"params.yaml: {where}.{name}: expected a non-empty list or {{low, high, log}}")
    if not out:
        raise KatibError(f"params.yaml: {where}: empty; list the hyperparameters to search")
    return out


def _text(value: Any) -> str:
    """A value as Katib passes it to the trial (YAML scalars: ``null``, ``sqrt``, ``0.5``)."""
    return yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("...").strip()


def trial_stage(project: ProjectSpec) -> StageSpec:
    """The stage that writes the model (``paths.model``): what each trial runs."""
    producer = project.artifact_at(project.params["paths"]["model"]).producer
    return project.stages[producer]  # type: ignore[index]


def experiment(project: ProjectSpec, kfp: Kfp, inputs: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The Katib Experiment manifest for ``project``'s params.

    ``inputs``: the trial stage's input artifact -> URI (default ``<kfp.inputs_uri>/<dvc.yaml path>``, e.g. the
    train split and the schema uploaded from a pipeline run or from `dvc repro split`).
    """
    params = project.params
    train = params["train"]
    model = train["model"]
    where = f"train.search_space.{model}"
    parameters = katib_parameters((train.get("search_space") or {}).get(model) or {}, where)
    metric, direction = objective(params["promote"], params["ingest"]["task"])
    grid = train.get("search") == "grid"
    if grid and any(p["parameterType"] in ("int", "double") for p in parameters):
        raise KatibError(f"params.yaml: {where}: train.search is grid, which needs lists, not {{low, high}} ranges")
    trials = math.prod(len(p["feasibleSpace"]["list"]) for p in parameters) if grid else int(train["search_iterations"])
    stage = trial_stage(project)
    spec = stage_spec(stage, project, None) | {"sections": {}, "params": copy.deepcopy(params)}
    uris = {a: f"{kfp.inputs_uri.rstrip('/')}/{project.artifacts[a].path}" for a in stage.inputs} | dict(inputs or {})
    args = ["--spec", json.dumps(spec, separators=(",", ":")), "--metric", metric]
    for name in stage.inputs:
        args += ["--input", f"{name}={uris[name]}"]
    for p in parameters:
        args += ["--set", f"{p['name']}=${{trialParameters.{p['name']}}}"]
    env = [{"name": k, "value": str(v)} for k, v in kfp.env.items()]
    if kfp.s3_endpoint_url:
        env.append({"name": "AWS_ENDPOINT_URL", "value": kfp.s3_endpoint_url})
    if kfp.s3_secret:
        env += [{"name": k, "valueFrom": {"secretKeyRef": {"name": kfp.s3_secret, "key": k}}} for k in S3_SECRET_KEYS]
    limits = {
        "cpu": kfp.cpu_limit.get(stage.name, kfp.cpu_limit["default"]),
        "memory": _k8s_memory(kfp.memory_limit.get(stage.name, kfp.memory_limit["default"])),
    }
    container = {
        "name": TRIAL_CONTAINER,
        "image": kfp.image,
        "command": ["python", "-m", "lifecycle.kfp", "trial"],
        "args": args,
        "env": env,
        "resources": {"limits": limits},
    }
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "spec": {
            "backoffLimit": 0,
            "template": {
                "metadata": {"annotations": {"sidecar.istio.io/inject": "false"}},
                "spec": {"restartPolicy": "Never", "containers": [container]},
            },
        },
    }
    return {
        "apiVersion": "kubeflow.org/v1beta1",
        "kind": "Experiment",
        "metadata": {"name": f"{_dns(kfp.pipeline_name)}-{_dns(model)}", "namespace": kfp.namespace},
        "spec": {
            "objective": {"type": direction, "objectiveMetricName": metric},
            "algorithm": {"algorithmName": "grid" if grid else "random"},
            "parallelTrialCount": min(kfp.katib_parallel_trials, trials),
            "maxTrialCount": trials,
            "maxFailedTrialCount": min(3, trials),
            "metricsCollectorSpec": {"collector": {"kind": "StdOut"}},
            "parameters": parameters,
            "trialTemplate": {
                "primaryContainerName": TRIAL_CONTAINER,
                "trialParameters": [
                    {"name": p["name"], "description": f"{where}.{p['name']}", "reference": p["name"]}
                    for p in parameters
                ],
                "trialSpec": job,
            },
        },
    }


def _dns(name: str) -> str:
    return re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-") or "lifecycle"


def _k8s_memory(value: str) -> str:
    """KFP's ``4G`` is Kubernetes' ``4G`` too; ``4GB`` style is not: keep the number and the unit letter(s)."""
    return value.removesuffix("B") if re.fullmatch(r"\d+(\.\d+)?[KMGTP]i?B", value) else value


def write_experiment(project: ProjectSpec, kfp: Kfp, out: str | Path, inputs: Mapping[str, str] | None = None) -> Path:
    """Write :func:`experiment` as YAML to ``out``."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    header = "# Generated by `python -m lifecycle.kfp katib` from params.yaml (train.search_space, promote); docs/kubeflow.md\n"
    out.write_text(
        header + yaml.safe_dump(experiment(project, kfp, inputs), sort_keys=False, width=120), encoding="utf-8"
    )
    return out


# --------------------------------------------------------------------------------------------- the trial
def run_trial(spec: Mapping[str, Any], inputs: Mapping[str, str], values: Mapping[str, str], metric: str) -> float:
    """One Katib trial: fetch ``inputs`` (artifact -> URI, via fsspec: local paths or s3://), run the stage of
    ``spec`` with ``train.search: grid`` over the single candidate ``values`` (hyperparameter -> Katib's text),
    scored by ``metric``. Returns the mean cross-validated score (losses positive, as lifecycle.modeling.search)."""
    import fsspec

    from lifecycle.kfp.runtime import run_stage

    spec = copy.deepcopy(dict(spec))
    train = spec["params"]["train"]
    train["search"] = "grid"
    train["search_metric"] = metric
    train["search_space"][train["model"]] = {name: [yaml.safe_load(text)] for name, text in values.items()}
    with tempfile.TemporaryDirectory(prefix="lifecycle-trial-") as tmp:
        args: dict[str, Any] = {}
        for name, uri in inputs.items():
            local = Path(tmp, "in", name)
            local.parent.mkdir(parents=True, exist_ok=True)
            fs, path = fsspec.core.url_to_fs(uri)
            fs.get(path, str(local), recursive=fs.isdir(path))
            args[name] = types.SimpleNamespace(path=str(local), metadata={})
        for name in spec["outputs"]:
            args[name] = types.SimpleNamespace(path=str(Path(tmp, "out", name)), metadata={})
        missing = sorted(set(spec["inputs"]) - set(inputs))
        if missing:
            raise KatibError(f"trial: no --input for {', '.join(missing)} (artifact=URI)")
        run_stage(spec, args)
        for name, out in spec["outputs"].items():
            if out["kind"] == "Metrics":
                result = json.loads(Path(args[name].path).read_text(encoding="utf-8"))
                if isinstance(result.get(metric), int | float):  # lifecycle.modeling.search.headline
                    return float(result[metric])
    raise KatibError(f"trial: the stage wrote no cross-validation result for {metric} (a metrics output with it)")


def parse_pairs(pairs: Sequence[str], what: str) -> dict[str, str]:
    """``["a=1", "b=x"]`` -> ``{"a": "1", "b": "x"}``; KatibError naming ``what`` on a pair without ``=``."""
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise KatibError(f"{what} {pair!r}: expected NAME=VALUE")
        out[key] = value
    return out
