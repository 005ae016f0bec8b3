"""Every measured figure in the README and the docs is that of a committed result file it names."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kedro_cli import REPO

PAGES = [
    REPO / "README.md",
    REPO / "benchmarks" / "README.md",
    *sorted((REPO / "docs").glob("*.md")),
]
RESULT = re.compile(r"results/([\w.-]+\.json)")
DECIMAL = re.compile(r"(?<![\w.])\d+\.\d+(?![\w.])")
# What a measurement reads like (limits and settings are whole numbers: "32 MiB", "60 s").
MEASURED = re.compile(
    r"(?<![\w.])\d+\.\d+ ?(s|ms|GB|MB|MiB)(?![\w/])|\d+ min \d+ s|\d ?(images|requests|req)/s"
    r"|accuracy \**0\.\d+"
)
# A table whose header names a unit: its rows' decimals are measurements.
UNIT_HEADER = re.compile(r"\b(s|ms|GB|MiB|seconds|accuracy|images/s)\b")


def _numbers(value: Any) -> Iterator[float]:
    if isinstance(value, bool):
        return
    if isinstance(value, int | float):
        yield float(value)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _numbers(item)
    elif isinstance(value, list):
        for item in value:
            yield from _numbers(item)


def _units(page: Path) -> Iterator[tuple[str, bool, list[str]]]:
    """A page's paragraphs and table rows (code blocks left out), each with whether it is
    measured (it reads like a measurement, or it is a row of a table with units) and the
    result files it names; a table's rows also those that its caption paragraph names."""
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)
    caption: list[str] = []
    for block in re.split(r"\n\s*\n", text):
        lines = block.strip().splitlines()
        if lines and all(line.startswith("|") for line in lines):
            with_units = bool(UNIT_HEADER.search(lines[0]))
            for row in lines[2:]:
                measured = bool(MEASURED.search(_bare(row)) or (with_units and _figures(row)))
                yield row, measured, _named(row) or caption
        elif lines:
            unit = " ".join(lines)
            caption = _named(unit)
            yield unit, bool(MEASURED.search(_bare(unit))), caption


def _named(unit: str) -> list[str]:
    """The result files ``unit`` names outside code (in code: a command's arguments)."""
    return RESULT.findall(re.sub(r"`[^`]*`", "", unit))


def _bare(unit: str) -> str:
    """``unit`` without code, links and version numbers."""
    unit = re.sub(
        r"\b(TensorFlow|Keras|JAX|Python|Kedro|MLflow|ONNX Runtime) \d+(\.\d+)*", "", unit
    )
    return re.sub(r"`[^`]*`|\([^)]*\.(json|md|py)[^)]*\)|\b\d+\.\d+\.\d+[\w.]*", "", unit)


def _figures(unit: str) -> list[str]:
    """The decimals of ``unit`` that are figures, not file names, versions or addresses."""
    return DECIMAL.findall(_bare(unit))


@pytest.mark.parametrize("page", PAGES, ids=lambda page: str(page.relative_to(REPO)))
def test_every_figure_is_that_of_the_result_file_its_paragraph_names(page: Path) -> None:
    for unit, measured, names in _units(page):
        if not names:
            assert not measured, f"a figure without a result file: {unit[:120]}"
            continue
        found = [
            value
            for name in names
            for value in _numbers(json.loads((REPO / "benchmarks/results" / name).read_text()))
        ]
        for text in _figures(unit):
            places = len(text.partition(".")[2])
            assert any(f"{value:.{places}f}" == text for value in found), (text, unit[:120])
