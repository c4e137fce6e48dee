"""Lambda SnapStart's runtime hooks for a function that runs turns: do a first turn's one-time
work at init, so the snapshot holds it, and drop after a restore what a snapshot must not carry.

Under SnapStart, Lambda runs the function's init when a version is published, snapshots it and
resumes new execution environments from that snapshot
(https://docs.aws.amazon.com/lambda/latest/dg/snapstart.html). Hooks registered with the runtime's
``snapshot_restore_py`` library run before the snapshot and after each restore
(https://docs.aws.amazon.com/lambda/latest/dg/snapstart-runtime-hooks-python.html); the library
"is included in Python managed runtimes" and on PyPI as ``snapshot-restore-py``
(https://pypi.org/project/snapshot-restore-py/). Where it is absent — Python below 3.12, the local
runtime, tests — the hooks are kept here instead, so :func:`run_before_snapshot` and
:func:`run_after_restore` can emulate a snapshot and a restore (the benchmark does).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

Hook = Callable[[], None]

_before: list[Hook] = []
_after: list[Hook] = []
_lock = threading.Lock()


def _runtime_library() -> Any:
    try:
        import snapshot_restore_py  # type: ignore[import-not-found]
    except ImportError:
        return None
    return snapshot_restore_py


def register(before_snapshot: Hook, after_restore: Hook) -> bool:
    """Register the two hooks with Lambda's runtime where it has them (True), and keep them for
    :func:`run_before_snapshot` / :func:`run_after_restore` either way."""
    with _lock:
        _before.append(before_snapshot)
        _after.append(after_restore)
    library = _runtime_library()
    if library is None:
        return False
    library.register_before_snapshot(before_snapshot)
    library.register_after_restore(after_restore)
    return True


def run_before_snapshot() -> None:
    """Run the kept before-snapshot hooks as Lambda does: in the reverse order of registration
    (https://docs.aws.amazon.com/lambda/latest/dg/snapstart-runtime-hooks-python.html)."""
    with _lock:
        hooks = list(reversed(_before))
    for hook in hooks:
        hook()


def run_after_restore() -> None:
    """Run the kept after-restore hooks as Lambda does: in the order of registration."""
    with _lock:
        hooks = list(_after)
    for hook in hooks:
        hook()
