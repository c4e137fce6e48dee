"""The local gateway: moto, the Event API server, the functions and the UI, run as one.

The functions run in this process, so their environment is this process's environment: it is set
here exactly as the components set a Lambda's (:class:`FunctionEnvironment`), plus where AWS is.
By default every AWS call goes to moto with moto's test credentials. With ``model="bedrock"`` only
the services the gateway keeps state in go to moto (service-specific ``AWS_ENDPOINT_URL_*``), so
Bedrock is called for real with the user's own credentials.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import botocore.session
from aiohttp import web
from gateway.metrics import METRICS_NAMESPACE
from gateway.openai.clients import MACHINE_CLIENT_TIERS, encode_machine_client_tiers
from gateway.openai.door import OpenAiDoor

from local.auth import Authorizer, CognitoVerifier, SigV4Verifier
from local.aws import (
    LOCAL_ACCOUNT_ID,
    LocalCredentials,
    LocalResources,
    MotoServer,
    bootstrap,
    user_password,
)
from local.channels import gateway_namespaces
from local.cognito import CognitoFront
from local.events_api import EventsApi
from local.guard import AccessPolicy
from local.handlers import FunctionRuntime
from local.listener import DualProtocolListener
from local.oauth import TokenEndpoint, moto_signing_key
from local.oauth import outputs as machine_client_outputs
from local.openai_api import OpenAiApi
from local.stack import REPO_ROOT, load_stack
from local.tls import LOOPBACK_NAMES, load_or_create_ca
from local.webui import WebUi
from settings import MACHINE_ACCESS_TOKEN_MINUTES, Settings
from site_config import config_document

log = logging.getLogger("local")

DEFAULT_OUTPUTS = REPO_ROOT / ".local" / "outputs.json"
DEFAULT_CA_DIR = REPO_ROOT / ".local" / "ca"
MODEL_PROVIDERS = ("local", "bedrock", "openai")

#: Services the functions keep state in or report to; with real Bedrock these alone go to moto.
MOTO_SERVICES = ("DYNAMODB", "SSM", "FIREHOSE", "COGNITO_IDENTITY_PROVIDER", "S3", "CLOUDWATCH")
_CREDENTIAL_VARIABLES = (
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_PROFILE",
    "AWS_CREDENTIAL_EXPIRATION",
)


@dataclass(frozen=True)
class Options:
    """What ``python -m local`` was asked to run."""

    stack: str = "dev"
    config_file: Path | None = None
    host: str = "127.0.0.1"
    port: int = 8080
    outputs: Path = DEFAULT_OUTPUTS
    model: str = "local"
    openai_base_url: str = ""
    openai_model: str = ""
    tokens_per_second: float = 60.0
    keepalive_seconds: float = 30.0
    #: Chat invocations run at once (like a reserved concurrency); later ones wait for a slot.
    max_concurrent_turns: int = 32
    #: A host name other machines or containers reach this gateway by (besides loopback names).
    public_host: str = ""
    #: Web origins besides the gateway's own UI that may call it from a browser page.
    allow_origins: tuple[str, ...] = ()
    ca_dir: Path = DEFAULT_CA_DIR
    #: Where to write the functions' per-start IAM key pair (mode 0600), for tools that must sign
    #: as the gateway itself; by default it is kept in this process only.
    iam_credentials_file: Path | None = None


class LocalGateway:
    """Starts everything in order and stops it in reverse; ``outputs`` once started."""

    def __init__(self, options: Options) -> None:
        if options.model not in MODEL_PROVIDERS:
            raise ValueError(f"model must be one of {', '.join(MODEL_PROVIDERS)}")
        if options.model == "openai" and not options.openai_base_url:
            raise ValueError("the openai model provider needs --openai-base-url")
        self.options = options
        self.settings: Settings = load_stack(options.stack, options.config_file)
        self.moto = MotoServer()
        self.resources: LocalResources | None = None
        self.outputs: dict[str, Any] = {}
        self.startup_seconds = 0.0
        self._runner: web.AppRunner | None = None
        self._events: EventsApi | None = None
        self._listener: DualProtocolListener | None = None
        self._credentials = LocalCredentials.generate()

    async def start(self) -> dict[str, Any]:
        began = time.monotonic()
        if self.options.model == "bedrock" and botocore.session.Session().get_credentials() is None:
            raise RuntimeError("--bedrock needs AWS credentials (a profile, SSO or env keys)")
        options = self.options
        listener = _listen(options.host, options.port)
        port = listener.getsockname()[1]
        ca = load_or_create_ca(options.ca_dir)
        public = options.public_host or "127.0.0.1"
        names = [*LOOPBACK_NAMES, options.public_host]
        if options.host not in ("0.0.0.0", "::", ""):
            names.append(options.host)
        tls = ca.server_context(names, options.ca_dir)
        policy = AccessPolicy(port, names, options.allow_origins)

        endpoint = self.moto.start()
        self.resources = resources = bootstrap(self.settings, endpoint)
        # The functions publish in this process, over plain HTTP on the same port.
        self._configure_environment(resources, f"http://127.0.0.1:{port}/event")
        if options.iam_credentials_file is not None and options.model != "bedrock":
            _write_private_json(
                options.iam_credentials_file,
                {
                    "accessKeyId": self._credentials.access_key_id,
                    "secretAccessKey": self._credentials.secret_access_key,
                },
            )

        credentials = botocore.session.Session().get_credentials()
        functions = FunctionRuntime(
            stack=self.settings.stack,
            region=self.settings.region,
            account_id=LOCAL_ACCOUNT_ID,
            max_concurrency=self.options.max_concurrent_turns,
        )
        for name in ("subscribe", "chat"):
            # Each function's Logger and Metrics read their service name at import, as in AWS.
            os.environ["POWERTOOLS_SERVICE_NAME"] = name
            functions.load(name)
        issuer = (
            f"https://cognito-idp.{self.settings.region}.amazonaws.com/{resources.user_pool_id}"
        )
        verifier = CognitoVerifier(
            issuer=issuer,
            client_id=resources.user_pool_client_id,
            jwks=_fetch_json(f"{endpoint}/{resources.user_pool_id}/.well-known/jwks.json"),
        )
        authorizer = Authorizer(
            verifier,
            SigV4Verifier(
                lambda: credentials.get_frozen_credentials() if credentials else None,
                region=self.settings.region,
                account_id=LOCAL_ACCOUNT_ID,
            ),
        )
        namespaces = gateway_namespaces(
            self.settings.inbound_namespace, self.settings.outbound_namespace
        )
        self._events = EventsApi(
            namespaces, authorizer, functions, keepalive_seconds=self.options.keepalive_seconds
        )
        app = web.Application(client_max_size=2 * 1024 * 1024, middlewares=[policy.middleware])
        self._events.add_routes(app)
        CognitoFront(
            endpoint, resources.user_pool_id, user_password(self.settings.region)
        ).add_routes(app)
        machines = resources.machine_clients
        TokenEndpoint(
            issuer=issuer,
            clients={m.client_id: m for m in machines.values()},
            lifetime_seconds=MACHINE_ACCESS_TOKEN_MINUTES * 60,
            signing_key=moto_signing_key(),
        ).add_routes(app)
        door_clients = frozenset(
            {resources.user_pool_client_id, *(m.client_id for m in machines.values())}
        )
        OpenAiApi(
            verifier,
            lambda: door_clients,
            _openai_door,
            max_concurrency=self.options.max_concurrent_turns,
        ).add_routes(app)
        WebUi(self._web_config).add_routes(app)
        self._runner = web.AppRunner(
            app, handle_signals=False, access_log=None, shutdown_timeout=1.0
        )
        await self._runner.setup()
        assert self._runner.server is not None
        self._listener = DualProtocolListener(listener, self._runner.server, tls)
        self._listener.start()

        base = f"{public}:{port}" if ":" not in public else f"[{public}]:{port}"
        self.outputs = {
            "region": self.settings.region,
            "userPoolId": resources.user_pool_id,
            "userPoolClientId": resources.user_pool_client_id,
            "eventsHttpEndpoint": f"https://{base}/event",
            "eventsRealtimeEndpoint": f"wss://{base}/event/realtime",
            "inboundNamespace": self.settings.inbound_namespace,
            "outboundNamespace": self.settings.outbound_namespace,
            "userPoolEndpoint": f"https://{base}/cognito-idp/",
            "openAiBaseUrl": f"https://{base}/v1",
            "openAiTokenUrl": f"https://{base}/oauth2/token",
            "machineClients": machine_client_outputs(machines),
            "caCertFile": _display_path(ca.cert_file),
            "awsEndpointUrl": endpoint,
            # What the admin CLI (python -m tools.admin --local) reads, as a deployed stack
            # exports it, and where it writes its audit lines.
            "usageTableName": resources.usage_table,
            "preparedResponsesTableName": resources.prepared_responses_table,
            "tierConfigParameterName": resources.tier_config_parameter,
            "analyticsBucketName": resources.analytics_bucket,
            "adminAuditFile": _display_path(self.options.outputs.parent / "admin-audit.jsonl"),
            "demoUsers": [user.to_output() for user in resources.demo_users],
            "modelProvider": self.options.model,
            "webUrl": f"http://localhost:{port}/",
        }
        _write_atomically(self.options.outputs, json.dumps(self.outputs, indent=2) + "\n")
        self.startup_seconds = time.monotonic() - began
        return self.outputs

    async def stop(self) -> None:
        if self._listener is not None:
            await self._listener.close()
        if self._events is not None:
            await self._events.close()
        if self._runner is not None:
            await self._runner.cleanup()
        self.moto.stop()

    def _configure_environment(self, resources: LocalResources, http_endpoint: str) -> None:
        settings, options = self.settings, self.options
        env = os.environ
        for name in (
            "AWS_ENDPOINT_URL",
            "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS",
            *(f"AWS_ENDPOINT_URL_{s}" for s in MOTO_SERVICES),
        ):
            env.pop(name, None)
        if options.model == "bedrock":
            # Real credentials for Bedrock; moto accepts any, so they may sign moto's calls too.
            for service in MOTO_SERVICES:
                env[f"AWS_ENDPOINT_URL_{service}"] = resources.endpoint_url
        else:
            for name in _CREDENTIAL_VARIABLES:
                env.pop(name, None)
            env["AWS_ACCESS_KEY_ID"] = self._credentials.access_key_id
            env["AWS_SECRET_ACCESS_KEY"] = self._credentials.secret_access_key
            env["AWS_ENDPOINT_URL"] = resources.endpoint_url
        env["AWS_DEFAULT_REGION"] = env["AWS_REGION"] = settings.region
        env["POWERTOOLS_METRICS_NAMESPACE"] = METRICS_NAMESPACE
        env["POWERTOOLS_TRACE_DISABLED"] = "true"
        env.update(
            settings.function_environment(
                usage_table=resources.usage_table,
                prepared_responses_table=resources.prepared_responses_table,
                tier_config_parameter=resources.tier_config_parameter,
                events_http_endpoint=http_endpoint,
                analytics_stream=resources.analytics_stream,
                model_provider=options.model,
                local_model_tokens_per_second=options.tokens_per_second,
                openai_base_url=options.openai_base_url,
                openai_model=options.openai_model,
            ).variables()
        )
        env[MACHINE_CLIENT_TIERS] = encode_machine_client_tiers(
            {m.client_id: m.tier for m in resources.machine_clients.values()}
        )

    def _web_config(self, request: web.Request, root: Path) -> dict[str, Any]:
        """``config.json`` for a browser that reached this server as ``request.host``.

        The endpoints are the outputs' (``https``/``wss``) on the host the browser used; the UI
        swaps the scheme to ``http``/``ws`` on loopback hosts, where the same port answers both.
        The sign-in endpoint uses the page's own scheme, so it is same-origin.
        """
        assert self.resources is not None
        host = request.host
        outputs = {
            **self.outputs,
            "eventsHttpEndpoint": f"https://{host}/event",
            "eventsRealtimeEndpoint": f"wss://{host}/event/realtime",
        }
        # The hosted app's builder, so the two never drift (and neither carries tier data).
        return config_document(
            outputs,
            userPoolEndpoint=f"{request.scheme}://{host}/cognito-idp/",
            cognitoEndpoint=f"{request.scheme}://{host}/cognito-idp/",
            demoUsers=self.outputs["demoUsers"],
            modelProvider=self.outputs["modelProvider"],
            environment="local",
        )


def _openai_door() -> OpenAiDoor:
    """The OpenAI-compatible door on the chat function's own turn core (one runtime per function
    configuration, so both doors share its usage cache as well as the usage table)."""
    from gateway.environment import FunctionEnvironment
    from gateway.openai.clients import machine_client_tiers
    from gateway.runtime import runtime_for

    return runtime_for(FunctionEnvironment.from_environ()).openai_door(
        machine_client_tiers(), logging.getLogger("ai-gateway.openai")
    )


def _listen(host: str, port: int) -> socket.socket:
    """A listening socket with SO_REUSEADDR, so a restart can bind the port at once."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as err:
        sock.close()
        raise OSError(f"cannot listen on {host}:{port}: {err.strerror} (try PORT=...)") from err
    sock.listen(128)
    sock.setblocking(False)
    return sock


def _display_path(path: Path) -> str:
    """``path`` relative to the repository when it is inside it, else absolute."""
    try:
        return str(path.resolve().relative_to(REPO_ROOT))
    except ValueError:
        return str(path.resolve())


def _write_private_json(path: Path, document: dict[str, str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as file:
        json.dump(document, file)


def _write_atomically(path: Path, text: str) -> None:
    """Write then rename, so whoever waits for the file never reads half of it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(text)
    partial.replace(path)


def _fetch_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.load(response)
