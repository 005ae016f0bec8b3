"""Project commands: Kedro's own ``run`` and ``registry describe`` behind the project's one
error boundary, and ``serve`` (MLflow's scoring server on a trained model; ``server.py``).

Every mistake a user can fix ends a command with one line per problem and exit status 1,
never a traceback: a name that does not exist (a pipeline, node, dataset, tag, namespace,
runner or environment) is checked before the session starts, and the line lists what does
exist; an error raised during the run that a user can fix (a parameter outside its schema,
an input no run has saved, bad data, a diverged training) ends it with ``Run stopped:
<line>``. Anything else is a bug, and keeps its traceback.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import click
import kedro.runner
import yaml
from kedro.config import MissingConfigException
from kedro.framework.cli.project import run as kedro_run
from kedro.framework.cli.registry import registry as kedro_registry
from kedro.framework.cli.utils import KedroCliError
from kedro.framework.project import pipelines, settings
from kedro.io import DatasetError
from kedro.pipeline import Pipeline
from kedro.utils import find_kedro_project, load_obj
from omegaconf.errors import InterpolationResolutionError

from alexnet_cifar10.distribution import ClusterError
from alexnet_cifar10.pipeline_registry import UnknownPipelineError, check_pipeline_names
from alexnet_cifar10.pipelines.training.nodes import TrainingDivergedError
from alexnet_cifar10.validation import ParameterError, override_problems

logger = logging.getLogger(__name__)

# Raised during a run; their message says all a user needs.
USER_ERRORS = (ParameterError, TrainingDivergedError, DatasetError, ClusterError)


def _listed(what: str, wrong: list[str], known: set[str]) -> str | None:
    if wrong := [name for name in dict.fromkeys(wrong) if name not in known]:
        names = ", ".join(map(repr, wrong))
        return f"No {what} named {names}; the {what}s are: {', '.join(sorted(known)) or '(none)'}."
    return None


def _name_problems(options: dict[str, Any], pipeline: Pipeline) -> list[str | None]:
    """The node, dataset, tag and namespace names of the options that ``pipeline`` lacks."""
    nodes = pipeline.nodes
    datasets = {name for name in pipeline.datasets() if not name.startswith("params:")}
    return [
        _listed("node", [*options["node_names"], *options["from_nodes"], *options["to_nodes"]],
                {node.name for node in nodes}),
        _listed("dataset", [*options["from_inputs"], *options["to_outputs"]], datasets),
        _listed("tag", list(options["tags"]), set().union(*(node.tags for node in nodes))),
        _listed("namespace", list(options["namespaces"] or []),
                {node.namespace for node in nodes if node.namespace}),
    ]  # fmt: skip


def _environment_problem(env: str | None, conf_source: str | None) -> str | None:
    """A line if ``--env`` names no folder of the configuration (Kedro's own error for a
    configuration archive is shortened by the run's boundary)."""
    project = find_kedro_project(Path.cwd()) or Path.cwd()
    conf = Path(conf_source or project / settings.CONF_SOURCE)
    if not env or not conf.is_dir() or (conf / env).is_dir():
        return None
    known = ", ".join(sorted(path.name for path in conf.iterdir() if path.is_dir()))
    return f"No environment named {env!r} in '{conf}'; the environments are: {known}."


def _runner_problem(runner: str | None) -> str | None:
    try:
        load_obj(runner or "SequentialRunner", "kedro.runner")
    except (AttributeError, ImportError, ValueError):
        known = ", ".join(sorted(set(kedro.runner.__all__) - {"AbstractRunner", "Task"}))
        return (
            f"No runner named {runner!r}; the runners are: {known}, or the dotted path of a "
            "runner class of your own."
        )
    return None


def _option_problems(options: dict[str, Any]) -> list[str]:
    """What is wrong with the names the options give, before any session starts."""
    requested = [options["pipeline"]] if options["pipeline"] else list(options["pipelines"])
    try:
        check_pipeline_names(requested)
    except UnknownPipelineError as error:
        return [str(error)]
    if environment := _environment_problem(options["env"], options["conf_source"]):
        return [environment]
    selected = sum((pipelines[name] for name in requested or ["__default__"]), Pipeline([]))
    problems = [*_name_problems(options, selected), _runner_problem(options["runner"])]
    return [line for line in problems if line]


def _run(**options: Any) -> Any:
    if problems := _option_problems(options):
        raise click.ClickException("\n".join(problems))
    try:
        return kedro_run.callback(**options)
    except USER_ERRORS as error:
        for line in str(error).strip().splitlines():
            logger.error("Run stopped: %s", line)
        raise SystemExit(1) from error
    except MissingConfigException as error:
        raise click.ClickException(str(error).replace("\n", " ")) from error
    except yaml.YAMLError as error:
        # Malformed YAML, a Python tag, an alias bomb (OmegaConf caps what aliases expand to).
        line = " ".join(str(error).split())
        raise click.ClickException(f"Configuration refused: {line}") from error
    except InterpolationResolutionError as error:
        # A resolver's refusal (`${image_classes:...}` on a folder without classes): its
        # message, without OmegaConf's lines on where in the configuration it was.
        line = str(error).splitlines()[0].split(" raised while resolving interpolation: ")[-1]
        raise click.ClickException(f"Configuration refused: {line}") from error
    except TypeError as error:
        # Kedro cannot merge a --params list where the configuration has a mapping.
        if not (problems := override_problems(options["params"] or {})):
            raise
        raise click.ClickException("\n".join(problems)) from error


class _RunCommand(click.Command):
    """Kedro's ``run``, whose own option errors (``--load-versions model``, with no version)
    end in one line like the other mistakes: Kedro's error shows ``NoneType: None`` when it
    is raised while Click parses the options."""

    def make_context(self, *args: Any, **kwargs: Any) -> click.Context:
        try:
            return super().make_context(*args, **kwargs)
        except KedroCliError as error:
            raise click.ClickException(error.message) from error


def _describe(name: str, **kwargs: Any) -> Any:
    try:
        check_pipeline_names([name])
    except UnknownPipelineError as error:
        raise click.ClickException(str(error)) from error
    return kedro_describe.callback(name=name, **kwargs)


@click.command(name="serve")
@click.option(
    "--model-version",
    default=None,
    help="Registered version of alexnet_cifar10 [the one holding promote.alias: @champion].",
)
@click.option("--port", default=5001, show_default=True, type=click.IntRange(1, 65535))
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--env", "-e", default=None, help="Kedro environment whose mlflow.yml to read.")
def serve(model_version: str | None, port: int, host: str, env: str | None) -> None:
    """Answer POST /invocations with the served model of a training run (MLflow's server)."""
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    from alexnet_cifar10.server import ServeError
    from alexnet_cifar10.server import serve as start

    project = bootstrap_project(find_kedro_project(Path.cwd()) or Path.cwd()).project_path
    with KedroSession.create(project_path=project, env=env) as session:
        context = session.load_context()
        mlflow_conf, alias = getattr(context, "mlflow", None), context.params["promote"]["alias"]
    uri = mlflow_conf.server.mlflow_tracking_uri if mlflow_conf else None
    try:
        if uri is None:
            raise ServeError("MLflow tracking is off (mlflow.yml): no model registry to serve.")
        if uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).exists():
            raise ServeError(f"No tracking store at {uri}: train a model first (kedro run).")
        start(uri, model_version, alias, host, port)
    except ServeError as error:
        raise click.ClickException(str(error)) from error


kedro_describe = kedro_registry.commands["describe"]
run = _RunCommand(name="run", params=kedro_run.params, callback=_run, help=kedro_run.help)
# Kedro's registry commands, with `describe` answering a mistyped name in one line.
registry = click.Group(
    name="registry",
    commands={
        "list": kedro_registry.commands["list"],
        "describe": click.Command(
            name="describe",
            params=kedro_describe.params,
            callback=_describe,
            help=kedro_describe.help,
        ),
    },
    help=kedro_registry.help,
)
cli = click.Group(
    name="alexnet-cifar10", commands={"run": run, "registry": registry, "serve": serve}
)
