"""Publishing to the AppSync Events HTTP endpoint: SigV4-signed, over a pooled connection.

The connection pool lives at module level so a warm function reuses one kept-alive connection
across every publish of every invocation (the local runtime's concurrent threads may open a few
more). Counters are exposed for benchmarks through :func:`publish_stats`.
"""

from __future__ import annotations

import json
import os
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import urllib3

from gateway.environment import ORIGIN_HEADER, ORIGIN_SECRET_VARIABLE
from gateway.relay import PublishError

#: Events signed for this service name (AppSync Events, IAM authorisation).
SIGNING_SERVICE = "appsync"
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})

_pools: dict[str, urllib3.HTTPConnectionPool] = {}
_pools_lock = threading.Lock()


class _Counters:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.values = {
            "publish_requests": 0,
            "events_published": 0,
            "events_failed": 0,
            "retries": 0,
        }

    def add(self, **amounts: int) -> None:
        with self._lock:
            for name, amount in amounts.items():
                self.values[name] += amount


_counters = _Counters()


@dataclass(frozen=True)
class PublishStats:
    """Process-wide publish counters since import (read a before/after difference)."""

    publish_requests: int
    events_published: int
    events_failed: int
    retries: int
    connections_opened: int


def publish_stats() -> PublishStats:
    with _pools_lock:
        connections = sum(pool.num_connections for pool in _pools.values())
    return PublishStats(**_counters.values, connections_opened=connections)


def connection_pool(endpoint: str, *, maxsize: int = 32) -> urllib3.HTTPConnectionPool:
    """The process's pool for ``endpoint`` (``https://…/event`` or ``http://127.0.0.1:…/event``).

    A Lambda instance runs one turn at a time and so keeps a single connection; ``maxsize`` lets
    the local runtime's concurrent turns keep theirs too."""
    with _pools_lock:
        pool = _pools.get(endpoint)
        if pool is None:
            pool = urllib3.connection_from_url(
                endpoint,
                maxsize=maxsize,
                block=False,
                retries=False,
                timeout=urllib3.Timeout(connect=2.0, read=5.0),
            )
            _pools[endpoint] = pool
        return pool


def close_connections() -> None:
    """Close and forget every pool (the next publish opens a new one): after a SnapStart
    restore the snapshot's sockets lead nowhere."""
    with _pools_lock:
        pools = list(_pools.values())
        _pools.clear()
    for pool in pools:
        pool.close()


def region_of(endpoint: str, default: str = "") -> str:
    """The region in an AppSync endpoint host (``….appsync-api.<region>.amazonaws.com``)."""
    host = urlsplit(endpoint).hostname or ""
    parts = host.split(".")
    if "appsync-api" in parts:
        index = parts.index("appsync-api")
        if index + 1 < len(parts):
            return parts[index + 1]
    return default


class EventsHttpPublisher:
    """``POST <endpoint>`` with ``{"channel", "events"}``, signed with the function's
    credentials; retries throttling, 5xx and connection failures with jittered backoff."""

    def __init__(
        self,
        endpoint: str,
        *,
        region: str,
        credentials: Callable[[], Any],
        max_attempts: int = 4,
        base_delay: float = 0.05,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not endpoint.startswith(("https://", "http://")):
            raise ValueError(f"EVENTS_HTTP_ENDPOINT must be an http(s) URL, got {endpoint!r}")
        self._endpoint = endpoint
        self._path = urlsplit(endpoint).path or "/event"
        self._region = region_of(endpoint, region)
        self._credentials = credentials
        self._max_attempts = max_attempts
        self._base_delay = base_delay
        self._sleep = sleep

    def publish(self, channel: str, events: list[str]) -> int:
        """Publish ``events`` in order; returns how many retries it took (0 normally). A
        :class:`PublishError` lists the events that did get through (``delivered``)."""
        pending = list(range(len(events)))  # indexes of events not yet accepted
        failure = ""
        for attempt in range(1, self._max_attempts + 1):
            sent = [events[i] for i in pending]
            body = json.dumps({"channel": channel, "events": sent}).encode("utf-8")
            _counters.add(publish_requests=1)
            try:
                response = connection_pool(self._endpoint).urlopen(
                    "POST", self._path, body=body, headers=self._headers(body)
                )
            except urllib3.exceptions.HTTPError as err:
                failure = type(err).__name__
            else:
                if response.status < 300:
                    refused = _failed_indexes(response.data, len(sent))
                    _counters.add(events_published=len(sent) - len(refused))
                    pending = [pending[i] for i in refused]
                    if not pending:
                        return attempt - 1
                    failure = f"{len(pending)} event(s) refused"
                elif response.status in RETRY_STATUSES:
                    failure = f"HTTP {response.status}"
                else:
                    _counters.add(events_failed=len(pending))
                    raise PublishError(
                        f"HTTP {response.status} from the events endpoint",
                        _delivered(len(events), pending),
                    )
            if attempt < self._max_attempts:
                _counters.add(retries=1)
                self._sleep(random.uniform(0, self._base_delay * 2 ** (attempt - 1)))
        _counters.add(events_failed=len(pending))
        raise PublishError(
            f"publish failed after {self._max_attempts} attempts: {failure}",
            _delivered(len(events), pending),
        )

    def _headers(self, body: bytes) -> dict[str, str]:
        headers = {"content-type": "application/json"}
        if os.environ.get(ORIGIN_SECRET_VARIABLE):
            headers[ORIGIN_HEADER] = os.environ[ORIGIN_SECRET_VARIABLE]
        credentials = self._credentials()
        if credentials is None:
            if self._endpoint.startswith("https://"):
                raise PublishError("no AWS credentials to sign the publish with")
            return headers  # the local runtime's loopback endpoint needs no signature
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest

        request = AWSRequest(method="POST", url=self._endpoint, data=body, headers=headers)
        SigV4Auth(credentials, SIGNING_SERVICE, self._region).add_auth(request)
        return dict(request.headers.items())


def _failed_indexes(data: bytes, sent: int) -> list[int]:
    """The indexes a 2xx response lists under ``failed``, to be sent again."""
    try:
        failed = json.loads(data or b"{}").get("failed") or []
        return sorted({int(f["index"]) for f in failed if 0 <= int(f["index"]) < sent})
    except (ValueError, TypeError, KeyError, AttributeError):
        return []


def _delivered(count: int, pending: list[int]) -> tuple[int, ...]:
    refused = set(pending)
    return tuple(i for i in range(count) if i not in refused)
