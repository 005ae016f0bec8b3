"""The project's parameters as one schema, checked once, before any node runs.

Types, ranges and choices are declared with pydantic, strictly: ``"5"`` is not taken for
5 nor ``true`` for 1, and unknown keys are refused, so a typo in ``--params`` cannot pass
unnoticed. Rules that span several keys follow as plain checks. Every failure becomes one
line that names the key, the allowed values and the value given.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Annotated, Any, Literal, get_args, get_origin

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, TypeAdapter, ValidationError
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from alexnet_cifar10.corruptions import CORRUPTIONS
from alexnet_cifar10.pictures import INPUT_SIZE

# The side of the network's square input, in pixels.

PositiveInt = Annotated[int, Field(ge=1)]
# Upper bounds where a larger value is a typo, not a plan: a billion epochs would run for
# years, and a batch beyond this fits no accelerator's memory.
BatchSize = Annotated[int, Field(ge=1, le=1 << 16)]
Fraction = Annotated[float, Field(ge=0, lt=1)]
_STRICT = ConfigDict(strict=True, extra="forbid")


class ParameterError(ValueError):
    """Parameters outside their allowed values, one line each."""


class _Schema(BaseModel):
    model_config = _STRICT


class ConvLayer(_Schema):
    filters: PositiveInt
    kernel_size: PositiveInt
    strides: PositiveInt
    pool: bool
    batch_norm: bool


class Network(_Schema):
    # The side of the network's square input, in pixels: CIFAR-10's 32, or a labelled
    # folder's pictures resized to it (data_processing.resize).
    input_size: Annotated[int, Field(ge=8, le=1024)]
    conv_layers: Annotated[list[ConvLayer], Field(min_length=1)]
    pool_size: PositiveInt
    pool_strides: PositiveInt
    batch_norm_momentum: Fraction
    dense_units: list[PositiveInt]
    dropout: Fraction


class Augmentation(_Schema):
    enabled: bool
    pad: Annotated[int, Field(ge=0, lt=INPUT_SIZE)]
    horizontal_flip: bool
    cutout: Annotated[int, Field(ge=0, le=INPUT_SIZE)]


class WeightAveraging(_Schema):
    enabled: bool
    momentum: Fraction


class Optimizer(_Schema):
    name: Literal["adam", "adamw", "sgd", "rmsprop"]
    learning_rate: Annotated[float, Field(gt=0)]
    weight_decay: Annotated[float, Field(ge=0)] | None
    momentum: Fraction
    nesterov: bool
    ema: WeightAveraging


class LearningRateSchedule(_Schema):
    name: Literal["constant", "warmup_cosine"]
    warmup_epochs: Annotated[float, Field(ge=0)]


class Resume(_Schema):
    enabled: bool
    backup_dir: Annotated[str, Field(min_length=1)]


class FitPhase(_Schema):
    epochs: Annotated[int, Field(ge=1, le=10_000)]
    learning_rate: Annotated[float, Field(gt=0)]


class FineTune(_Schema):
    # `from` in the parameters (a Python keyword).
    source: Annotated[Annotated[str, Field(min_length=1)] | None, Field(alias="from")]
    head: FitPhase
    all_layers: FitPhase


class Training(_Schema):
    model: Network
    augmentation: Augmentation
    optimizer: Optimizer
    lr_schedule: LearningRateSchedule
    loss: Literal["categorical_crossentropy", "categorical_focal_crossentropy"]
    label_smoothing: Fraction
    class_weight: Literal["none", "balanced"]
    fine_tune: FineTune
    epochs: Annotated[int, Field(ge=1, le=10_000)]
    batch_size: BatchSize
    distribution: Literal["one_device", "data_parallel"]
    precision: Literal["float32", "mixed_bfloat16"]
    jit_compile: Literal["auto", True, False]
    resume: Resume
    progress_seconds: Annotated[float, Field(gt=0)]


ColourLevel = Annotated[int, Field(ge=0, le=255)]


class ResizePolicy(_Schema):
    fit: Literal["crop", "pad", "stretch"]
    resample: Literal["lanczos", "bicubic", "hamming", "bilinear", "box", "nearest"]
    background: Annotated[list[ColourLevel], Field(min_length=3, max_length=3)]


class DataProcessing(_Schema):
    validation_fraction: Annotated[float, Field(gt=0, lt=1)]
    test_fraction: Annotated[float, Field(gt=0, lt=1)]
    resize: ResizePolicy
    stratify: bool
    subset_fraction: Annotated[float, Field(gt=0, le=1)]
    sample_images_per_class: PositiveInt


class TestTimeAugmentation(_Schema):
    horizontal_flip: bool
    shift: Annotated[int, Field(ge=0, lt=INPUT_SIZE)]


class Calibration(_Schema):
    bins: Annotated[int, Field(ge=2)]


class Evaluate(_Schema):
    batch_size: BatchSize
    test_time_augmentation: TestTimeAugmentation
    calibration: Calibration


class ContactSheet(_Schema):
    columns: PositiveInt
    max_images: PositiveInt


class Robustness(_Schema):
    images: PositiveInt | None
    corruptions: Annotated[list[Literal[tuple(CORRUPTIONS)]], Field(min_length=1)]
    severities: Annotated[list[Annotated[int, Field(ge=1, le=5)]], Field(min_length=1)]
    grid_image: Annotated[int, Field(ge=0)]


class Predict(_Schema):
    batch_size: BatchSize
    test_time_augmentation: TestTimeAugmentation
    temperature_scaling: bool
    resize: ResizePolicy
    contact_sheet: ContactSheet


class Decoding(_Schema):
    formats: Annotated[
        list[Literal["BMP", "GIF", "JPEG", "PNG", "TIFF", "WEBP"]], Field(min_length=1)
    ]
    max_pixels: PositiveInt
    max_file_bytes: PositiveInt
    draft_size: PositiveInt | None


class Serve(_Schema):
    max_rows: PositiveInt
    max_request_bytes: PositiveInt
    decoding: Decoding


class Export(_Schema):
    parity_tolerance: Annotated[float, Field(gt=0, lt=1)]


def _alias(name: str) -> str:
    if name == "latest" or re.fullmatch(r"v\d+", name):
        raise ValueError(f"a name other than MLflow's reserved '{name}'")
    return name


class Promote(_Schema):
    # A registry alias: a letter, then letters, digits, '-' and '_'.
    alias: Annotated[
        str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_-]*$", max_length=255), AfterValidator(_alias)
    ]
    accuracy_tolerance: Annotated[float, Field(ge=0, le=1)]
    max_ece: Annotated[float, Field(gt=0, le=1)]


def _storage(url: str) -> str:
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ValueError("a sqlite:/// or postgresql:// URL") from None
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        raise ValueError("a sqlite:/// or postgresql:// URL")
    if parsed.password is not None:
        # The parameters are logged to MLflow: a password there would be published.
        raise ValueError("a URL without a password (PostgreSQL reads PGPASSWORD or ~/.pgpass)")
    return url


class SearchDimension(_Schema):
    """One training parameter's range (``low``, ``high``, ``log``, ``step``) or choices."""

    low: int | float | None = None
    high: int | float | None = None
    log: bool = False
    step: Annotated[int | float, Field(gt=0)] | None = None
    choices: Annotated[list[bool | int | float | str | None], Field(min_length=1)] | None = None


class Sampler(_Schema):
    name: Literal["tpe", "random"]
    seed: Annotated[int, Field(ge=0, le=2**32 - 1)] | None
    startup_trials: Annotated[int, Field(ge=0)]


class Pruner(_Schema):
    name: Literal["median", "hyperband", "none"]
    startup_trials: Annotated[int, Field(ge=0)]
    warmup_epochs: Annotated[int, Field(ge=0)]


class Tune(_Schema):
    study_name: Annotated[str, Field(min_length=1)]
    storage: Annotated[str, AfterValidator(_storage)]
    n_trials: PositiveInt
    subset_fraction: Annotated[float, Field(gt=0, le=1)]
    epochs: Annotated[int, Field(ge=1, le=10_000)]
    heartbeat_seconds: PositiveInt
    sampler: Sampler
    pruner: Pruner
    search_space: Annotated[dict[str, SearchDimension], Field(min_length=1)]


class LinearProbe(_Schema):
    C: Annotated[list[Annotated[float, Field(gt=0)]], Field(min_length=1)]
    max_iter: PositiveInt


class Projection(_Schema):
    max_points: Annotated[int, Field(ge=2)]


class Features(_Schema):
    batch_size: BatchSize
    probe: LinearProbe
    projection: Projection


# Every top-level key of conf/*/parameters*.yml and the schema of its value.
SECTIONS: dict[str, Any] = {
    # NumPy's and Keras' seeds are 32-bit.
    "seed": Annotated[int, Field(ge=0, le=2**32 - 1)],
    "class_names": Annotated[list[Annotated[str, Field(min_length=1)]], Field(min_length=2)],
    "run_label": Annotated[str, Field(min_length=1)],
    "data_processing": DataProcessing,
    "training": Training,
    "evaluate": Evaluate,
    "predict": Predict,
    "serve": Serve,
    "export": Export,
    "promote": Promote,
    "features": Features,
    "robustness": Robustness,
    "tune": Tune,
}


def _is_schema(schema: Any) -> bool:
    return isinstance(schema, type) and issubclass(schema, BaseModel)


_ADAPTERS = {
    name: TypeAdapter(schema) if _is_schema(schema) else TypeAdapter(schema, config=_STRICT)
    for name, schema in SECTIONS.items()
}


def _unwrap(schema: Any) -> Any:
    while get_origin(schema) is Annotated:
        schema = get_args(schema)[0]
    return schema


def _schema_at(loc: tuple[Any, ...]) -> Any:
    """The schema that validates the value at ``loc``, or None if there is none."""
    schema = _unwrap(SECTIONS.get(loc[0]))
    for part in loc[1:]:
        if isinstance(part, int) and get_origin(schema) is list:
            schema = get_args(schema)[0]
        elif _is_schema(schema) and part in schema.model_fields:
            schema = schema.model_fields[part].annotation
        else:
            return None
        schema = _unwrap(schema)
    return schema


def _key(loc: Iterable[Any]) -> str:
    key = ""
    for part in loc:
        key += f"[{part}]" if isinstance(part, int) else f".{part}" if key else str(part)
    return key


def _line(
    kind: str,
    loc: tuple[Any, ...],
    message: str = "",
    value: Any = None,
    context: Mapping[str, Any] | None = None,
) -> str:
    """One line for one of pydantic's errors: the key, what it must be, the value given."""
    key, context = _key(loc), context or {}
    if kind == "extra_forbidden":
        parent = _schema_at(loc[:-1]) if len(loc) > 1 else None
        known = sorted(parent.model_fields) if _is_schema(parent) else sorted(SECTIONS)
        return f"Parameter '{key}' is not a parameter of this project (known: {known})."
    if kind == "missing":
        return f"Parameter '{key}' is missing."
    if _is_schema(schema := _schema_at(loc)):
        allowed = f"a mapping with the keys {sorted(schema.model_fields)}"
    elif kind in ("too_short", "string_too_short"):
        unit = "item(s)" if kind == "too_short" else "character(s)"
        noun = (
            "string" if kind != "too_short" else "mapping" if isinstance(value, Mapping) else "list"
        )
        allowed = f"a {noun} of at least {context['min_length']} {unit}"
    else:
        # A custom check's ValueError says what the value must be.
        allowed = message.removeprefix("Input should be ").removeprefix("Value error, ")
    return f"Parameter '{key}' must be {allowed}; got {value!r}."


def _pool_plan(network: Network) -> list[str]:
    """Each pooling must still find a feature map at least as large as its window."""
    size = network.input_size
    for index, conv in enumerate(network.conv_layers):
        size = -(-size // conv.strides)
        if not conv.pool:
            continue
        if size < network.pool_size:
            return [
                f"Parameter 'training.model.conv_layers[{index}].pool' must be false here: "
                f"the feature map is {size}x{size} at this point, smaller than the "
                f"{network.pool_size}x{network.pool_size} pooling window (fewer pools, or "
                "smaller strides or pool_size, keep the image at least 1x1); got True."
            ]
        size = (size - network.pool_size) // network.pool_strides + 1
    return []


def _training_rules(training: Training) -> list[str]:
    problems = []
    decay = training.optimizer.weight_decay
    if decay is not None and training.optimizer.name not in ("adamw", "sgd"):
        problems.append(
            "Parameter 'training.optimizer.weight_decay' must be null unless "
            f"training.optimizer.name is adamw or sgd; got {decay!r}."
        )
    optimizer = training.optimizer
    if optimizer.momentum and optimizer.name not in ("sgd", "rmsprop"):
        problems.append(
            "Parameter 'training.optimizer.momentum' must be 0 unless "
            f"training.optimizer.name is sgd or rmsprop; got {optimizer.momentum!r}."
        )
    if optimizer.nesterov and (optimizer.name != "sgd" or not optimizer.momentum):
        problems.append(
            "Parameter 'training.optimizer.nesterov' must be false unless "
            "training.optimizer.name is sgd with a momentum above 0; got True."
        )
    warmup = training.lr_schedule.warmup_epochs
    if warmup >= training.epochs:
        problems.append(
            "Parameter 'training.lr_schedule.warmup_epochs' must be below training.epochs "
            f"({training.epochs}); got {warmup!r}."
        )
    if training.fine_tune.source is not None and training.resume.enabled:
        problems.append(
            "Parameter 'training.resume.enabled' must be false when fine-tuning "
            "(training.fine_tune.from is set); got True."
        )
    return problems + _pool_plan(training.model)


def _class_name_rules(names: list[str]) -> list[str]:
    if len(set(names)) == len(names):
        return []
    return [f"Parameter 'class_names' must be a list of distinct names; got {names!r}."]


_RULES: dict[str, Callable[[Any], list[str]]] = {
    "training": _training_rules,
    "class_names": _class_name_rules,
}


def _section_problems(name: str, value: Any, *, rules: bool = True) -> list[str]:
    """Lines for the schema's problems with one section, then for its rules' (``rules``)."""
    try:
        checked = _ADAPTERS[name].validate_python(value)
    except ValidationError as error:
        return [
            _line(e["type"], (name, *e["loc"]), e["msg"], e.get("input"), e.get("ctx"))
            for e in error.errors()
        ]
    return _RULES[name](checked) if rules and name in _RULES else []


def parameter_problems(params: Mapping[str, Any], sections: Iterable[str]) -> list[str]:
    """One line per problem: unknown top-level keys, then anything wrong in the top-level
    ``sections`` a run uses (a section that the run never reads cannot block it)."""
    problems = [_line("extra_forbidden", (name,)) for name in params if name not in SECTIONS]
    for name in sorted(set(sections) & set(SECTIONS)):
        if name in params:
            problems.extend(_section_problems(name, params[name]))
        else:
            problems.append(_line("missing", (name,)))
    if "tune" in sections and not problems:
        problems.extend(search_space_problems(params["tune"], params["training"]))
    if not problems:
        problems.extend(_input_size_problems(params, set(sections)))
    return problems


def _input_size_problems(params: Mapping[str, Any], sections: set[str]) -> list[str]:
    """A run that trains a model and then packages, serves or exports it needs the 32x32
    input that the predict path prepares."""
    if "training" not in sections or not sections & {"predict", "serve", "export"}:
        return []
    side = params["training"]["model"]["input_size"]  # valid: checked above
    if side == INPUT_SIZE:
        return []
    return [
        f"Parameter 'training.model.input_size' must be {INPUT_SIZE} in a run that packages, "
        f"serves or exports the model (the predict path prepares {INPUT_SIZE}x{INPUT_SIZE} "
        f"pictures); got {side}. Train a larger input with --pipelines "
        "data_processing,training,evaluate."
    ]


def validate_parameters(params: Mapping[str, Any], sections: Iterable[str]) -> None:
    """Raise ``ParameterError`` listing every problem of the sections a run uses."""
    problems = parameter_problems(params, sections)
    if problems:
        raise ParameterError("\n".join(problems))


def placement_problems(
    training: Mapping[str, Any], devices: int, processes: int, backend: str
) -> list[str]:
    """Rules for the ``training`` section (already valid) that need the run's devices and
    processes, known only once the backend has started: one line per problem."""
    strategy, batch = training["distribution"], training["batch_size"]
    parallel = strategy == "data_parallel"
    problems = []
    if processes > 1 and not parallel:
        problems.append(
            f"Parameter 'training.distribution' must be data_parallel when {processes} "
            f"processes train one model together; got {strategy!r}."
        )
    if parallel and backend not in ("jax", "tensorflow"):
        problems.append(
            f"Parameter 'training.distribution' must be one_device on the {backend} backend "
            f"(data_parallel runs on jax and tensorflow); got {strategy!r}."
        )
    if parallel and batch % devices:
        below = batch - batch % devices
        nearest = " or ".join(str(size) for size in (below, below + devices) if size)
        problems.append(
            f"Parameter 'training.batch_size' must be a multiple of the {devices} devices that "
            f"data_parallel splits every batch over (say {nearest}); got {batch}."
        )
    if processes > 1 and training["resume"]["enabled"]:
        problems.append(
            f"Parameter 'training.resume.enabled' must be false when {processes} processes "
            "train together (each would write the same resume point); got True."
        )
    return problems


def _leaves(overrides: Mapping[str, Any], prefix: tuple[str, ...] = ()) -> Iterator[tuple]:
    for key, value in overrides.items():
        loc = (*prefix, *str(key).split("."))
        if isinstance(value, Mapping) and _is_schema(_schema_at(loc)):
            yield from _leaves(value, loc)
        else:
            yield loc, value


def override_problems(overrides: Mapping[str, Any]) -> list[str]:
    """Lines for ``--params`` values that Kedro cannot even merge into the configuration:
    a list or mapping where the other kind of container is expected."""
    problems = []
    for loc, value in _leaves(overrides):
        schema = _schema_at(loc) if loc[0] in SECTIONS else None
        wants_mapping = _is_schema(schema)
        wants_list = get_origin(schema) is list
        if (wants_mapping and isinstance(value, list)) or (
            wants_list and isinstance(value, Mapping)
        ):
            problems.append(_line("type", loc, "Input should be a valid list", value))
    return problems


# --- the tune pipeline's search space: every trial's training must pass the schema ---------

# Keys a search cannot vary: tune.epochs sets each trial's length, and a trial never
# resumes another's training.
_UNSEARCHABLE = ("epochs", "resume")
_SCALARS = (bool, int, float, str)


def _scalar_paths(schema: Any, prefix: tuple[str, ...] = ()) -> Iterator[str]:
    for name, field in schema.model_fields.items():
        inner = _unwrap(field.annotation)
        if _is_schema(inner):
            yield from _scalar_paths(inner, (*prefix, name))
        elif get_origin(inner) is not list:
            yield ".".join((*prefix, name))


def number_kind(key: str) -> type | None:
    """``int`` or ``float`` for a numeric training parameter ``key``, else None."""
    schema = _schema_at(("training", *key.split(".")))
    kinds = [_unwrap(arg) for arg in (get_args(schema) or (schema,))]
    return next((kind for kind in (float, int) if kind in kinds), None)


def with_values(training: Mapping[str, Any], values: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``training`` with each dotted key of ``values`` set."""
    result = _copy(training)
    for key, value in values.items():
        *parents, leaf = key.split(".")
        target = result
        for parent in parents:
            target = target.setdefault(parent, {})
        target[leaf] = value
    return result


def _copy(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {key: _copy(item) for key, item in value.items()}
    return [_copy(item) for item in value] if isinstance(value, list) else value


def trial_training(
    training: Mapping[str, Any], tune: Mapping[str, Any], values: Mapping[str, Any]
) -> dict[str, Any]:
    """The training parameters of one trial: ``values`` set, ``tune.epochs`` long, never
    resuming (a trial's resume point would be another trial's)."""
    fixed = {"epochs": tune["epochs"], "resume.enabled": False}
    return with_values(training, {**fixed, **values})


def search_space(tune: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """``tune.search_space`` with the schema's defaults filled in (``log``, ``step``)."""
    return {
        key: SearchDimension.model_validate(dimension).model_dump()
        for key, dimension in tune["search_space"].items()
    }


def _range_problems(name: str, key: str, dimension: Mapping[str, Any]) -> list[str]:
    low, high, step = dimension.get("low"), dimension.get("high"), dimension.get("step")
    if number_kind(key) is None:
        return [f"{name}' must use choices: training.{key} is not a number; got a range."]
    if low is None or high is None or not low < high:
        return [f"{name}.high' must be above low ({low!r}); got {high!r}."]
    if dimension["log"] and low <= 0:
        return [f"{name}.low' must be above 0 with log: true; got {low!r}."]
    if dimension["log"] and step is not None:
        return [f"{name}.step' must be null with log: true; got {step!r}."]
    return []


def _dimension_problems(key: str, dimension: Mapping[str, Any]) -> list[str]:
    name = f"Parameter 'tune.search_space.{key}"
    if key.split(".", maxsplit=1)[0] in _UNSEARCHABLE:
        return [f"{name}' cannot be searched: tune.epochs sets every trial's length."]
    searchable = sorted(
        path for path in _scalar_paths(Training) if path.split(".")[0] not in _UNSEARCHABLE
    )
    if key not in searchable:
        return [
            f"{name}' must name one training parameter (a number, a flag or a name), such "
            f"as optimizer.learning_rate; known: {searchable}."
        ]
    ranged = dimension.get("low") is not None or dimension.get("high") is not None
    if ranged == (dimension.get("choices") is not None):
        return [f"{name}' must have either low and high, or choices; got {dict(dimension)}."]
    return _range_problems(name, key, dimension) if ranged else []


def _candidates(dimension: Mapping[str, Any]) -> list[tuple[str, Any]]:
    if dimension.get("choices") is not None:
        return [(f"choices[{i}]", value) for i, value in enumerate(dimension["choices"])]
    return [("low", dimension["low"]), ("high", dimension["high"])]


def _bound_problems(
    key: str, dimension: Mapping[str, Any], tune: Mapping[str, Any], training: Mapping[str, Any]
) -> list[str]:
    """The schema's lines for each bound or choice of one dimension, set alone."""
    problems = []
    for where, value in _candidates(dimension):
        trial = trial_training(training, tune, {key: value})
        for line in _section_problems("training", trial, rules=False):
            if line.startswith(f"Parameter 'training.{key}' "):
                problems.append(
                    line.replace(f"training.{key}'", f"tune.search_space.{key}.{where}'")
                )
    return problems


def search_space_problems(tune: Mapping[str, Any], training: Mapping[str, Any]) -> list[str]:
    """One line per search-space dimension that could give a trial a training the schema
    refuses: an unknown key, a bad range, a value out of bounds; then one per rule spanning
    several keys that a combination of bounds and choices breaks."""
    space, problems = search_space(tune), []
    for key, dimension in space.items():
        problems += _dimension_problems(key, dimension) or _bound_problems(
            key, dimension, tune, training
        )
    if problems:
        return problems
    base = set(_section_problems("training", trial_training(training, tune, {})))
    combined: dict[str, str] = {}
    options = [[(key, value) for _, value in _candidates(dim)] for key, dim in space.items()]
    for combination in itertools.product(*options):
        for line in _section_problems(
            "training", trial_training(training, tune, dict(combination))
        ):
            rule = line.partition(" must ")[0]
            if line not in base and rule not in combined:
                values = ", ".join(f"{key}={value!r}" for key, value in combination)
                combined[rule] = (
                    f"Parameter 'tune.search_space' lets a trial combine {values}, which "
                    f"training refuses: {line}"
                )
    return list(combined.values())
