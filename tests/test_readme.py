"""The README's measured figures are those of the committed result files they name."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

from kedro_cli import REPO

RESULT = re.compile(r"\(benchmarks/results/([\w.-]+\.json)\)")
DECIMAL = re.compile(r"(?<![\w.])\d+\.\d+(?![\w.])")


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


def test_every_decimal_in_a_row_that_names_a_result_file_is_in_that_file() -> None:
    rows = [line for line in (REPO / "README.md").read_text().splitlines() if RESULT.search(line)]
    assert rows, "the README names its result files"
    for row in rows:
        found = list(
            _numbers(json.loads((REPO / "benchmarks/results" / RESULT.search(row)[1]).read_text()))
        )
        for text in DECIMAL.findall(RESULT.sub("", row)):
            places = len(text.partition(".")[2])
            assert any(f"{value:.{places}f}" == text for value in found), (text, row[:80])
