"""The local runtime under load: many WebSocket sessions chatting with the local model at once.

Starts ``python -m local`` on a free port, creates one user per session in its Cognito (moto),
signs each in with ``USER_PASSWORD_AUTH``, and drives every session through the real Event API
WebSocket protocol with an independent client library (``websockets``): connect with the
``header-`` authorisation subprotocol, ``connection_init``, subscribe to the user's own outbound
channel, publish one turn, read the answer to its terminal event. It checks every turn's ``seq``
(no gap, no repeat, in order, exactly one terminal event last) and reports first-delta latency
percentiles and delivered events per second.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import websockets

REPO = Path(__file__).resolve().parent.parent
PROTOCOL = "aws-appsync-event-ws"
#: Chat invocations the local runtime runs at once (local.handlers.FunctionRuntime's default).
FUNCTION_SLOTS = 32


@dataclass
class SessionResult:
    sub: str
    published_at: float = 0.0
    first_delta_at: float | None = None
    last_event_at: float | None = None
    events: list[dict[str, Any]] = field(default_factory=list)
    error: str = ""

    @property
    def first_delta_ms(self) -> float | None:
        if self.first_delta_at is None:
            return None
        return (self.first_delta_at - self.published_at) * 1000

    def problems(self) -> list[str]:
        """Why this turn's stream is not a clean, complete, ordered one (empty when it is)."""
        found: list[str] = []
        if self.error:
            found.append(self.error)
        seqs = [e.get("seq") for e in self.events]
        if seqs != list(range(len(seqs))):
            found.append(f"seq not 0..n-1 in order: {seqs[:8]}...")
        terminal = [e for e in self.events if e.get("type") in ("done", "error")]
        if len(terminal) != 1 or (self.events and self.events[-1] is not terminal[0]):
            found.append(f"{len(terminal)} terminal events (want exactly one, last)")
        if terminal and terminal[0].get("type") != "done":
            found.append(f"turn ended in error {terminal[0].get('code')}")
        if len({e.get("turnId") for e in self.events}) > 1:
            found.append("events of more than one turn")
        return found


@dataclass
class LoadReport:
    sessions: int
    reply_tokens: int
    tokens_per_second: float
    completed: int
    clean: int
    lost_or_reordered: int
    first_delta_p50_ms: float
    first_delta_p99_ms: float
    first_wave_p50_ms: float  # the sessions the runtime's function slots took at once
    events_delivered: int
    events_per_second: float
    duration_s: float
    problems: list[str]


class LocalGatewayProcess:
    """``python -m local`` on a free port, stopped with SIGTERM."""

    def __init__(self, stack: str, tokens_per_second: float) -> None:
        self._dir = tempfile.TemporaryDirectory(prefix="bench-local-")
        self.outputs_path = Path(self._dir.name) / "outputs.json"
        self.log_path = Path(self._dir.name) / "gateway.log"
        self._args = [
            sys.executable,
            "-m",
            "local",
            "--stack",
            stack,
            "--port",
            "0",
            "--outputs",
            str(self.outputs_path),
            "--tokens-per-second",
            str(tokens_per_second),
        ]
        self._process: subprocess.Popen[bytes] | None = None
        self.outputs: dict[str, Any] = {}

    def start(self, timeout: float = 90.0) -> dict[str, Any]:
        env = {**os.environ, "POWERTOOLS_LOG_LEVEL": "WARNING", "PYTHONUNBUFFERED": "1"}
        self._log = self.log_path.open("wb")
        self._process = subprocess.Popen(
            self._args, cwd=REPO, env=env, stdout=self._log, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"the local gateway exited: {self.log_path.read_text()[-2000:]}")
            if self.outputs_path.exists():
                try:
                    self.outputs = json.loads(self.outputs_path.read_text())
                    return self.outputs
                except ValueError:
                    pass
            time.sleep(0.2)
        raise TimeoutError("the local gateway did not write its outputs in time")

    def stop(self) -> None:
        if self._process and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        if getattr(self, "_log", None):
            self._log.close()
        self._dir.cleanup()


def create_users(outputs: dict[str, Any], count: int, tier: str) -> list[tuple[str, str]]:
    """``count`` confirmed users in ``tier``'s group; returns (sub, id token) per user."""
    cognito = boto3.client(
        "cognito-idp",
        endpoint_url=outputs["awsEndpointUrl"],
        region_name=outputs["region"],
        aws_access_key_id="AKIALOADTEST00000001",
        aws_secret_access_key="load-test",
    )
    pool, client_id = outputs["userPoolId"], outputs["userPoolClientId"]
    password = "Load-test-pass1"

    def one(i: int) -> tuple[str, str]:
        username = f"load-{i:04d}-{uuid.uuid4().hex[:6]}"
        cognito.admin_create_user(
            UserPoolId=pool,
            Username=username,
            TemporaryPassword=password,
            MessageAction="SUPPRESS",
            UserAttributes=[{"Name": "email", "Value": f"{username}@example.com"}],
        )
        cognito.admin_set_user_password(
            UserPoolId=pool, Username=username, Password=password, Permanent=True
        )
        cognito.admin_add_user_to_group(UserPoolId=pool, Username=username, GroupName=tier)
        tokens = cognito.initiate_auth(
            ClientId=client_id,
            AuthFlow="USER_PASSWORD_AUTH",
            AuthParameters={"USERNAME": username, "PASSWORD": password},
        )["AuthenticationResult"]
        return _claims(tokens["IdToken"])["sub"], tokens["IdToken"]

    with ThreadPoolExecutor(max_workers=8) as pool_executor:
        return list(pool_executor.map(one, range(count)))


def _claims(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def _header_protocol(headers: dict[str, str]) -> str:
    raw = json.dumps(headers).encode()
    return "header-" + base64.urlsafe_b64encode(raw).decode().rstrip("=")


async def _session(
    outputs: dict[str, Any],
    sub: str,
    token: str,
    prompt: str,
    ready: asyncio.Barrier,
    timeout: float,
) -> SessionResult:
    result = SessionResult(sub=sub)
    url = outputs["eventsRealtimeEndpoint"]
    host = url.split("//", 1)[1].split("/", 1)[0]
    auth = {"host": host, "Authorization": token}
    inbound, outbound = outputs["inboundNamespace"], outputs["outboundNamespace"]
    try:
        async with websockets.connect(
            url,
            # the local gateway's certificate comes from its per-machine CA
            ssl=ssl.create_default_context(cafile=str(REPO / outputs["caCertFile"])),
            subprotocols=[PROTOCOL, _header_protocol(auth)],
            max_size=2**22,
            open_timeout=60,
            ping_interval=None,
        ) as ws:
            await ws.send(json.dumps({"type": "connection_init"}))
            await _expect(ws, "connection_ack", timeout)
            sub_id = str(uuid.uuid4())
            await ws.send(
                json.dumps(
                    {
                        "type": "subscribe",
                        "id": sub_id,
                        "channel": f"/{outbound}/{sub}",
                        "authorization": auth,
                    }
                )
            )
            await _expect(ws, "subscribe_success", timeout)
            await ready.wait()
            payload = {
                "conversationId": f"c-{sub[:8]}",
                "turnId": f"t-{uuid.uuid4().hex[:12]}",
                "messages": [{"role": "user", "content": [{"text": prompt}]}],
            }
            result.published_at = time.perf_counter()
            await ws.send(
                json.dumps(
                    {
                        "type": "publish",
                        "id": str(uuid.uuid4()),
                        "channel": f"/{inbound}/{sub}",
                        "events": [json.dumps(payload)],
                        "authorization": auth,
                    }
                )
            )
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                message = json.loads(await asyncio.wait_for(ws.recv(), deadline - time.monotonic()))
                if message.get("type") == "publish_error":
                    result.error = f"publish refused: {message.get('errors')}"
                    break
                if message.get("type") != "data" or message.get("id") != sub_id:
                    continue
                event = json.loads(message["event"])
                now = time.perf_counter()
                result.events.append(event)
                result.last_event_at = now
                if event.get("type") == "delta" and result.first_delta_at is None:
                    result.first_delta_at = now
                if event.get("type") in ("done", "error"):
                    break
            else:
                result.error = "no terminal event before the timeout"
    except (TimeoutError, OSError, websockets.WebSocketException) as err:
        result.error = f"{type(err).__name__}: {err}"
    return result


async def _expect(ws: Any, kind: str, timeout: float) -> dict[str, Any]:
    while True:
        message = json.loads(await asyncio.wait_for(ws.recv(), timeout))
        if message.get("type") == kind:
            return message
        if message.get("type", "").endswith("error"):
            raise RuntimeError(f"wanted {kind}, got {message}")


async def _drive(
    outputs: dict[str, Any], users: list[tuple[str, str]], prompt: str, timeout: float
) -> list[SessionResult]:
    ready = asyncio.Barrier(len(users))
    return await asyncio.gather(
        *(_session(outputs, sub, token, prompt, ready, timeout) for sub, token in users)
    )


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def run_load(
    sessions: int = 200,
    reply_tokens: int = 128,
    tokens_per_second: float = 40.0,
    stack: str = "dev",
    tier: str = "free",
    timeout: float = 240.0,
) -> LoadReport:
    gateway = LocalGatewayProcess(stack, tokens_per_second)
    try:
        outputs = gateway.start()
        users = create_users(outputs, sessions + 1, tier)
        prompt = f"Tell me about the gateway under load [tokens={reply_tokens}]"
        # One turn first, so the functions are warm (clients built, tier config cached) as
        # Lambda execution environments under steady load are.
        warm = asyncio.run(_drive(outputs, users[:1], prompt, timeout))
        if warm[0].problems():
            raise RuntimeError(f"the warm-up turn failed: {warm[0].problems()}")
        users = users[1:]
        started = time.perf_counter()
        results = asyncio.run(_drive(outputs, users, prompt, timeout))
        ended = max((r.last_event_at or 0.0) for r in results) or time.perf_counter()
    finally:
        gateway.stop()
    problems = [f"{r.sub[:8]}: {p}" for r in results for p in r.problems()]
    first = [r.first_delta_ms for r in results if r.first_delta_ms is not None]
    delivered = sum(len(r.events) for r in results)
    duration = ended - started
    clean = sum(1 for r in results if not r.problems())
    return LoadReport(
        sessions=sessions,
        reply_tokens=reply_tokens,
        tokens_per_second=tokens_per_second,
        completed=sum(1 for r in results if r.events and r.events[-1].get("type") == "done"),
        clean=clean,
        lost_or_reordered=sessions - clean,
        first_delta_p50_ms=statistics.median(first) if first else float("nan"),
        first_delta_p99_ms=percentile(first, 0.99),
        first_wave_p50_ms=statistics.median(sorted(first)[:FUNCTION_SLOTS]) if first else 0.0,
        events_delivered=delivered,
        events_per_second=delivered / duration if duration > 0 else 0.0,
        duration_s=duration,
        problems=problems[:20],
    )


if __name__ == "__main__":
    print(run_load(sessions=int(sys.argv[1]) if len(sys.argv) > 1 else 20))
