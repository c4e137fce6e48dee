"""The audit trail: one structured JSON line per change an operator makes.

Deployed, the lines go to the stack's admin audit log group (``adminAuditLogGroupName``, see
:mod:`components.admin_audit`), one log stream per CLI run, with ``PutLogEvents``
(https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_PutLogEvents.html);
who made the change is the caller's AWS identity (``GetCallerIdentity``:
https://docs.aws.amazon.com/STS/latest/APIReference/API_GetCallerIdentity.html). Locally they
are appended to a JSON-lines file in ``.local/`` and ``who`` is ``local``.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from gateway.windows import iso_utc


@dataclass(frozen=True)
class AuditLine:
    """One change: who, what, when, to whom, and the state before and after."""

    who: str
    action: str
    target: Mapping[str, str]
    before: Mapping[str, Any]
    after: Mapping[str, Any]
    at: float = field(default_factory=time.time)

    def to_json(self) -> str:
        return json.dumps(
            {
                "audit": "ai-gateway-admin",
                "ts": iso_utc(self.at),
                "who": self.who,
                "action": self.action,
                "target": dict(self.target),
                "before": dict(self.before),
                "after": dict(self.after),
            },
            sort_keys=True,
            separators=(",", ":"),
        )


class AuditLog(Protocol):
    who: str

    def write(self, line: AuditLine) -> None: ...


class FileAuditLog:
    """JSON lines appended to a local file (``make dev``)."""

    who = "local"

    def __init__(self, path: Path) -> None:
        self._path = path

    def write(self, line: AuditLine) -> None:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        with self._path.open("a", encoding="utf-8") as out:
            out.write(line.to_json() + "\n")


class CloudWatchAuditLog:
    """Lines sent to the stack's audit log group, in a stream of this run's own."""

    def __init__(self, logs: Any, sts: Any, log_group: str) -> None:
        self._logs = logs
        self._group = log_group
        self.who = str(sts.get_caller_identity()["Arn"])
        self._stream: str | None = None

    def write(self, line: AuditLine) -> None:
        if self._stream is None:
            stream = f"{time.strftime('%Y/%m/%d', time.gmtime(line.at))}/{uuid.uuid4().hex}"
            self._logs.create_log_stream(logGroupName=self._group, logStreamName=stream)
            self._stream = stream
        self._logs.put_log_events(
            logGroupName=self._group,
            logStreamName=self._stream,
            logEvents=[{"timestamp": int(line.at * 1000), "message": line.to_json()}],
        )
