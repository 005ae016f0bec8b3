"""Every measured figure in the README and the docs is that of a committed result file it names."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kedro_cli import REPO

PAGES = [REPO / "README.md", REPO / "benchmarks" / "README.md", *sorted((REPO / "docs").glob("*.md"))]
RESULT = re.compile(r"benchmarks/results/([\w.-]+\.json)")
DECIMAL = re.compile(r"(?<![\w.])\d+\.\d+(?![\w.])")
# What a measurement reads like: a time, a memory size or a rate, or an accuracy.
MEASURED = re.compile(
    r"(?<![\w.])\d[\d,]*(\.\d+)? ?(s|ms|min|GB|MB|MiB|images/s|requests/s|req/s)(?![\w/])"
    r"|accuracy \**0\.\d+"
)


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


def _units(page: Path) -> Iterator[str]:
    """A page's paragraphs and table rows, code blocks left out."""
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)
    for block in re.split(r"\n\s*\n", text):
        lines = block.strip().splitlines()
        if lines and all(line.startswith("|") for line in lines):
            yield from lines
        elif lines:
            yield " ".join(lines)


def _figures(unit: str) -> Iterator[str]:
    """The decimals of ``unit`` that are figures, not file names, versions or addresses."""
    text = re.sub(r"`[^`]*`|\([^)]*\.(json|md|py)[^)]*\)|\b\d+\.\d+\.\d+[\w.]*", "", unit)
    yield from DECIMAL.findall(text)


@pytest.mark.parametrize("page", PAGES, ids=lambda page: str(page.relative_to(REPO)))
def test_every_figure_is_that_of_the_result_file_its_paragraph_names(page: Path) -> None:
    for unit in _units(page):
        names = RESULT.findall(unit)
        if not names:
            assert not MEASURED.search(unit), f"a figure without a result file: {unit[:120]}"
            continue
        found = [
            value
            for name in names
            for value in _numbers(json.loads((REPO / "benchmarks/results" / name).read_text()))
        ]
        for text in _figures(unit):
            places = len(text.partition(".")[2])
            assert any(f"{value:.{places}f}" == text for value in found), (text, unit[:120])
