"""Parameter checks that name the offending key and its allowed values."""

from __future__ import annotations

from typing import Any


class ParameterError(ValueError):
    """A parameter outside its allowed values, named with its key path."""


def require_param(condition: bool, key: str, allowed: str, value: Any) -> None:
    """Raise ``ParameterError`` naming ``key`` and its allowed values unless ``condition``."""
    if not condition:
        raise ParameterError(f"Parameter '{key}' must be {allowed}; got {value!r}.")


def is_number(value: Any) -> bool:
    """True for ints and floats, False for bools and everything else."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def is_int(value: Any, minimum: int) -> bool:
    """True for an int (not a bool) of at least ``minimum``."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= minimum
