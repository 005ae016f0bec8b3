"""The Optuna study of the tune pipeline: its storage, sampler and pruner, the trials'
parameters, and the objective, which trains with the training pipeline's own nodes."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, nullcontext
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from filelock import FileLock
from optuna.trial import TrialState
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from alexnet_cifar10.pipelines.training.nodes import TrainingDivergedError, build_model, train_model
from alexnet_cifar10.validation import (
    ParameterError,
    number_kind,
    parameter_problems,
    search_space,
    trial_training,
)

logger = logging.getLogger(__name__)

# What a trial maximises: the validation accuracy of its last epoch.
OBJECTIVE = "val_accuracy"


class StudyError(RuntimeError):
    """The study's storage cannot be opened, or the study has no result to give."""


def _url(storage: str) -> str:
    """SQLAlchemy's URL for ``tune.storage``: psycopg (3) drives PostgreSQL, and an SQLite
    file's folder is created."""
    url = make_url(storage)
    if url.get_backend_name() == "postgresql":
        return url.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    if url.database:
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    return storage


def _sampler(params: Mapping[str, Any]) -> optuna.samplers.BaseSampler:
    if params["name"] == "random":
        return optuna.samplers.RandomSampler(seed=params["seed"])
    # constant_liar: a worker counts the others' running trials as tried.
    return optuna.samplers.TPESampler(
        seed=params["seed"], n_startup_trials=params["startup_trials"], constant_liar=True
    )


def _pruner(params: Mapping[str, Any], epochs: int) -> optuna.pruners.BasePruner:
    if params["name"] == "median":
        # Steps are epochs from 1; Optuna may prune from step n_warmup_steps on.
        return optuna.pruners.MedianPruner(
            n_startup_trials=params["startup_trials"], n_warmup_steps=params["warmup_epochs"] + 1
        )
    if params["name"] == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=epochs)
    return optuna.pruners.NopPruner()


@contextmanager
def quiet() -> Iterator[None]:
    """Without Optuna's warnings that an interface is experimental (heartbeats, plots)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        yield


def _storage(tune: Mapping[str, Any]) -> optuna.storages.RDBStorage:
    """The storage, with heartbeats; its tables created by one worker at a time."""
    url, heartbeat = _url(tune["storage"]), tune["heartbeat_seconds"]
    database = make_url(url).database
    # Workers that start together on a new SQLite file would both create its tables.
    lock = FileLock(f"{database}.lock") if url.startswith("sqlite") and database else nullcontext()
    storage = partial(
        optuna.storages.RDBStorage, url, heartbeat_interval=heartbeat, grace_period=2 * heartbeat
    )
    with quiet(), lock:
        try:
            return storage()
        except IntegrityError:  # a worker on another machine created them meanwhile
            return storage()


def open_study(tune: Mapping[str, Any]) -> optuna.Study:
    """The study ``tune.study_name`` in ``tune.storage``, created if new; its running
    trials send heartbeats, and the next trial records those without one as failed."""
    # Optuna's lines (trial finished, pruned, failed) through the run's logging.
    optuna.logging.disable_default_handler()
    optuna.logging.enable_propagation()
    try:
        return optuna.create_study(
            study_name=tune["study_name"],
            storage=_storage(tune),
            sampler=_sampler(tune["sampler"]),
            pruner=_pruner(tune["pruner"], tune["epochs"]),
            direction="maximize",
            load_if_exists=True,
        )
    except SQLAlchemyError as error:
        reason = str(getattr(error, "orig", None) or error).strip().splitlines()[0]
        raise StudyError(f"Cannot open the study's storage {tune['storage']}: {reason}") from None


def suggest(trial: optuna.Trial, tune: Mapping[str, Any]) -> dict[str, Any]:
    """The trial's value for each dimension of ``tune.search_space``."""
    values = {}
    for key, dimension in search_space(tune).items():
        if dimension["choices"] is not None:
            values[key] = trial.suggest_categorical(key, dimension["choices"])
        elif number_kind(key) is int:
            step = dimension["step"] or 1
            values[key] = trial.suggest_int(
                key, dimension["low"], dimension["high"], step=step, log=dimension["log"]
            )
        else:
            values[key] = trial.suggest_float(
                key,
                dimension["low"],
                dimension["high"],
                step=dimension["step"],
                log=dimension["log"],
            )
    return values


class Objective:
    """One trial: the searched values set on the training parameters, the network built
    and trained by the training pipeline's nodes, each epoch reported to the pruner."""

    def __init__(  # noqa: PLR0913
        self,
        train: dict[str, np.ndarray],
        validation: dict[str, np.ndarray],
        training: dict[str, Any],
        tune: dict[str, Any],
        seed: int,
        class_names: list[str],
        run_label: str,
        run_context: dict[str, Any],
    ) -> None:
        self.splits, self.training, self.tune = (train, validation), training, tune
        self.seed, self.class_names = seed, class_names
        self.run_label, self.run_context = run_label, run_context
        self.current: optuna.Trial | None = None

    def __call__(self, trial: optuna.Trial) -> float:
        import keras

        from alexnet_cifar10.pipelines.tune.callbacks import TrialPruning, nested_run

        self.current = trial
        values = suggest(trial, self.tune)
        params = trial_training(self.training, self.tune, values)
        if problems := parameter_problems({"training": params}, ["training"]):
            raise ParameterError("\n".join(problems))
        trial.set_user_attr("kedro_env", self.run_context["kedro_env"])
        pruning = TrialPruning(trial, OBJECTIVE)
        with nested_run(trial, values) as tracking:
            model = build_model(
                params["model"],
                params["augmentation"],
                params["precision"],
                self.seed,
                self.class_names,
            )
            trained = train_model(
                model,
                *self.splits,
                params,
                self.seed,
                self.class_names,
                self.run_label,
                self.run_context,
                callbacks=[pruning, *tracking],
            )
            keras.backend.clear_session()  # the next trial builds its own network
            trial.set_user_attr("fit_seconds", trained.card["run"]["fit_seconds"])
            trial.set_user_attr("epochs_run", len(trained.history))
            if pruning.pruned_at is not None:
                raise optuna.TrialPruned(f"after epoch {pruning.pruned_at}")
            return float(trained.history[OBJECTIVE].iloc[-1])


def optimize(study: optuna.Study, objective: Objective, n_trials: int) -> None:
    """Run ``n_trials`` trials of ``study`` in this process. A diverged trial fails and
    the study goes on; a stopped worker (Ctrl-C, SIGTERM) records its trial as failed."""
    try:
        study.optimize(objective, n_trials=n_trials, catch=(TrainingDivergedError, ParameterError))
    except SystemExit:
        # The project's SIGTERM handler raises SystemExit, which Optuna does not catch.
        trial = objective.current
        if trial is not None and study.trials[trial.number].state == TrialState.RUNNING:
            study.tell(trial.number, state=TrialState.FAIL)
        raise
    # Trials whose workers were killed since the last trial started anywhere.
    with quiet():
        optuna.storages.fail_stale_trials(study)


def describe(study: optuna.Study) -> str:
    """``12 trials: 7 complete, 4 pruned, 1 failed; best val_accuracy 0.4120 (trial 5)``."""
    counts: dict[str, int] = {}
    for trial in study.get_trials(deepcopy=False):
        counts[trial.state.name.lower()] = counts.get(trial.state.name.lower(), 0) + 1
    states = ", ".join(f"{n} {state}" for state, n in sorted(counts.items()))
    text = f"{len(study.trials)} trials: {states or 'none'}"
    if counts.get("complete"):
        text += f"; best {OBJECTIVE} {study.best_value:.4f} (trial {study.best_trial.number})"
    return text


def best_trial(study: optuna.Study) -> optuna.trial.FrozenTrial:
    """The completed trial of highest objective; ``StudyError`` if none has completed."""
    if not study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        raise StudyError(
            f"No trial of study '{study.study_name}' has completed ({describe(study)}), so "
            "it has no best parameters yet: run more trials (tune.n_trials)."
        )
    return study.best_trial
