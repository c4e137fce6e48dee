"""How many generated or scripted cases each robustness suite ran, and what came of them, for the
end-of-run summary."""

from __future__ import annotations

from collections import Counter

#: suite name -> cases run in this session; conftest prints it after the tests.
CASES: Counter[str] = Counter()
#: outcome -> count (e.g. concurrent turns admitted and refused), printed after the cases.
OUTCOMES: Counter[str] = Counter()


def ran(suite: str, count: int = 1) -> None:
    CASES[suite] += count


def saw(outcome: str, count: int = 1) -> None:
    OUTCOMES[outcome] += count
