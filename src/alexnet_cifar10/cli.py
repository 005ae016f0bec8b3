"""Project commands: Kedro's own ``run``, with one-line answers to two mistakes that
Kedro reports with a long traceback before any hook can run: a mistyped pipeline name
(``kedro run --pipelines evalute``) and a ``--params`` list where the configuration has
a mapping (``--params evaluate=[256]``), which Kedro cannot merge."""

from __future__ import annotations

from typing import Any

import click
from kedro.framework.cli.project import run as kedro_run
from kedro.framework.project import pipelines

from alexnet_cifar10.validation import override_problems


def _run(**options: Any) -> Any:
    requested = [options["pipeline"]] if options["pipeline"] else options["pipelines"]
    unknown = [name for name in requested if name not in pipelines]
    if unknown:
        raise click.ClickException(
            f"No pipeline named {', '.join(map(repr, unknown))}; the pipelines are: "
            f"{', '.join(sorted(pipelines))}."
        )
    try:
        return kedro_run.callback(**options)
    except TypeError as error:
        problems = override_problems(options["params"] or {})
        if not problems:
            raise
        raise click.ClickException("\n".join(problems)) from error


run = click.Command(name="run", params=kedro_run.params, callback=_run, help=kedro_run.help)
cli = click.Group(name="alexnet-cifar10", commands={"run": run})
