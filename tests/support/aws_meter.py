"""A counting HTTP endpoint in front of moto: every AWS request by service and operation.

Point ``AWS_ENDPOINT_URL`` at it and every boto3 client in the process (however it was built)
sends through it. It names each request's operation from the wire (``X-Amz-Target``, the
RPC-v2 path, the query ``Action``, the REST path), and for DynamoDB works out the capacity units
the request would consume in AWS from the sizes of the items it touched, so the cost model uses
measured reads and writes rather than guesses.
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import json
import math
import re
import threading
import time
import urllib.parse
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

_SCOPE = re.compile(r"Credential=[^/]+/\d{8}/[^/]+/([^/]+)/aws4_request")
_RPCV2 = re.compile(r"/service/[^/]+/operation/([A-Za-z]+)")
_HOP_HEADERS = {"connection", "keep-alive", "transfer-encoding", "content-length", "host"}

_DDB_READS = {"GetItem", "BatchGetItem", "Query", "Scan", "TransactGetItems"}
_DDB_WRITES = {"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"}


@dataclass
class AwsUsage:
    """What one run sent to AWS."""

    requests: Counter[str] = field(default_factory=Counter)  # "dynamodb:UpdateItem" -> n
    read_units: float = 0.0
    write_units: float = 0.0
    firehose_records: list[int] = field(default_factory=list)  # bytes per record
    errors: Counter[str] = field(default_factory=Counter)
    #: (operation, received, answered) per request, on this process's perf_counter clock: the
    #: time a caller spent waiting on moto, which stands in for AWS but is not as fast.
    calls: list[tuple[str, float, float]] = field(default_factory=list)

    def waited(self, until: float | None = None) -> float:
        """Seconds callers spent waiting on requests answered by ``until`` (all when None)."""
        return sum(end - start for _, start, end in self.calls if until is None or end <= until)

    def requests_before(self, moment: float) -> int:
        return sum(1 for _, _, end in self.calls if end <= moment)

    def total(self, *, exclude: tuple[str, ...] = ()) -> int:
        return sum(n for op, n in self.requests.items() if op.split(":")[0] not in exclude)

    def copy(self) -> AwsUsage:
        return AwsUsage(
            Counter(self.requests),
            self.read_units,
            self.write_units,
            list(self.firehose_records),
            Counter(self.errors),
            list(self.calls),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "requests": dict(self.requests),
            "read_units": self.read_units,
            "write_units": self.write_units,
            "firehose_records": self.firehose_records,
            "errors": dict(self.errors),
            "calls": self.calls,
        }

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> AwsUsage:
        return cls(
            Counter(raw["requests"]),
            raw["read_units"],
            raw["write_units"],
            list(raw["firehose_records"]),
            Counter(raw["errors"]),
            [tuple(c) for c in raw["calls"]],
        )

    def minus(self, earlier: AwsUsage) -> AwsUsage:
        return AwsUsage(
            self.requests - earlier.requests,
            self.read_units - earlier.read_units,
            self.write_units - earlier.write_units,
            self.firehose_records[len(earlier.firehose_records) :],
            self.errors - earlier.errors,
            self.calls[len(earlier.calls) :],
        )


def item_size(item: dict[str, Any]) -> int:
    """Bytes DynamoDB bills for an item in wire (typed) form: names plus values."""
    return sum(len(name.encode()) + _value_size(value) for name, value in item.items())


def _value_size(value: dict[str, Any]) -> int:
    ((kind, raw),) = value.items()
    if kind == "S":
        return len(raw.encode())
    if kind == "N":
        digits = len(Decimal(raw).normalize().as_tuple().digits)
        return 1 + math.ceil(digits / 2)
    if kind == "B":
        return len(base64.b64decode(raw)) if isinstance(raw, str) else len(raw)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "SS":
        return sum(len(s.encode()) for s in raw)
    if kind == "NS":
        return sum(_value_size({"N": n}) for n in raw)
    if kind == "BS":
        return sum(_value_size({"B": b}) for b in raw)
    if kind == "L":
        return 3 + sum(1 + _value_size(v) for v in raw)
    if kind == "M":
        return 3 + sum(1 + len(k.encode()) + _value_size(v) for k, v in raw.items())
    return 0


@dataclass
class Fault:
    """Answer matching requests with an AWS error instead of forwarding them to moto."""

    service: str
    operation: str | None = None  # every operation of the service when None
    status: int = 400
    code: str = "ThrottlingException"
    count: int | None = None  # for good when None
    after: int = 0  # let this many matching requests through first
    matched: int = 0
    seen: int = 0

    def matches(self, service: str, operation: str) -> bool:
        if service != self.service or self.operation not in (None, operation):
            return False
        self.seen += 1
        if self.seen <= self.after:
            return False
        return self.count is None or self.matched < self.count

    def answer(self) -> tuple[int, list[tuple[str, str]], bytes]:
        body = json.dumps({"__type": self.code, "message": f"injected {self.code}"}).encode()
        headers = [("Content-Type", "application/x-amz-json-1.0"), ("x-amzn-ErrorType", self.code)]
        return self.status, headers, body


class AwsMeter:
    """A threaded loopback proxy to an upstream moto server that meters what passes through."""

    def __init__(self, upstream: str) -> None:
        parsed = urllib.parse.urlparse(upstream)
        self._upstream = (parsed.hostname or "127.0.0.1", parsed.port or 80)
        self.usage = AwsUsage()
        self.faults: list[Fault] = []
        self._lock = threading.Lock()
        # DynamoDB applies each conditional write atomically; moto's threaded server does not
        # (two writes conditioned on the same version can both pass). Passing DynamoDB requests
        # to moto one at a time restores the atomicity the gateway's metering relies on.
        self._dynamodb_one_at_a_time = threading.Lock()
        self._key_schemas: dict[str, list[str]] = {}
        self._server: ThreadingHTTPServer | None = None
        #: Seconds each AWS request is held before its answer: an in-region round trip, which
        #: loopback does not have. The time a request spends in moto comes on top.
        self.latency = 0.0

    # -- control -----------------------------------------------------------------------------
    def start(self) -> str:
        meter = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body leave as they are written

            def log_message(self, *args: Any) -> None:
                pass

            def _relay(self) -> None:
                received = time.perf_counter()
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                if self.path.startswith("/_meter/"):
                    self._control(body)
                    return
                status, headers, answer, operation = meter._forward(
                    self.command, self.path, self.headers, body
                )
                if meter.latency:
                    time.sleep(meter.latency)
                self.send_response(status)
                for name, value in headers:
                    if name.lower() not in _HOP_HEADERS:
                        self.send_header(name, value)
                self.send_header("content-length", str(len(answer)))
                self.end_headers()
                with meter._lock:
                    meter.usage.calls.append((operation, received, time.perf_counter()))
                self.wfile.write(answer)

            def _control(self, body: bytes) -> None:
                answer = json.dumps(meter.control(self.path, _json(body))).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _relay  # noqa: N815

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def snapshot(self) -> AwsUsage:
        with self._lock:
            return self.usage.copy()

    def inject(self, **fault: Any) -> None:
        with self._lock:
            self.faults.append(Fault(**fault))

    def clear_faults(self) -> None:
        with self._lock:
            self.faults.clear()

    def _fault_for(self, service: str, operation: str) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if fault.matches(service, operation):
                    fault.matched += 1
                    return fault
        return None

    def control(self, path: str, order: dict[str, Any]) -> dict[str, Any]:
        """Remote control: ``/_meter/usage``, ``/_meter/fault`` (inject), ``/_meter/clear``,
        ``/_meter/latency`` (``{"ms": n}`` added to every AWS request)."""
        action = path.rsplit("/", 1)[-1]
        if action == "usage":
            return self.snapshot().to_json()
        if action == "fault":
            self.inject(**order)
        elif action == "clear":
            self.clear_faults()
        elif action == "latency":
            self.latency = float(order.get("ms", 0)) / 1000
        return {"ok": True}

    # -- metering ----------------------------------------------------------------------------
    def _forward(
        self, method: str, path: str, headers: Any, body: bytes
    ) -> tuple[int, list[tuple[str, str]], bytes, str]:
        service, operation = _identify(method, path, headers, body)
        fault = self._fault_for(service, operation)
        if fault is not None:
            status, out_headers, answer = fault.answer()
            with self._lock:
                self.usage.requests[f"{service}:{operation}"] += 1
                self.usage.errors[f"{service}:{operation}:{status}"] += 1
            return status, out_headers, answer, f"{service}:{operation}"
        request = _json(body) if service in ("dynamodb", "firehose") else None
        before = self._sizes_before(operation, request) if service == "dynamodb" else None
        with self._dynamodb_one_at_a_time if service == "dynamodb" else contextlib.nullcontext():
            status, out_headers, answer = self._upstream_call(
                method, path, dict(headers.items()), body
            )
        with self._lock:
            self.usage.requests[f"{service}:{operation}"] += 1
            if status >= 400:
                self.usage.errors[f"{service}:{operation}:{status}"] += 1
        if service == "dynamodb" and request is not None:
            self._meter_dynamodb(operation, request, _json(answer), before)
        elif service == "firehose" and request is not None and status < 400:
            sizes = _firehose_record_sizes(operation, request)
            with self._lock:
                self.usage.firehose_records.extend(sizes)
        return status, out_headers, answer, f"{service}:{operation}"

    def _upstream_call(
        self, method: str, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        conn = http.client.HTTPConnection(*self._upstream, timeout=60)
        try:
            conn.request(method, path, body=body, headers=headers)
            response = conn.getresponse()
            return response.status, response.getheaders(), response.read()
        finally:
            conn.close()

    def _dynamodb(self, operation: str, request: dict[str, Any]) -> dict[str, Any]:
        """A DynamoDB call of the meter's own, straight to moto (not counted)."""
        target = {"X-Amz-Target": f"DynamoDB_20120810.{operation}"}
        headers = {
            "Content-Type": "application/x-amz-json-1.0",
            "Authorization": (
                "AWS4-HMAC-SHA256 Credential=meter/20260101/us-east-1/dynamodb/aws4_request, "
                "SignedHeaders=host, Signature=0"
            ),
            **target,
        }
        status, _, answer = self._upstream_call("POST", "/", headers, json.dumps(request).encode())
        return _json(answer) if status < 400 else {}

    def _key_of(self, table: str, item: dict[str, Any]) -> dict[str, Any]:
        if table not in self._key_schemas:
            described = self._dynamodb("DescribeTable", {"TableName": table})
            schema = described.get("Table", {}).get("KeySchema", [])
            self._key_schemas[table] = [k["AttributeName"] for k in schema]
        return {k: item[k] for k in self._key_schemas[table] if k in item}

    def _stored_size(self, table: str, key: dict[str, Any]) -> int:
        found = self._dynamodb(
            "GetItem", {"TableName": table, "Key": key, "ConsistentRead": True}
        ).get("Item")
        return item_size(found) if found else 0

    def _write_targets(self, operation: str, request: dict[str, Any]) -> list[tuple[str, dict]]:
        if operation in ("UpdateItem", "DeleteItem"):
            return [(request["TableName"], request["Key"])]
        if operation == "PutItem":
            return [(request["TableName"], self._key_of(request["TableName"], request["Item"]))]
        targets: list[tuple[str, dict]] = []
        if operation == "BatchWriteItem":
            for table, writes in request.get("RequestItems", {}).items():
                for w in writes:
                    if "PutRequest" in w:
                        targets.append((table, self._key_of(table, w["PutRequest"]["Item"])))
                    else:
                        targets.append((table, w["DeleteRequest"]["Key"]))
        if operation == "TransactWriteItems":
            for entry in request.get("TransactItems", []):
                ((kind, spec),) = entry.items()
                table = spec["TableName"]
                key = spec["Key"] if "Key" in spec else self._key_of(table, spec.get("Item", {}))
                targets.append((table, key))
        return targets

    def _sizes_before(self, operation: str, request: dict[str, Any] | None) -> list[int] | None:
        if request is None or operation not in _DDB_WRITES:
            return None
        return [self._stored_size(t, k) for t, k in self._write_targets(operation, request)]

    def _meter_dynamodb(
        self,
        operation: str,
        request: dict[str, Any],
        answer: dict[str, Any],
        before: list[int] | None,
    ) -> None:
        units_read = units_written = 0.0
        if operation in _DDB_WRITES and before is not None:
            targets = self._write_targets(operation, request)
            factor = 2 if operation == "TransactWriteItems" else 1
            for (table, key), size_before in zip(targets, before, strict=True):
                size_after = self._stored_size(table, key)
                units_written += factor * max(1, math.ceil(max(size_before, size_after) / 1024))
        elif operation in _DDB_READS:
            units_read = _read_units(operation, request, answer)
        with self._lock:
            self.usage.read_units += units_read
            self.usage.write_units += units_written


def _read_units(operation: str, request: dict[str, Any], answer: dict[str, Any]) -> float:
    def units(size: int, consistent: bool) -> float:
        whole = max(1, math.ceil(size / 4096))
        return float(whole) if consistent else whole / 2

    if operation == "GetItem":
        found = answer.get("Item")
        return units(item_size(found) if found else 0, bool(request.get("ConsistentRead")))
    if operation == "BatchGetItem":
        total = 0.0
        for table, spec in request.get("RequestItems", {}).items():
            consistent = bool(spec.get("ConsistentRead"))
            found = answer.get("Responses", {}).get(table, [])
            total += sum(units(item_size(i), consistent) for i in found)
            total += units(0, consistent) * max(0, len(spec.get("Keys", [])) - len(found))
        return total
    if operation == "TransactGetItems":
        found = [r.get("Item") or {} for r in answer.get("Responses", [])]
        return sum(2 * units(item_size(i), True) for i in found)
    # Query and Scan are charged on the summed size of what they read, before any filter.
    items = answer.get("Items", [])
    size = sum(item_size(i) for i in items)
    scanned, returned = answer.get("ScannedCount", len(items)), max(1, len(items))
    if scanned > len(items) and items:
        size = size * scanned // returned
    consistent = bool(request.get("ConsistentRead"))
    return units(size, consistent)


def _firehose_record_sizes(operation: str, request: dict[str, Any]) -> list[int]:
    records = [request["Record"]] if operation == "PutRecord" else request.get("Records", [])
    return [len(base64.b64decode(r.get("Data", ""))) for r in records]


def _identify(method: str, path: str, headers: Any, body: bytes) -> tuple[str, str]:
    scope = _SCOPE.search(str(headers.get("authorization", "")))
    service = scope.group(1) if scope else "unknown"
    target = headers.get("x-amz-target")
    if target:
        return service, target.rsplit(".", 1)[-1]
    rpc = _RPCV2.search(path)
    if rpc:
        return service, rpc.group(1)
    if body and b"Action=" in body:
        action = urllib.parse.parse_qs(body.decode(errors="replace")).get("Action", ["?"])[0]
        return service, action
    if service == "bedrock":
        return "bedrock-runtime", path.rstrip("/").rsplit("/", 1)[-1]
    return service, f"{method} {path.split('?')[0]}"


def _json(body: bytes) -> dict[str, Any]:
    try:
        parsed = json.loads(body) if body else {}
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}
