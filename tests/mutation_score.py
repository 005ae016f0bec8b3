"""The mutation score of each mutated module, from mutmut's results (``make mutation``).

A module's score is its killed mutants over its mutants, leaving out the equivalent ones
that tests/MUTATION.md lists by name (a mutant that times out is killed, as mutmut
counts it). Every surviving mutant that MUTATION.md does not list is printed after the
table: a test should kill it, or MUTATION.md say why no test can.

``--sample F`` scores a seeded random share F of every module's mutants instead of all
of them (``make mutation-sample`` takes a tenth);
``--names`` prints that sample's mutant names for ``mutmut run``.
"""

from __future__ import annotations

import argparse
import random
import re
import subprocess
import sys
from collections import Counter, defaultdict
from pathlib import Path

MUTATION_MD = Path(__file__).with_name("MUTATION.md")
# mutmut names a mutant <module>.x_<function>__mutmut_<n> or <module>.xǁ<class>ǁ<method>...
NAME = re.compile(r"^(?P<module>[\w.]+?)\.xǁ?[^.]+__mutmut_\d+$")
KILLED = {"killed", "timeout"}
SAMPLE_SEED = 0


def results(lines: str) -> dict[str, str]:
    """Mutant name -> status, from ``mutmut results --all true``."""
    found = (line.strip().rsplit(": ", 1) for line in lines.splitlines() if ": " in line)
    return {name: status for name, status in found if NAME.match(name)}


def sample(names: list[str], fraction: float, seed: int = SAMPLE_SEED) -> list[str]:
    """A seeded random ``fraction`` of every module's mutants (rounded), module by module."""
    by_module: dict[str, list[str]] = defaultdict(list)
    for name in names:
        by_module[NAME.match(name)["module"]].append(name)  # type: ignore[index]
    rng = random.Random(seed)
    chosen = []
    for module in sorted(by_module):
        members = sorted(by_module[module])
        chosen += sorted(rng.sample(members, round(len(members) * fraction)))
    return chosen


def listed_equivalent(text: str) -> set[str]:
    """The mutant names MUTATION.md lists as equivalent (in backticks)."""
    return set(re.findall(r"`([\w.ǁ]+__mutmut_\d+)`", text))


def score_table(statuses: dict[str, str], equivalent: set[str]) -> tuple[list[str], list[str]]:
    """The table's lines, and the surviving mutants that no test kills nor MUTATION.md lists."""
    counts: dict[str, Counter] = defaultdict(Counter)
    unexplained = []
    for name, status in sorted(statuses.items()):
        module = NAME.match(name)["module"]  # type: ignore[index]
        kind = "equivalent" if name in equivalent else "killed" if status in KILLED else status
        counts[module][kind] += 1
        if kind not in ("killed", "equivalent"):
            unexplained.append(f"{name}: {status}")
    lines = [
        "| module | mutants | killed | equivalent | not killed | score |",
        "|---|---|---|---|---|---|",
    ]
    total: Counter = Counter()
    for module, count in sorted(counts.items()):
        total += count
        lines.append(_row(module, count))
    lines.append(_row("all", total))
    return lines, unexplained


def _row(module: str, count: Counter) -> str:
    mutants = sum(count.values())
    judged = mutants - count["equivalent"]
    missed = judged - count["killed"]
    score = f"{count['killed'] / judged:.1%}" if judged else "-"
    return (
        f"| {module} | {mutants} | {count['killed']} | {count['equivalent']} | {missed} | {score} |"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sample", type=float, help="score this share of each module's mutants")
    parser.add_argument("--names", action="store_true", help="print the sample's mutant names")
    args = parser.parse_args()
    listing = subprocess.run(
        ["mutmut", "results", "--all", "true"], capture_output=True, text=True, check=True
    ).stdout
    statuses = results(listing)
    if args.sample:
        statuses = {name: statuses[name] for name in sample(list(statuses), args.sample)}
    if args.names:
        sys.stdout.write("\n".join(statuses) + "\n")
        return 0
    unchecked = [name for name, status in statuses.items() if status == "not checked"]
    if unchecked:
        sys.stderr.write(f"{len(unchecked)} mutants not checked yet: run `mutmut run` first.\n")
        return 1
    lines, unexplained = score_table(statuses, listed_equivalent(MUTATION_MD.read_text()))
    sys.stdout.write("\n".join(lines) + "\n")
    if unexplained:
        sys.stdout.write(
            f"\n{len(unexplained)} mutants neither killed nor listed in {MUTATION_MD.name}:\n"
            + "\n".join(unexplained)
            + "\n"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
