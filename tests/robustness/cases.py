"""How many generated or scripted cases each robustness suite ran, and what came of them, for the
end-of-run summary."""

from __future__ import annotations

from collections import Counter
from typing import Any

#: suite name -> cases run in this session; conftest prints it after the tests.
CASES: Counter[str] = Counter()
#: outcome -> count (e.g. concurrent turns admitted and refused), printed after the cases.
OUTCOMES: Counter[str] = Counter()


def ran(suite: str, count: int = 1) -> None:
    CASES[suite] += count


def saw(outcome: str, count: int = 1) -> None:
    OUTCOMES[outcome] += count


def appsync_event(
    identity: Any, namespace: str, operation: str, path: Any, segments: Any
) -> dict[str, Any]:
    """A Lambda event in the shape AppSync Events sends for ``operation`` (PUBLISH/SUBSCRIBE)
    on ``path``; publish events add their ``events`` list."""
    return {
        "identity": identity,
        "result": None,
        "request": {"headers": {"host": "example.appsync-api.us-east-1.amazonaws.com"}},
        "info": {
            "channel": {"path": path, "segments": segments},
            "channelNamespace": {"name": namespace},
            "operation": operation,
        },
        "error": None,
        "prev": None,
        "stash": {},
        "outErrors": [],
    }
