"""The parameter schema (validation.py): one line per problem, naming key, allowed, given."""

from __future__ import annotations

import copy

import pytest
from kedro.config import OmegaConfigLoader
from kedro_cli import REPO

from alexnet_cifar10.settings import CONFIG_LOADER_ARGS
from alexnet_cifar10.validation import (
    SECTIONS,
    ParameterError,
    override_problems,
    parameter_problems,
    placement_problems,
    validate_parameters,
)

# A wrong type for every top-level key, and the line that names it.
WRONG_TOP_LEVEL = [
    ("seed", "abc", "Parameter 'seed' must be a valid integer; got 'abc'."),
    (
        "seed",
        2**32,
        "Parameter 'seed' must be less than or equal to 4294967295; got 4294967296.",
    ),
    ("class_names", 3, "Parameter 'class_names' must be a valid list; got 3."),
    ("run_label", 5, "Parameter 'run_label' must be a valid string; got 5."),
    (
        "data_processing",
        3,
        "Parameter 'data_processing' must be a mapping with the keys ['resize', "
        "'sample_images_per_class', 'stratify', 'subset_fraction', 'test_fraction', "
        "'validation_fraction']; got 3.",
    ),
    (
        "training",
        "fast",
        "Parameter 'training' must be a mapping with the keys ['augmentation', 'batch_size', "
        "'class_weight', 'distribution', 'epochs', 'fine_tune', 'jit_compile', "
        "'label_smoothing', 'loss', 'lr_schedule', "
        "'model', 'optimizer', 'precision', 'progress_seconds', 'resume']; got 'fast'.",
    ),
    (
        "evaluate",
        [256],
        "Parameter 'evaluate' must be a mapping with the keys ['batch_size', "
        "'calibration', 'test_time_augmentation']; got [256].",
    ),
]


@pytest.mark.parametrize("env", ["base", "quick", "tuned", "test"])
def test_every_environment_is_valid(env: str) -> None:
    loader = OmegaConfigLoader(
        str(REPO / "conf"), env=None if env == "base" else env, **CONFIG_LOADER_ARGS
    )
    assert parameter_problems(loader["parameters"], SECTIONS) == []


@pytest.mark.parametrize(("key", "value", "line"), WRONG_TOP_LEVEL)
def test_a_wrong_type_for_each_top_level_key_is_one_line(
    base_params: dict, key: str, value: object, line: str
) -> None:
    assert parameter_problems({**base_params, key: value}, SECTIONS) == [line]


def test_strict_types_refuse_bools_for_numbers_and_strings_for_bools(base_params: dict) -> None:
    params = copy.deepcopy(base_params)
    params["seed"] = True
    params["data_processing"]["stratify"] = "yes"
    assert parameter_problems(params, SECTIONS) == [
        "Parameter 'data_processing.stratify' must be a valid boolean; got 'yes'.",
        "Parameter 'seed' must be a valid integer; got True.",
    ]


def test_an_unknown_key_is_named_with_the_known_ones(base_params: dict) -> None:
    params = copy.deepcopy(base_params)
    params["trainig"] = {"epochs": 3}
    params["training"]["epoch"] = 3
    assert parameter_problems(params, SECTIONS) == [
        "Parameter 'trainig' is not a parameter of this project (known: ['class_names', "
        "'data_processing', 'evaluate', 'export', 'features', 'predict', 'promote', "
        "'robustness', 'run_label', 'seed', 'serve', 'training', 'tune']).",
        "Parameter 'training.epoch' is not a parameter of this project (known: ['augmentation',"
        " 'batch_size', 'class_weight', 'distribution', 'epochs', 'fine_tune', 'jit_compile', "
        "'label_smoothing', 'loss', "
        "'lr_schedule', 'model', 'optimizer', 'precision', 'progress_seconds', 'resume']).",
    ]


def test_an_unknown_key_deep_down_is_named_with_its_neighbours(base_params: dict) -> None:
    params = copy.deepcopy(base_params)
    params["training"]["model"]["conv_layers"][0]["filter"] = 8
    params["training"]["model"]["dropuot"] = 0.5
    assert parameter_problems(params, ["training"]) == [
        "Parameter 'training.model.conv_layers[0].filter' is not a parameter of this project "
        "(known: ['batch_norm', 'filters', 'kernel_size', 'pool', 'strides']).",
        "Parameter 'training.model.dropuot' is not a parameter of this project (known: "
        "['batch_norm_momentum', 'conv_layers', 'dense_units', 'dropout', 'input_size', "
        "'pool_size', 'pool_strides']).",
    ]


def test_batch_norm_placement_is_a_required_switch_per_convolution(base_params: dict) -> None:
    params = copy.deepcopy(base_params)
    first, second, *_ = params["training"]["model"]["conv_layers"]
    first["batch_norm"] = "yes"
    del second["batch_norm"]
    assert parameter_problems(params, ["training"]) == [
        "Parameter 'training.model.conv_layers[0].batch_norm' must be a valid boolean; got 'yes'.",
        "Parameter 'training.model.conv_layers[1].batch_norm' is missing.",
    ]


@pytest.mark.parametrize(
    ("path", "value", "line"),
    [
        (
            ("optimizer", "name"),
            "adamax",
            "Parameter 'training.optimizer.name' must be 'adam', 'adamw', 'sgd' or 'rmsprop'; "
            "got 'adamax'.",
        ),
        (("epochs",), 0, "Parameter 'training.epochs' must be greater than or equal to 1; got 0."),
        (
            ("epochs",),
            10**9,
            "Parameter 'training.epochs' must be less than or equal to 10000; got 1000000000.",
        ),
        (
            ("batch_size",),
            1 << 20,
            "Parameter 'training.batch_size' must be less than or equal to 65536; got 1048576.",
        ),
        (("batch_size",), 6.5, "Parameter 'training.batch_size' must be a valid integer; got 6.5."),
        (
            ("model", "dropout"),
            1.0,
            "Parameter 'training.model.dropout' must be less than 1; got 1.0.",
        ),
        (
            ("model", "conv_layers"),
            [],
            "Parameter 'training.model.conv_layers' must be a list of at least 1 item(s); got [].",
        ),
        (
            ("precision",),
            "float16",
            "Parameter 'training.precision' must be 'float32' or 'mixed_bfloat16'; got 'float16'.",
        ),
        (
            ("jit_compile",),
            "yes",
            "Parameter 'training.jit_compile' must be 'auto', True or False; got 'yes'.",
        ),
        (
            ("label_smoothing",),
            1.5,
            "Parameter 'training.label_smoothing' must be less than 1; got 1.5.",
        ),
        (
            ("optimizer", "learning_rate"),
            0,
            "Parameter 'training.optimizer.learning_rate' must be greater than 0; got 0.",
        ),
        (
            ("augmentation", "pad"),
            32,
            "Parameter 'training.augmentation.pad' must be less than 32; got 32.",
        ),
    ],
)
def test_nested_values_are_named_by_their_full_key(
    recipe_training: dict, base_params: dict, path: tuple, value: object, line: str
) -> None:
    target = recipe_training
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    assert parameter_problems({**base_params, "training": recipe_training}, ["training"]) == [line]


def test_rules_across_keys(base_params: dict) -> None:
    params = copy.deepcopy(base_params)
    params["class_names"][1] = "airplane"
    training = params["training"]
    training["optimizer"]["weight_decay"] = 0.01
    training["lr_schedule"] = {"name": "warmup_cosine", "warmup_epochs": 15}
    assert parameter_problems(params, SECTIONS) == [
        f"Parameter 'class_names' must be a list of distinct names; got {params['class_names']!r}.",
        "Parameter 'training.optimizer.weight_decay' must be null unless "
        "training.optimizer.name is adamw or sgd; got 0.01.",
        "Parameter 'training.lr_schedule.warmup_epochs' must be below training.epochs (15); "
        "got 15.0.",
    ]


def test_a_pooling_plan_below_1x1_is_rejected(recipe_training: dict, base_params: dict) -> None:
    for conv in recipe_training["model"]["conv_layers"]:
        conv["pool"] = True
    # 32 -> 15 -> 7 -> 3 -> 1: the fourth pool still fits its 3x3 window exactly.
    assert parameter_problems({**base_params, "training": recipe_training}, ["training"]) == [
        "Parameter 'training.model.conv_layers[4].pool' must be false here: the feature map is "
        "1x1 at this point, smaller than the 3x3 pooling window (fewer pools, or smaller "
        "strides or pool_size, keep the image at least 1x1); got True."
    ]


def test_the_pooling_plan_follows_strided_layers_without_pooling(
    recipe_training: dict, base_params: dict
) -> None:
    """A strided convolution keeps ceil(size / strides) ('same' padding): 32 -> 11, then
    pools 11 -> 5 -> 2, too small for a 3x3 window."""
    recipe_training["model"]["conv_layers"] = [
        {"filters": 8, "kernel_size": 3, "strides": 3, "pool": False, "batch_norm": True},
        *[{"filters": 8, "kernel_size": 3, "strides": 1, "pool": True, "batch_norm": True}] * 3,
    ]
    assert parameter_problems({**base_params, "training": recipe_training}, ["training"]) == [
        "Parameter 'training.model.conv_layers[3].pool' must be false here: the feature map is "
        "2x2 at this point, smaller than the 3x3 pooling window (fewer pools, or smaller "
        "strides or pool_size, keep the image at least 1x1); got True."
    ]


@pytest.mark.parametrize("optimizer", ["adamw", "sgd"])
def test_weight_decay_is_taken_by_the_optimizers_that_decouple_it(
    recipe_training: dict, base_params: dict, optimizer: str
) -> None:
    recipe_training["optimizer"].update(name=optimizer, weight_decay=0.0005)
    assert parameter_problems({**base_params, "training": recipe_training}, ["training"]) == []


def test_momentum_and_nesterov_belong_to_the_optimizers_that_take_them(
    recipe_training: dict, base_params: dict
) -> None:
    recipe_training["optimizer"].update(name="adam", momentum=0.9, nesterov=True)
    assert parameter_problems({**base_params, "training": recipe_training}, ["training"]) == [
        "Parameter 'training.optimizer.momentum' must be 0 unless training.optimizer.name "
        "is sgd or rmsprop; got 0.9.",
        "Parameter 'training.optimizer.nesterov' must be false unless "
        "training.optimizer.name is sgd with a momentum above 0; got True.",
    ]
    recipe_training["optimizer"].update(name="sgd")
    assert parameter_problems({**base_params, "training": recipe_training}, ["training"]) == []
    recipe_training["optimizer"].update(momentum=0.0)
    assert len(parameter_problems({**base_params, "training": recipe_training}, ["training"])) == 1


def test_tricks_off_by_default_and_in_range(base_params: dict) -> None:
    training = base_params["training"]
    assert training["augmentation"]["cutout"] == 0
    assert training["optimizer"]["ema"]["enabled"] is False
    assert base_params["evaluate"]["test_time_augmentation"] == {
        "horizontal_flip": False,
        "shift": 0,
    }
    params = copy.deepcopy(base_params)
    params["training"]["augmentation"]["cutout"] = 33
    params["training"]["optimizer"]["ema"]["momentum"] = 1.0
    params["evaluate"]["test_time_augmentation"]["shift"] = -1
    assert parameter_problems(params, ["training", "evaluate"]) == [
        "Parameter 'evaluate.test_time_augmentation.shift' must be greater than or equal to 0; "
        "got -1.",
        "Parameter 'training.augmentation.cutout' must be less than or equal to 32; got 33.",
        "Parameter 'training.optimizer.ema.momentum' must be less than 1; got 1.0.",
    ]


def test_sections_a_run_does_not_read_never_block_it(base_params: dict) -> None:
    params = {**base_params, "training": "broken", "evaluate": None}
    assert parameter_problems(params, ["seed", "data_processing"]) == []
    assert parameter_problems(params, ["evaluate"]) == [
        "Parameter 'evaluate' must be a mapping with the keys ['batch_size', "
        "'calibration', 'test_time_augmentation']; got None."
    ]
    missing = {k: v for k, v in base_params.items() if k != "seed"}
    assert parameter_problems(missing, ["seed"]) == ["Parameter 'seed' is missing."]


def test_validate_parameters_raises_one_line_per_problem(base_params: dict) -> None:
    with pytest.raises(ParameterError) as error:
        validate_parameters({**base_params, "seed": -1, "run_label": ""}, SECTIONS)
    assert str(error.value).splitlines() == [
        "Parameter 'run_label' must be a string of at least 1 character(s); got ''.",
        "Parameter 'seed' must be greater than or equal to 0; got -1.",
    ]


@pytest.mark.parametrize(
    ("section", "path", "value", "line"),
    [
        (
            "predict",
            ("resize", "fit"),
            "squash",
            "Parameter 'predict.resize.fit' must be 'crop', 'pad' or 'stretch'; got 'squash'.",
        ),
        (
            "predict",
            ("resize", "background", 1),
            256,
            "Parameter 'predict.resize.background[1]' must be less than or equal to 255; got 256.",
        ),
        (
            "predict",
            ("contact_sheet", "columns"),
            0,
            "Parameter 'predict.contact_sheet.columns' must be greater than or equal to 1; got 0.",
        ),
        (
            "features",
            ("probe", "C", 0),
            0.0,
            "Parameter 'features.probe.C[0]' must be greater than 0; got 0.0.",
        ),
        (
            "features",
            ("projection", "max_points"),
            "all",
            "Parameter 'features.projection.max_points' must be a valid integer; got 'all'.",
        ),
    ],
)
def test_predict_and_features_values_are_named_by_their_full_key(
    base_params: dict, section: str, path: tuple, value: object, line: str
) -> None:
    params = copy.deepcopy(base_params)
    target = params[section]
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    assert parameter_problems(params, [section]) == [line]


def test_one_device_fits_any_batch_on_any_devices(recipe_training: dict) -> None:
    recipe_training["batch_size"] = 33
    assert placement_problems(recipe_training, 8, 1, "tensorflow") == []


def test_a_data_parallel_batch_must_split_over_the_devices(recipe_training: dict) -> None:
    recipe_training.update(distribution="data_parallel", batch_size=64)
    assert placement_problems(recipe_training, 8, 1, "jax") == []
    assert placement_problems(recipe_training, 3, 1, "tensorflow") == [
        "Parameter 'training.batch_size' must be a multiple of the 3 devices that data_parallel "
        "splits every batch over (say 63 or 66); got 64."
    ]
    recipe_training["batch_size"] = 2
    assert placement_problems(recipe_training, 3, 1, "jax")[0].endswith("(say 3); got 2.")


def test_several_processes_train_one_model_together(recipe_training: dict) -> None:
    recipe_training["resume"]["enabled"] = True
    assert placement_problems(recipe_training, 2, 2, "jax") == [
        "Parameter 'training.distribution' must be data_parallel when 2 processes train one "
        "model together; got 'one_device'.",
        "Parameter 'training.resume.enabled' must be false when 2 processes train together "
        "(each would write the same resume point); got True.",
    ]


def test_one_process_may_resume(recipe_training: dict) -> None:
    recipe_training["resume"]["enabled"] = True
    assert placement_problems(recipe_training, 1, 1, "tensorflow") == []


def test_data_parallel_needs_an_engine(recipe_training: dict) -> None:
    recipe_training["distribution"] = "data_parallel"
    assert placement_problems(recipe_training, 1, 1, "torch") == [
        "Parameter 'training.distribution' must be one_device on the torch backend "
        "(data_parallel runs on jax and tensorflow); got 'data_parallel'."
    ]


def test_a_list_or_mapping_of_the_other_kind_on_the_command_line_is_named() -> None:
    """What Kedro cannot merge into the configuration: ``--params evaluate=[256]`` and a
    mapping where a list goes; dotted keys reach into sections, scalars pass."""
    assert override_problems(
        {
            "evaluate": [256],
            "training.model.dense_units": {"a": 1},
            "training": {"model": {"conv_layers": {"filters": 4}}, "epochs": 3},
            "features.probe.C": [0.5],
            "seed": 3,
            "unknown": [1],
        }
    ) == [
        "Parameter 'evaluate' must be a mapping with the keys ['batch_size', "
        "'calibration', 'test_time_augmentation']; got [256].",
        "Parameter 'training.model.dense_units' must be a valid list; got {'a': 1}.",
        "Parameter 'training.model.conv_layers' must be a valid list; got {'filters': 4}.",
    ]
    assert override_problems({"training": {"optimizer": {"learning_rate": 0.1}}}) == []


def test_a_mapping_for_a_top_level_list_on_the_command_line_is_named() -> None:
    assert override_problems({"class_names": {"a": "cat"}}) == [
        "Parameter 'class_names' must be a valid list; got {'a': 'cat'}."
    ]


def test_dotted_keys_the_schema_does_not_know_are_left_to_the_schema_check() -> None:
    """Below a scalar or past a list, a key names nothing: the parameter check that follows
    the merge reports it, not this one."""
    assert (
        override_problems(
            {"seed.offset": [1], "training.model.conv_layers.filters": [8], "nothing.x": {}}
        )
        == []
    )


def _space_problems(base_params: dict, space: dict, **tune: object) -> list[str]:
    params = {**base_params, "tune": {**base_params["tune"], **tune, "search_space": space}}
    return parameter_problems(params, ["tune", "training"])


def test_every_bad_dimension_of_a_search_space_is_one_line(base_params: dict) -> None:
    space = {
        "model.dropout": {"low": 0.2, "high": 1.5},
        "optimizer.learning_rate": {"low": -1.0, "high": 0.1, "log": True},
        "batch_size": {"low": 8.5, "high": 64},
        "label_smoothing": {"low": 0.2, "high": 0.1},
        "optimizer.name": {"choices": ["adam", "nadam"]},
        "precision": {"low": 1, "high": 2},
        "epochs": {"low": 1, "high": 3},
        "dropout": {"choices": [0.1]},
        "augmentation.enabled": {"low": 0, "high": 1, "choices": [True]},
    }
    problems = _space_problems(base_params, space)
    assert problems[:6] == [
        "Parameter 'tune.search_space.model.dropout.high' must be less than 1; got 1.5.",
        "Parameter 'tune.search_space.optimizer.learning_rate.low' must be above 0 with log: "
        "true; got -1.0.",
        "Parameter 'tune.search_space.batch_size.low' must be a valid integer; got 8.5.",
        "Parameter 'tune.search_space.label_smoothing.high' must be above low (0.2); got 0.1.",
        "Parameter 'tune.search_space.optimizer.name.choices[1]' must be 'adam', 'adamw', "
        "'sgd' or 'rmsprop'; got 'nadam'.",
        "Parameter 'tune.search_space.precision' must use choices: training.precision is not "
        "a number; got a range.",
    ]
    assert problems[6] == (
        "Parameter 'tune.search_space.epochs' cannot be searched: tune.epochs sets every "
        "trial's length."
    )
    assert problems[7].startswith(
        "Parameter 'tune.search_space.dropout' must name one training parameter (a number, a "
        "flag or a name), such as optimizer.learning_rate; known: ['augmentation.cutout',"
    )
    assert problems[8].startswith(
        "Parameter 'tune.search_space.augmentation.enabled' must have either low and high, or "
        "choices; got"
    )
    assert len(problems) == len(space)


def test_a_search_space_that_combines_into_a_refused_training_is_named(
    base_params: dict,
) -> None:
    space = {
        "optimizer.name": {"choices": ["adam", "adamw"]},
        "optimizer.weight_decay": {"low": 1.0e-5, "high": 1.0e-2, "log": True},
    }
    assert _space_problems(base_params, space) == [
        "Parameter 'tune.search_space' lets a trial combine optimizer.name='adam', "
        "optimizer.weight_decay=1e-05, which training refuses: Parameter "
        "'training.optimizer.weight_decay' must be null unless training.optimizer.name is "
        "adamw or sgd; got 1e-05."
    ]
    # The optimizers that take weight decay: every combination is a valid training.
    space["optimizer.name"] = {"choices": ["adamw", "sgd"]}
    assert _space_problems(base_params, space) == []


def test_a_warmup_as_long_as_a_trial_is_refused(base_params: dict) -> None:
    space = {"lr_schedule.warmup_epochs": {"low": 0.0, "high": 3.0}}
    assert _space_problems(base_params, space, epochs=3) == [
        "Parameter 'tune.search_space' lets a trial combine lr_schedule.warmup_epochs=3.0, "
        "which training refuses: Parameter 'training.lr_schedule.warmup_epochs' must be "
        "below training.epochs (3); got 3.0."
    ]
    assert _space_problems(base_params, space, epochs=4) == []


@pytest.mark.parametrize(
    ("storage", "line"),
    [
        (
            "postgresql://optuna:secret@db.example.org/optuna",
            "Parameter 'tune.storage' must be a URL without a password (PostgreSQL reads "
            "PGPASSWORD or ~/.pgpass); got 'postgresql://optuna:secret@db.example.org/optuna'.",
        ),
        (
            "mysql://optuna@db/optuna",
            "Parameter 'tune.storage' must be a sqlite:/// or postgresql:// URL; got "
            "'mysql://optuna@db/optuna'.",
        ),
        (
            "data/optuna.db",
            "Parameter 'tune.storage' must be a sqlite:/// or postgresql:// URL; got "
            "'data/optuna.db'.",
        ),
    ],
)
def test_a_storage_is_a_database_url_without_a_password(
    base_params: dict, storage: str, line: str
) -> None:
    params = {**base_params, "tune": {**base_params["tune"], "storage": storage}}
    assert parameter_problems(params, ["tune"]) == [line]


def test_fine_tuning_cannot_resume(base_params: dict) -> None:
    params = copy.deepcopy(base_params)
    params["training"]["fine_tune"]["from"] = "data/06_models/alexnet.keras"
    params["training"]["resume"]["enabled"] = True
    assert parameter_problems(params, ["training"]) == [
        "Parameter 'training.resume.enabled' must be false when fine-tuning "
        "(training.fine_tune.from is set); got True."
    ]


@pytest.mark.parametrize(("side", "problems"), [(64, 0), (16, 0), (12, 1)])
def test_the_input_size_must_leave_room_for_every_pooling(
    base_params: dict, side: int, problems: int
) -> None:
    params = copy.deepcopy(base_params)
    params["training"]["model"]["input_size"] = side
    found = parameter_problems(params, ["training"])
    assert len(found) == problems
    assert all(line.startswith("Parameter 'training.model.conv_layers[4].pool'") for line in found)


def test_a_larger_input_is_refused_where_the_run_packages_the_model(base_params: dict) -> None:
    params = copy.deepcopy(base_params)
    params["training"]["model"]["input_size"] = 64
    assert parameter_problems(params, ["training", "evaluate"]) == []
    assert parameter_problems(params, ["training", "predict", "serve"]) == [
        "Parameter 'training.model.input_size' must be 32 in a run that packages, serves or "
        "exports the model (the predict path prepares 32x32 pictures); got 64. Train a larger "
        "input with --pipelines data_processing,training,evaluate."
    ]
