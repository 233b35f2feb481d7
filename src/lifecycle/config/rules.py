"""The rules every params section is checked with: the names params may use, range and format validators, the
strict, frozen :class:`Section` base, and :func:`_fail` that turns a broken rule into one message line."""

from __future__ import annotations

import contextvars
import difflib
import urllib.parse
import warnings
from collections.abc import Iterable
from typing import Annotated, Any, NoReturn

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    ValidationError,
)
from pydantic_core import PydanticCustomError

from lifecycle.errors import ParamsError

DEFAULT_PARAMS = "params.yaml"
SEED_MAX = 2**32 - 1  # numpy's legacy seeding (RandomState, scikit-learn's random_state) takes [0, 2**32 - 1]

# The names params may use. Homes of what they name: lifecycle.modeling.metrics (how each metric is computed),
# lifecycle.modeling.estimators (the models), lifecycle.data.telemetry (the simulated fleets); tests/test_config.py
# keeps these equal to them.
TASKS = ("classification", "regression")
METRICS = {
    "classification": ("accuracy", "balanced_accuracy", "f1_macro", "roc_auc", "log_loss"),
    "regression": ("rmse", "mae", "r2"),
}
KNOWN_METRICS = (*METRICS["classification"], *METRICS["regression"])
LOSSES = frozenset({"log_loss", "rmse", "mae"})  # lower is better; higher for every other metric
MODEL_TASKS = {
    "hist_gradient_boosting": ("classification", "regression"),
    "random_forest": ("classification", "regression"),
    "logistic_regression": ("classification",),
    "ridge": ("regression",),
}
TELEMETRY_VERSIONS = ("v1", "v2")
DASK_PROTOCOLS = ("tcp", "tls", "ws", "wss", "ucx")  # the comm protocols of a Dask scheduler address
TELEMETRY_SOURCE = "telemetry"  # ingest.source of the built-in simulator (lifecycle.data.telemetry)
GATE_KINDS = ("min", "max", "min_improvement")  # promote.<task>.<kind>: {metric: value}
# What ingest.datetime_features may derive from a datetime column (lifecycle.modeling.features computes them).
DATETIME_PARTS = ("hour", "day_of_week", "month", "elapsed_days")


# --------------------------------------------------------------------------------------------- rules
def _fail(message: str, at: str = "") -> NoReturn:
    """Raise a rule's failure inside validation: ``message`` says what is wrong and the fix; ``at`` is the key's
    dotted path below the model whose validator raised (empty: the field being validated)."""
    raise PydanticCustomError("params", "{message}", {"message": message, "at": at})


def _number(value: float) -> str:
    return str(value) if isinstance(value, int) else f"{value:g}"


def within(
    low: float | None = None,
    high: float | None = None,
    *,
    open_low: bool = False,
    open_high: bool = False,
    why: str = "",
) -> AfterValidator:
    """An ``Annotated`` marker: the value must lie in the interval (closed unless ``open_*``; None: unbounded).

    The failure reads ``1.5 is out of range; use a value in (0, 1)`` plus `` (why)`` when ``why`` is given.
    """
    if low is not None and high is not None:
        rule = f"in {'(' if open_low else '['}{_number(low)}, {_number(high)}{')' if open_high else ']'}"
    elif low is not None:
        rule = f"{'>' if open_low else '>='} {_number(low)}"
    elif high is not None:
        rule = f"{'<' if open_high else '<='} {_number(high)}"
    else:  # pragma: no cover - a developer error in this module
        raise TypeError("within() needs a bound")
    reason = f" ({why})" if why else ""

    def check(value: float) -> float:
        if value != value:  # NaN (YAML's .nan) passes every comparison
            _fail(f"{value!r} is not a number; use a value {rule}{reason}")
        too_low = low is not None and (value <= low if open_low else value < low)
        too_high = high is not None and (value >= high if open_high else value > high)
        if too_low or too_high:
            _fail(f"{value!r} is out of range; use a value {rule}{reason}")
        return value

    return AfterValidator(check)


def _nonempty(value: str) -> str:
    if not value.strip():
        _fail("must not be empty; name it, or use null where the key allows it")
    return value


def _n_jobs(value: int) -> int:
    if value < 1 and value != -1:
        _fail(f"{value!r} is out of range; use a value >= 1, or -1 for one job per core")
    return value


def _max_features(value: str | float | None) -> str | float | None:
    if isinstance(value, str) and value not in ("sqrt", "log2"):
        _fail(f"{value!r} is not allowed; use sqrt, log2, a share of the features in (0, 1], or null (all)")
    if isinstance(value, float) and not 0.0 < value <= 1.0:
        _fail(f"{value!r} is out of range; a share of the features is in (0, 1] (or use sqrt, log2, null)")
    return value


def _http_url(value: str) -> str:
    url = urllib.parse.urlsplit(value)
    if url.scheme not in ("http", "https") or not url.netloc:
        _fail(f"{value!r} is not an http(s) URL; use the webhook's https://... address, or null for no notifications")
    return value


def _closest(name: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(choices), n=1)
    return f"did you mean '{close[0]}'? " if close else ""


Count = Annotated[int, within(1)]
Fraction = Annotated[float, within(0, 1)]
Positive = Annotated[float, within(0, open_low=True)]
NonNegative = Annotated[float, within(0)]
Rate = Annotated[float, within(0, 1, open_high=True)]
SampleRows = Annotated[int, within(0, why="0 = all rows")]  # rows of a seeded sample; 0 = every row
Seed = Annotated[int, within(0, SEED_MAX, why="numpy's seed range")]
NJobs = Annotated[int, AfterValidator(_n_jobs)]
Text = Annotated[str, AfterValidator(_nonempty)]


# params.yaml's `paths.schema` and `validate` section share their names with BaseModel's deprecated class methods
# schema() and validate(); pydantic supports such fields and only warns that they shadow the methods.
warnings.filterwarnings("ignore", r'Field name "(schema|validate)" in "(Paths|Params)" shadows', UserWarning)
# True while a section is validated inside another (pydantic calls each section's __init__): only the outermost
# construction turns pydantic's errors into one ParamsError.
_NESTED: contextvars.ContextVar[bool] = contextvars.ContextVar("lifecycle_config_nested", default=False)


class Section(BaseModel):
    """A params.yaml section: unknown keys are errors, values are strictly typed and read-only.

    Building one in code checks the same rules as loading; a failure raises :class:`ParamsError` naming the
    section's dotted keys (``promote.classification.min.accurcy: unknown metric; ...``).
    """

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    def __init__(self, /, **data: Any) -> None:
        if _NESTED.get():  # pydantic validating a section inside another, or parse_params: it reports the errors
            super().__init__(**data)
            return
        token = _NESTED.set(True)
        try:
            super().__init__(**data)
        except ValidationError as exc:
            from lifecycle.config import _PREFIX  # the dotted key of each section: known once Params is built
            from lifecycle.config.messages import _explain

            raise ParamsError(_explain(exc, type(self), prefix=_PREFIX.get(type(self), ""))) from None
        finally:
            _NESTED.reset(token)
