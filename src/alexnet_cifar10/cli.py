"""Project commands: Kedro's own ``run``, behind the project's one error boundary, and
``serve`` (MLflow's scoring server on a trained model; ``server.py``).

Every mistake a user can fix ends ``kedro run`` with one line per problem and exit
status 1, never a traceback:

- a name that does not exist (a pipeline, node, dataset, tag, namespace, runner,
  environment or configuration folder) is checked before the session starts, and the
  line lists what does exist;
- an error raised during the run that a user can fix (a parameter outside its schema, an
  input no run has saved, bad data, a diverged training, a dataset in ``--load-versions``
  that the catalog does not have) ends it with ``Run stopped: <line>``.

Anything else is a bug, and keeps its traceback.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import click
import kedro.runner
from kedro.config import MissingConfigException
from kedro.framework.cli.project import run as kedro_run
from kedro.framework.cli.registry import registry as kedro_registry
from kedro.framework.project import pipelines, settings
from kedro.io import DatasetError
from kedro.pipeline import Pipeline
from kedro.utils import find_kedro_project, load_obj

from alexnet_cifar10.distribution import ClusterError
from alexnet_cifar10.pipeline_registry import UnknownPipelineError, check_pipeline_names
from alexnet_cifar10.pipelines.training.nodes import TrainingDivergedError
from alexnet_cifar10.validation import ParameterError, override_problems

logger = logging.getLogger(__name__)

kedro_describe = kedro_registry.commands["describe"]

# Raised during a run; their message says all a user needs.
USER_ERRORS = (ParameterError, TrainingDivergedError, DatasetError, ClusterError)


def _listed(what: str, wrong: list[str], known: set[str]) -> str:
    names = ", ".join(map(repr, wrong))
    return f"No {what} named {names}; the {what}s are: {', '.join(sorted(known)) or '(none)'}."


def _filter_problems(options: dict[str, Any], pipeline: Pipeline) -> list[str]:
    """The node, dataset, tag and namespace names of the options that the pipelines run
    do not have."""
    nodes = {node.name for node in pipeline.nodes}
    known = {
        "node": nodes,
        "dataset": {name for name in pipeline.datasets() if not name.startswith("params:")},
        "tag": set().union(*(node.tags for node in pipeline.nodes)),
        "namespace": {node.namespace for node in pipeline.nodes if node.namespace},
    }
    given = {
        "node": [*options["node_names"], *options["from_nodes"], *options["to_nodes"]],
        "dataset": [*options["from_inputs"], *options["to_outputs"]],
        "tag": list(options["tags"]),
        "namespace": list(options["namespaces"] or []),
    }
    return [
        _listed(what, wrong, known[what])
        for what, names in given.items()
        if (wrong := [name for name in dict.fromkeys(names) if name not in known[what]])
    ]


def _conf_folder(options: dict[str, Any]) -> Path:
    project = find_kedro_project(Path.cwd()) or Path.cwd()
    return Path(options["conf_source"] or project / settings.CONF_SOURCE)


def _environment_problem(options: dict[str, Any]) -> str | None:
    """A line if ``--env`` names no folder of the configuration (archives are left to
    Kedro, whose error the run boundary shortens)."""
    conf, env = _conf_folder(options), options["env"]
    if not env or not conf.is_dir() or (conf / env).is_dir():
        return None
    known = {path.name for path in conf.iterdir() if path.is_dir()}
    return (
        f"No environment named {env!r} in '{conf}'; the environments are: "
        + ", ".join(sorted(known))
        + "."
    )


def _runner_problem(runner: str | None) -> str | None:
    try:
        load_obj(runner or "SequentialRunner", "kedro.runner")
    except (AttributeError, ImportError, ValueError):
        known = sorted(set(kedro.runner.__all__) - {"AbstractRunner", "Task"})
        return (
            f"No runner named {runner!r}; the runners are: {', '.join(known)}, or the "
            "dotted path of a runner class of your own."
        )
    return None


def _versioned_datasets(options: dict[str, Any]) -> set[str]:
    """The catalog's versioned datasets in the run's environment."""
    loader = settings.CONFIG_LOADER_CLASS(
        conf_source=str(_conf_folder(options)), env=options["env"], **settings.CONFIG_LOADER_ARGS
    )
    catalog = loader["catalog"]
    return {
        name
        for name, entry in catalog.items()
        if isinstance(entry, dict) and entry.get("versioned")
    }


def _option_problems(options: dict[str, Any]) -> list[str]:
    """What is wrong with the names the options give, before any session starts."""
    requested = [options["pipeline"]] if options["pipeline"] else list(options["pipelines"])
    try:
        check_pipeline_names(requested)
    except UnknownPipelineError as error:
        return [str(error)]
    environment = _environment_problem(options)
    if environment:
        return [environment]
    selected = sum((pipelines[name] for name in requested or ["__default__"]), Pipeline([]))
    problems = _filter_problems(options, selected)
    if options["load_versions"]:
        known = _versioned_datasets(options)
        unknown = [name for name in options["load_versions"] if name not in known]
        if unknown:
            problems.append("--load-versions: " + _listed("versioned dataset", unknown, known))
    runner = _runner_problem(options["runner"])
    return problems + ([runner] if runner else [])


def _stop(error: BaseException) -> None:
    for line in str(error).strip().splitlines():
        logger.error("Run stopped: %s", line)
    raise SystemExit(1) from error


def _run(**options: Any) -> Any:
    problems = _option_problems(options)
    if problems:
        raise click.ClickException("\n".join(problems))
    try:
        return kedro_run.callback(**options)
    except USER_ERRORS as error:
        _stop(error)
    except MissingConfigException as error:
        raise click.ClickException(str(error).replace("\n", " ")) from error
    except TypeError as error:
        # Kedro cannot merge a --params list where the configuration has a mapping.
        problems = override_problems(options["params"] or {})
        if not problems:
            raise
        raise click.ClickException("\n".join(problems)) from error


class _RunCommand(click.Command):
    """Kedro's ``run``, whose malformed option values (``--conf-source`` that does not
    exist, say) end with one line and exit status 1 as the other mistakes do."""

    def make_context(self, *args: Any, **kwargs: Any) -> click.Context:
        try:
            return super().make_context(*args, **kwargs)
        except click.BadParameter as error:
            raise click.ClickException(error.format_message()) from error


def _describe(name: str, **kwargs: Any) -> Any:
    try:
        check_pipeline_names([name])
    except UnknownPipelineError as error:
        raise click.ClickException(str(error)) from error
    return kedro_describe.callback(name=name, **kwargs)


@click.command(name="serve")
@click.option(
    "--model-version", default=None, help="Registered version of alexnet_cifar10 [newest]."
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
        mlflow_conf = getattr(session.load_context(), "mlflow", None)
    uri = mlflow_conf.server.mlflow_tracking_uri if mlflow_conf else None
    try:
        if uri is None:
            raise ServeError("MLflow tracking is off (mlflow.yml): no model registry to serve.")
        if uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).exists():
            raise ServeError(f"No tracking store at {uri}: train a model first (kedro run).")
        start(uri, model_version, host, port)
    except ServeError as error:
        raise click.ClickException(str(error)) from error


run = _RunCommand(name="run", params=kedro_run.params, callback=_run, help=kedro_run.help)
# Kedro's registry commands, with `describe` answering a mistyped name in one line.
describe = click.Command(
    name="describe", params=kedro_describe.params, callback=_describe, help=kedro_describe.help
)
registry = click.Group(
    name="registry",
    commands={"list": kedro_registry.commands["list"], "describe": describe},
    help=kedro_registry.help,
)
cli = click.Group(
    name="alexnet-cifar10", commands={"run": run, "registry": registry, "serve": serve}
)
