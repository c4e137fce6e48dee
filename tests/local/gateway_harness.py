"""Start ``python -m local`` as a subprocess and talk to it the way a client app would.

The client side uses only independent libraries — ``websockets`` for the Event API, boto3 for
Cognito, botocore's signer for IAM — never the server's own classes.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
import uuid
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import websockets
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

REPO_ROOT = Path(__file__).resolve().parents[2]
STOP_LIMIT_SECONDS = 5.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Gateway:
    """A running local gateway process and what it wrote to its outputs file."""

    process: subprocess.Popen[bytes]
    outputs: dict[str, Any]
    outputs_path: Path
    log_path: Path
    port: int
    ready_seconds: float
    iam_credentials_path: Path | None = None
    tokens: dict[str, dict[str, str]] = field(default_factory=dict)

    @property
    def host(self) -> str:
        return self.outputs["eventsHttpEndpoint"].split("/")[2]

    @property
    def ca_file(self) -> Path:
        return REPO_ROOT / self.outputs["caCertFile"]

    def ssl_context(self) -> ssl.SSLContext:
        """A client context that trusts the gateway's local CA, as a client app would."""
        return ssl.create_default_context(cafile=self.ca_file)

    def iam_credentials(self) -> tuple[str, str]:
        """The functions' per-start key pair, written by the gateway for this test run."""
        assert self.iam_credentials_path is not None
        document = json.loads(self.iam_credentials_path.read_text())
        return document["accessKeyId"], document["secretAccessKey"]

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM) -> float:
        """Signal the process and wait; returns how long it took to exit."""
        began = time.monotonic()
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=STOP_LIMIT_SECONDS * 3)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return time.monotonic() - began

    def password_of(self, tier: str) -> tuple[str, str]:
        user = next(u for u in self.outputs["demoUsers"] if u["tier"] == tier)
        return user["username"], user["password"]

    def sign_in(self, tier: str) -> dict[str, str]:
        """Tokens of the tier's demo user (USER_PASSWORD_AUTH with plain boto3), cached."""
        if tier not in self.tokens:
            username, password = self.password_of(tier)
            self.tokens[tier] = sign_in(self.outputs, username, password)
        return self.tokens[tier]


def start_gateway(
    tmp_path: Path, *args: str, port: int | None = None, timeout: float = 60.0
) -> Gateway:
    """Run ``python -m local`` on a free port and wait until it has written its outputs."""
    port = port or free_port()
    outputs_path = tmp_path / f"outputs-{port}.json"
    log_path = tmp_path / f"gateway-{port}.log"
    credentials_path = tmp_path / f"iam-{port}.json"
    outputs_path.unlink(missing_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["PYTHONUNBUFFERED"] = "1"
    began = time.monotonic()
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "local",
                "--port",
                str(port),
                "--outputs",
                str(outputs_path),
                "--iam-credentials-file",
                str(credentials_path),
                *args,
            ],
            cwd=REPO_ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    while not outputs_path.exists():
        if process.poll() is not None:
            raise RuntimeError(f"the gateway exited early:\n{log_path.read_text()}")
        if time.monotonic() - began > timeout:
            process.kill()
            raise TimeoutError(f"the gateway was not ready in {timeout}s:\n{log_path.read_text()}")
        time.sleep(0.05)
    ready = time.monotonic() - began
    outputs = json.loads(outputs_path.read_text())
    return Gateway(process, outputs, outputs_path, log_path, port, ready, credentials_path)


def sign_in(outputs: dict[str, Any], username: str, password: str) -> dict[str, str]:
    cognito = boto3.client(
        "cognito-idp",
        endpoint_url=outputs["awsEndpointUrl"],
        region_name=outputs["region"],
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    result = cognito.initiate_auth(
        ClientId=outputs["userPoolClientId"],
        AuthFlow="USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": username, "PASSWORD": password},
    )["AuthenticationResult"]
    claims = json.loads(_b64url(result["IdToken"].split(".")[1]))
    return {"id": result["IdToken"], "access": result["AccessToken"], "sub": claims["sub"]}


def _b64url(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def header_protocol(headers: dict[str, str]) -> str:
    encoded = base64.urlsafe_b64encode(json.dumps(headers).encode()).decode().rstrip("=")
    return f"header-{encoded}"


def signed_publish(
    gateway: Gateway,
    body: bytes,
    *,
    access_key: str,
    secret_key: str,
) -> tuple[str, dict[str, str]]:
    """URL and SigV4 headers (service ``appsync``) for an HTTP publish of ``body``."""
    url = gateway.outputs["eventsHttpEndpoint"]
    request = AWSRequest(
        method="POST", url=url, data=body, headers={"content-type": "application/json"}
    )
    SigV4Auth(Credentials(access_key, secret_key), "appsync", gateway.outputs["region"]).add_auth(
        request
    )
    return url, dict(request.headers.items())


class EventsClient:
    """A minimal AppSync Events WebSocket client on the ``websockets`` library."""

    def __init__(self, ws: websockets.ClientConnection, auth: dict[str, str]) -> None:
        self.ws = ws
        self.auth = auth

    async def send(self, message: dict[str, Any] | str) -> None:
        await self.ws.send(message if isinstance(message, str) else json.dumps(message))

    async def recv(self, timeout: float = 10.0) -> dict[str, Any]:
        return json.loads(await asyncio.wait_for(self.ws.recv(), timeout))

    async def recv_type(self, *types: str, timeout: float = 10.0) -> dict[str, Any]:
        """The next message of one of ``types``, skipping keep-alives."""
        deadline = time.monotonic() + timeout
        while True:
            message = await self.recv(max(0.01, deadline - time.monotonic()))
            if message.get("type") in types:
                return message
            if message.get("type") != "ka":
                raise AssertionError(f"expected one of {types}, got {message}")

    async def subscribe(self, channel: str, sub_id: str | None = None) -> dict[str, Any]:
        sub_id = sub_id or str(uuid.uuid4())
        await self.send(
            {"type": "subscribe", "id": sub_id, "channel": channel, "authorization": self.auth}
        )
        return await self.recv_type("subscribe_success", "subscribe_error")

    async def publish(self, channel: str, events: list[Any]) -> dict[str, Any]:
        await self.send(
            {
                "type": "publish",
                "id": str(uuid.uuid4()),
                "channel": channel,
                "events": events,
                "authorization": self.auth,
            }
        )
        return await self.recv_type("publish_success", "publish_error")

    async def turn(self, timeout: float = 60.0) -> list[dict[str, Any]]:
        """Outbound events of one turn, up to and including its ``done`` or ``error``."""
        events = []
        while True:
            message = await self.recv_type("data", timeout=timeout)
            event = json.loads(message["event"])
            events.append(event)
            if event.get("type") in ("done", "error"):
                return events


@asynccontextmanager
async def connect(gateway: Gateway, token: str, *, init: bool = True):
    """An initialised connection authorised with a Cognito token."""
    auth = {"host": gateway.host, "Authorization": token}
    async with websockets.connect(
        gateway.outputs["eventsRealtimeEndpoint"],
        subprotocols=["aws-appsync-event-ws", header_protocol(auth)],
        open_timeout=10,
        ssl=gateway.ssl_context(),
    ) as ws:
        client = EventsClient(ws, auth)
        if init:
            await client.send({"type": "connection_init"})
            ack = await client.recv()
            assert ack["type"] == "connection_ack", ack
        yield client


def chat_event(text: str, *, conversation: str = "c-test", model: str | None = None) -> str:
    payload: dict[str, Any] = {
        "conversationId": conversation,
        "turnId": f"t-{uuid.uuid4().hex[:12]}",
        "messages": [{"role": "user", "content": [{"text": text}]}],
    }
    if model:
        payload["modelId"] = model
    return json.dumps(payload)


def run_admin(gateway: Gateway, *args: str) -> subprocess.CompletedProcess[str]:
    """The operator CLI on the gateway's outputs file, as ``make admin ARGS=...`` runs it on
    ``make dev``'s (``--local``)."""
    return subprocess.run(
        [sys.executable, "-m", "tools.admin", "--outputs", str(gateway.outputs_path), *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=60,
        check=False,
    )
