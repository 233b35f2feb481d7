"""dvc.yaml + params.yaml -> the pipeline's stages, the files passed between them, and their parameters.

The one reading of dvc.yaml that the Kubeflow pipeline is built from, so the two never drift apart:

- every stage becomes a component that runs the stage's ``cmd`` (``${...}`` resolved from params.yaml, as DVC does);
- every ``outs``/``metrics``/``plots`` path is an output artifact of its stage; a ``deps`` path that another
  stage writes (or that lies inside a directory another stage writes) is an input artifact, and that is an edge of
  the DAG; a ``deps`` path under ``src/`` is code (in the image); any other ``deps`` path is an *external input*
  (a file or folder no stage writes: data contracts, incoming batches, the champion record) that the pipeline
  imports from a URI;
- a stage's ``params`` entries name the params.yaml sections it receives (``base.seed`` -> ``base``; ``params.yaml:``
  without keys, the whole file: every section but the compile-time ones, :data:`COMPILE_TIME`).

Pure: reads two YAML files, imports nothing of kfp. Raises :class:`KfpSpecError` naming the stage and the entry
for anything it cannot map (a ``foreach`` stage, an unknown ``${key}``, a params file other than params.yaml).
"""

from __future__ import annotations

import dataclasses
import keyword
import re
import shlex
from collections.abc import Mapping, Sequence
from pathlib import Path, PurePosixPath
from typing import Any, Literal

import yaml

from lifecycle.errors import LifecycleError

Kind = Literal["Dataset", "Model", "Metrics", "HTML", "Markdown", "Artifact"]
CODE_PREFIX = "src/"  # deps under it are the package's code: the image has it
# File types by suffix; metrics (dvc.yaml `metrics:`) are Metrics whatever their suffix, anything else an Artifact.
KIND_BY_SUFFIX: dict[str, Kind] = {
    ".parquet": "Dataset",
    ".csv": "Dataset",
    ".tsv": "Dataset",
    ".joblib": "Model",
    ".pkl": "Model",
    ".onnx": "Model",
    ".html": "HTML",
    ".md": "Markdown",
}
S3_SECRET_KEYS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")  # keys of kfp.s3_secret, as env vars
# params.yaml sections that are never pipeline parameters: the file layout and the cluster settings are fixed when
# the pipeline is compiled (a stage that declares the whole file gets every other section)
COMPILE_TIME = ("paths", "kfp")
_VAR = re.compile(r"\$\{\s*([A-Za-z_][\w.-]*)\s*\}")


class KfpSpecError(LifecycleError):
    """dvc.yaml or params.yaml has something the Kubeflow pipeline cannot be built from."""


@dataclasses.dataclass(frozen=True)
class ArtifactSpec:
    """One file or folder of the pipeline: written by ``producer`` (a stage) or imported (``producer`` None)."""

    name: str  # a Python identifier: the component input/output name
    path: str  # as dvc.yaml resolves it, relative to the repository root (e.g. models/model.joblib)
    kind: Kind
    producer: str | None


@dataclasses.dataclass(frozen=True)
class StageSpec:
    """One dvc.yaml stage as a component: the commands it runs, its artifacts and its params sections."""

    name: str
    cmd: tuple[str, ...]  # resolved commands, run in order
    inputs: tuple[str, ...]  # artifact names: stage outputs and external inputs it reads
    outputs: tuple[str, ...]  # artifact names it writes
    sections: tuple[str, ...]  # params.yaml sections it declares (dvc.yaml `params`), in params.yaml's order


@dataclasses.dataclass(frozen=True)
class ProjectSpec:
    """The whole DAG: stages in a topological order (dvc.yaml's order among ready stages), artifacts by name."""

    stages: dict[str, StageSpec]
    artifacts: dict[str, ArtifactSpec]
    params: dict[str, Any]  # params.yaml as parsed

    def edges(self) -> set[tuple[str, str]]:
        """``(producer, consumer)`` stage pairs: the DAG as DVC sees it (`dvc dag`)."""
        return {
            (self.artifacts[a].producer, s.name)  # type: ignore[misc]
            for s in self.stages.values()
            for a in s.inputs
            if self.artifacts[a].producer
        }

    def external_inputs(self) -> list[ArtifactSpec]:
        """The artifacts no stage writes, in the order stages first read them."""
        seen: dict[str, ArtifactSpec] = {}
        for stage in self.stages.values():
            for name in stage.inputs:
                artifact = self.artifacts[name]
                if artifact.producer is None:
                    seen.setdefault(name, artifact)
        return list(seen.values())

    def artifact_at(self, path: str) -> ArtifactSpec:
        """The artifact written at ``path`` (e.g. params ``paths.model``); KfpSpecError when no stage writes it."""
        norm = _norm(path)
        for artifact in self.artifacts.values():
            if artifact.path == norm and artifact.producer:
                return artifact
        raise KfpSpecError(f"dvc.yaml: no stage writes {path!r} (an outs/metrics/plots entry of some stage)")


def resolve(template: str, params: Mapping[str, Any], where: str) -> str:
    """``${paths.model}`` -> its value in params.yaml (DVC's templating for dotted keys). Raises KfpSpecError."""

    def value(match: re.Match[str]) -> str:
        node: Any = params
        for part in match.group(1).split("."):
            if not isinstance(node, Mapping) or part not in node:
                raise KfpSpecError(f"dvc.yaml: {where}: ${{{match.group(1)}}} is not a key of params.yaml")
            node = node[part]
        if isinstance(node, Mapping | list):
            raise KfpSpecError(f"dvc.yaml: {where}: ${{{match.group(1)}}} is a mapping or list, not a value")
        return str(node)

    return _VAR.sub(value, template)


def artifact_name(template: str) -> str:
    """A component input/output name from a dvc.yaml path template: ``${paths.raw}`` -> ``raw``,
    ``${paths.metrics}/validate.json`` -> ``metrics_validate_json``."""
    text = _VAR.sub(lambda m: m.group(1).removeprefix("paths."), template)
    name = re.sub(r"[^0-9A-Za-z]+", "_", text).strip("_").lower() or "artifact"
    if name[0].isdigit():
        name = f"a_{name}"
    return f"{name}_" if keyword.iskeyword(name) else name


def identifier(name: str) -> str:
    """A Python identifier for a stage or task name (``my-stage`` -> ``my_stage``)."""
    ident = re.sub(r"\W+", "_", name).strip("_") or "stage"
    return f"s_{ident}" if ident[0].isdigit() or keyword.iskeyword(ident) else ident


def load_project(root: str | Path = ".") -> ProjectSpec:
    """Read ``root``/dvc.yaml and ``root``/params.yaml into a :class:`ProjectSpec`."""
    root = Path(root)
    try:
        dvc = yaml.safe_load((root / "dvc.yaml").read_text(encoding="utf-8")) or {}
        params = yaml.safe_load((root / "params.yaml").read_text(encoding="utf-8")) or {}
    except FileNotFoundError as exc:
        raise KfpSpecError(f"{exc.filename}: not found; run from the repository root") from exc
    return build_project(dvc, params)


def build_project(dvc: Mapping[str, Any], params: Mapping[str, Any]) -> ProjectSpec:
    """:func:`load_project` on already-parsed dvc.yaml and params.yaml."""
    stages = dvc.get("stages") or {}
    if not stages:
        raise KfpSpecError("dvc.yaml: no stages")
    outs: dict[str, tuple[str, str, Kind]] = {}  # path -> (stage, template, kind)
    for stage, body in stages.items():
        _check_stage(stage, body)
        for section, kind_override in (("outs", None), ("metrics", "Metrics"), ("plots", None)):
            for template in _entries(body.get(section), f"{stage}.{section}"):
                path = _norm(resolve(template, params, f"stages.{stage}.{section}"))
                if path in outs:
                    raise KfpSpecError(f"dvc.yaml: {path} is written by both {outs[path][0]} and {stage}")
                outs[path] = (stage, template, kind_override or _kind(path))
    artifacts: dict[str, ArtifactSpec] = {}
    by_path: dict[str, str] = {}

    def add(path: str, template: str, kind: Kind, producer: str | None) -> str:
        if path in by_path:
            return by_path[path]
        name = artifact_name(template)
        if name in artifacts:
            raise KfpSpecError(f"dvc.yaml: {path} and {artifacts[name].path} both make the artifact name {name!r}")
        artifacts[name] = ArtifactSpec(name, path, kind, producer)
        by_path[path] = name
        return name

    for path, (stage, template, kind) in outs.items():
        add(path, template, kind, stage)
    specs: dict[str, StageSpec] = {}
    for stage, body in stages.items():
        inputs: list[str] = []
        for template in _entries(body.get("deps"), f"{stage}.deps"):
            path = _norm(resolve(template, params, f"stages.{stage}.deps"))
            if path.startswith(CODE_PREFIX):
                continue
            producer = _producer_of(path, outs)
            if producer is not None:
                name = by_path[producer]
            else:
                _check_not_parent(path, outs, stage)
                name = add(path, template, _kind(path), None)
            if artifacts[name].producer == stage:
                raise KfpSpecError(f"dvc.yaml: stage {stage} depends on its own output {path}")
            if name not in inputs:
                inputs.append(name)
        specs[stage] = StageSpec(
            name=stage,
            cmd=tuple(resolve(c, params, f"stages.{stage}.cmd") for c in _commands(stage, body["cmd"])),
            inputs=tuple(inputs),
            outputs=tuple(by_path[p] for p, (s, _, _) in outs.items() if s == stage),
            sections=_sections(stage, body.get("params"), params),
        )
    return ProjectSpec(_topological(specs, artifacts), artifacts, dict(params))


def command_argv(cmd: str, python: str) -> list[str]:
    """``python -m lifecycle.stages.x --a b`` -> argv with ``python`` (or ``python3``) replaced by ``python``."""
    argv = shlex.split(cmd)
    if any(token in {"|", "&&", "||", ";", ">", "<"} for token in argv):
        raise KfpSpecError(f"dvc.yaml: {cmd!r}: shell operators are not supported in a Kubeflow component's cmd")
    if argv and argv[0] in {"python", "python3"}:
        argv[0] = python
    return argv


def stage_spec(stage: StageSpec, project: ProjectSpec, returns: tuple[str, str] | None) -> dict[str, Any]:
    """What :func:`lifecycle.kfp.runtime.run_stage` needs for ``stage``, as plain data baked into the component:
    the params.yaml sections the stage does not receive as parameters are compile-time constants (the stage does
    not read them, as dvc.yaml declares)."""
    spec: dict[str, Any] = {
        "stage": stage.name,
        "cmd": list(stage.cmd),
        "sections": {f"params_{s}": s for s in stage.sections},
        "inputs": {a: project.artifacts[a].path for a in stage.inputs},
        "outputs": {a: {"path": project.artifacts[a].path, "kind": project.artifacts[a].kind} for a in stage.outputs},
        "params": {k: v for k, v in project.params.items() if k not in stage.sections},
    }
    if returns:
        spec["returns"] = {"output": returns[0], "key": returns[1]}
    return spec


# --------------------------------------------------------------------------------------------- helpers
def _norm(path: str) -> str:
    return str(PurePosixPath(path.strip()))


def _kind(path: str) -> Kind:
    return KIND_BY_SUFFIX.get(PurePosixPath(path).suffix.lower(), "Artifact")


def _check_stage(stage: str, body: Any) -> None:
    if not isinstance(body, Mapping):
        raise KfpSpecError(f"dvc.yaml: stages.{stage}: expected a mapping")
    for unsupported in ("foreach", "matrix", "do"):
        if unsupported in body:
            raise KfpSpecError(f"dvc.yaml: stages.{stage}: {unsupported!r} stages cannot become one component yet")
    if "cmd" not in body:
        raise KfpSpecError(f"dvc.yaml: stages.{stage}: no cmd")
    if body.get("wdir", ".") not in (".", "./"):
        raise KfpSpecError(f"dvc.yaml: stages.{stage}: wdir is not supported (paths are relative to the root)")


def _entries(value: Any, where: str) -> list[str]:
    """Paths of a deps/outs/metrics/plots list: strings or ``{path: {options}}`` mappings."""
    out: list[str] = []
    for item in value or []:
        if isinstance(item, str):
            out.append(item)
        elif isinstance(item, Mapping) and len(item) == 1:
            out.append(str(next(iter(item))))
        else:
            raise KfpSpecError(f"dvc.yaml: {where}: cannot read entry {item!r}")
    return out


def _commands(stage: str, cmd: Any) -> list[str]:
    if isinstance(cmd, str):
        return [cmd]
    if isinstance(cmd, list) and all(isinstance(c, str) for c in cmd):
        return list(cmd)
    raise KfpSpecError(f"dvc.yaml: stages.{stage}.cmd: expected a string or a list of strings")


def _producer_of(path: str, outs: Mapping[str, tuple[str, str, Kind]]) -> str | None:
    """The out path equal to ``path`` or a folder containing it."""
    for out in outs:
        if path == out or path.startswith(out.rstrip("/") + "/"):
            return out
    return None


def _check_not_parent(path: str, outs: Mapping[str, tuple[str, str, Kind]], stage: str) -> None:
    inside = [out for out in outs if out.startswith(path.rstrip("/") + "/")]
    if inside:
        raise KfpSpecError(
            f"dvc.yaml: stages.{stage}.deps: {path} contains outputs of other stages ({', '.join(inside)}); "
            "depend on those outputs themselves"
        )


def _sections(stage: str, entries: Any, params: Mapping[str, Any]) -> tuple[str, ...]:
    wanted: set[str] = set()
    for entry in entries or []:
        if isinstance(entry, Mapping) and list(entry) == ["params.yaml"] and not entry["params.yaml"]:
            wanted.update(s for s in params if s not in COMPILE_TIME)  # `- params.yaml:` (no keys): the whole file
            continue
        if not isinstance(entry, str):
            raise KfpSpecError(
                f"dvc.yaml: stages.{stage}.params: {entry!r}: only keys of params.yaml are supported, not other files"
            )
        section = entry.split(".", 1)[0]
        if section not in params:
            raise KfpSpecError(f"dvc.yaml: stages.{stage}.params: {entry!r}: params.yaml has no section {section!r}")
        wanted.add(section)
    return tuple(s for s in params if s in wanted)


def _topological(specs: Mapping[str, StageSpec], artifacts: Mapping[str, ArtifactSpec]) -> dict[str, StageSpec]:
    upstream = {
        name: {artifacts[a].producer for a in spec.inputs if artifacts[a].producer} for name, spec in specs.items()
    }
    ordered: dict[str, StageSpec] = {}
    while len(ordered) < len(specs):
        ready = [n for n in specs if n not in ordered and upstream[n] <= set(ordered)]
        if not ready:
            raise KfpSpecError(f"dvc.yaml: the stages {sorted(set(specs) - set(ordered))} form a cycle")
        ordered[ready[0]] = specs[ready[0]]
    return ordered


def sections_of(stages: Sequence[StageSpec]) -> list[str]:
    """Every params section some stage declares, in first-use order."""
    out: list[str] = []
    for stage in stages:
        out += [s for s in stage.sections if s not in out]
    return out


def mapping_table(project: ProjectSpec) -> str:
    """The Markdown table stage -> component -> artifacts of docs/kubeflow.md (a test keeps the page current)."""
    rows = ["| dvc.yaml stage | component (task) | params sections | input artifacts | output artifacts |"]
    rows.append("|---|---|---|---|---|")

    def show(name: str) -> str:
        art = project.artifacts[name]
        source = f", from {art.producer}" if art.producer else ", imported"
        return f"`{name}` {art.kind} ({art.path}{source})"

    for stage in project.stages.values():
        ins = "<br>".join(show(a) for a in stage.inputs)
        outs = "<br>".join(f"`{a}` {project.artifacts[a].kind} ({project.artifacts[a].path})" for a in stage.outputs)
        rows.append(f"| {stage.name} | `{identifier(stage.name)}` | {', '.join(stage.sections)} | {ins} | {outs} |")
    return "\n".join(rows) + "\n"
