"""The SnapStart hooks' registration (``gateway.snapstart``) and what the handler module's
import leaves for init or the first turn."""

from __future__ import annotations

import json
import subprocess
import sys
import types
from pathlib import Path

import pytest
from gateway import snapstart

REPO = Path(__file__).resolve().parents[2]

#: Modules a turn needs but the handler's import must not load: boto3 and botocore's client
#: machinery (service models), the X-Ray SDK, the HTTP pool, the adapters and Powertools'
#: parameters (and the OpenAI door, which the chat function never builds). SnapStart loads them
#: at init (its before-snapshot hook); without it, the first turn does.
DEFERRED = (
    "boto3",
    "botocore.session",
    "botocore.client",
    "aws_xray_sdk",
    "urllib3",
    "aws_lambda_powertools.utilities.parameters",
    "gateway.providers",
    "gateway.publisher",
    "gateway.usage_store",
    "gateway.openai.door",
)
#: Most modules the handler's import may load (439 when this was set, Python 3.11).
MODULE_BUDGET = 480


@pytest.fixture
def hooks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(snapstart, "_before", [])
    monkeypatch.setattr(snapstart, "_after", [])


def test_hooks_run_in_lambdas_order(hooks: None) -> None:
    ran: list[str] = []
    snapstart.register(lambda: ran.append("before 1"), lambda: ran.append("after 1"))
    snapstart.register(lambda: ran.append("before 2"), lambda: ran.append("after 2"))
    snapstart.run_before_snapshot()
    snapstart.run_after_restore()
    # Before the snapshot in the reverse order of registration, after a restore in its order.
    assert ran == ["before 2", "before 1", "after 1", "after 2"]


def test_hooks_go_to_the_runtime_library_where_lambda_provides_it(
    hooks: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    registered: list[tuple[str, object]] = []
    library = types.ModuleType("snapshot_restore_py")
    library.register_before_snapshot = lambda f: registered.append(("before", f))  # type: ignore[attr-defined]
    library.register_after_restore = lambda f: registered.append(("after", f))  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "snapshot_restore_py", library)

    def before() -> None: ...
    def after() -> None: ...

    assert snapstart.register(before, after) is True
    assert registered == [("before", before), ("after", after)]


def test_without_the_runtime_library_the_hooks_are_kept_here(
    hooks: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "snapshot_restore_py", None)  # import fails
    assert snapstart.register(lambda: None, lambda: None) is False
    assert len(snapstart._after) == 1


def _imported_by_handler() -> list[str]:
    probe = "import chat, json, sys; print(json.dumps(sorted(sys.modules)))"
    env = {
        "PATH": "/usr/bin:/bin",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "POWERTOOLS_SERVICE_NAME": "chat",
        "EVENTS_HTTP_ENDPOINT": "https://example.appsync-api.us-east-1.amazonaws.com/event",
        "PYTHONPATH": str(REPO / "functions"),
    }
    done = subprocess.run(
        [sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout)


def test_the_handler_import_defers_what_only_a_turn_needs() -> None:
    modules = _imported_by_handler()
    assert [m for m in DEFERRED if m in modules] == []
    assert len(modules) <= MODULE_BUDGET
