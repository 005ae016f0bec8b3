"""Modules imported on first use: the deep-learning backend costs seconds to start, and
commands that never train (kedro registry, catalog and viz, the data_processing
pipeline) should not pay for it."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any


class LazyModule:
    """Stands for a module and imports it on the first attribute access.

    Unlike ``importlib.util.LazyLoader`` (and ``lazy_loader``, built on it), it never
    puts a placeholder into ``sys.modules``: code that scans every loaded module there
    (``inspect.getmodule``, which dynaconf runs while Kedro reads the project settings)
    would otherwise import them all by accident.
    """

    def __init__(self, name: str, before: Callable[[], Any] | None = None) -> None:
        """``before`` runs ahead of every attribute access (it should be cached): it can
        prepare the import, say, by starting a backend quietly."""
        self._name = name
        self._before = before

    def __getattr__(self, attribute: str) -> Any:
        if self._before is not None:
            self._before()
        return getattr(importlib.import_module(self._name), attribute)

    def __repr__(self) -> str:
        return f"<lazily imported module {self._name!r}>"
