"""Stack settings: the ``ai-gateway:*`` config of one stack, validated into frozen dataclasses.

Nothing is declared until :func:`load_settings` has accepted every key. Scalars have their type,
description and default in ``Pulumi.yaml``; structured values (tiers, identity providers) live in
the stack files. Components receive these dataclasses and never read config themselves.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import yaml
from gateway.environment import FunctionEnvironment
from gateway.tiers import ModelPrice, TierConfig, TierConfigError, parse_tier_config

from model_catalog import ACTIVE, EOL, ModelCatalog, load_catalog

PROJECT = "ai-gateway"
PROJECT_FILE = Path(__file__).resolve().parent / "Pulumi.yaml"

# CloudWatch Logs accepts only these retention periods (days).
# fmt: off
LOG_RETENTION_DAYS = frozenset(
    {1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557,
     2922, 3288, 3653}
)
# fmt: on
_NAMESPACE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,48}[A-Za-z0-9])?$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_MFA = ("OFF", "OPTIONAL", "ON")
_REGION = re.compile(r"^[a-z]{2}(?:-[a-z]+)+-[0-9]$")
# Lambda memory: 128 MB to 10,240 MB in 1-MB steps
# (https://docs.aws.amazon.com/lambda/latest/dg/configuration-memory.html).
_LAMBDA_MEMORY_MB = (128, 10_240)
# Lambda's default concurrency quota is 1,000 per Region and at least 100 must stay unreserved
# (https://docs.aws.amazon.com/lambda/latest/dg/configuration-concurrency.html); a larger
# reservation needs a raised quota, which `make preflight` checks against the account.
_MAX_RESERVED_CONCURRENCY = 10_000
#: The longest stack name whose resources all get names within AWS's limits. The tightest is the
#: subscribe function's IAM role, auto-named ``ai-gateway-<stack>-subscribe-role`` plus Pulumi's
#: 8-character random suffix, within IAM's 64 characters for a role name (botocore's IAM model,
#: ``roleNameType``; https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_iam-quotas.html).
#: tests/infra/test_name_limits.py checks every name of a stack with a name this long.
MAX_STACK_NAME_LENGTH = 30
# --- web hosting ---
_HOSTNAME = re.compile(r"^(?=.{1,253}$)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
# CloudFront takes viewer certificates only from ACM in us-east-1:
# https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/cnames-and-https-requirements.html
_CLOUDFRONT_CERTIFICATE = re.compile(r"^arn:aws:acm:us-east-1:[0-9]{12}:certificate/[0-9a-f-]{36}$")
# --- the OpenAI-compatible API ---
# A Regional API Gateway custom domain takes an ACM certificate from the API's own Region:
# https://docs.aws.amazon.com/apigateway/latest/developerguide/apigateway-regional-api-custom-domain-create.html
_REGIONAL_CERTIFICATE = re.compile(
    r"^arn:aws:acm:(?P<region>[a-z0-9-]+):[0-9]{12}:certificate/[0-9a-f-]{36}$"
)
# API Gateway's account-level throttle quota per Region is 10,000 requests per second with a
# burst of 5,000; a stage or method limit above it has no effect:
# https://docs.aws.amazon.com/apigateway/latest/developerguide/api-gateway-request-throttling.html
_THROTTLE_RATE_MAX = 10_000
_THROTTLE_BURST_MAX = 5_000
#: The gateway's OAuth 2.0 resource server and its one scope. Machine clients' access tokens
#: carry ``ai-gateway/chat``: Cognito names custom scopes ``<resource server>/<scope>``
#: (https://docs.aws.amazon.com/cognito/latest/developerguide/cognito-user-pools-define-resource-servers.html).
RESOURCE_SERVER = "ai-gateway"
CHAT_SCOPE = f"{RESOURCE_SERVER}/chat"
#: How long a machine client's access token lasts, on AWS (its app client's
#: ``AccessTokenValidity``) and from ``make dev``'s token endpoint alike.
MACHINE_ACCESS_TOKEN_MINUTES = 60
# Our own names for machine clients: the app client's name is "<project>-<stack>-<name>", and
# Cognito app client names are at most 128 characters
# (https://docs.aws.amazon.com/cognito-user-identity-pools/latest/APIReference/API_CreateUserPoolClient.html).
_MACHINE_CLIENT_NAME = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,46}[a-z0-9])?$")


class SettingsError(ValueError):
    """A stack config value is invalid; the message names the key and the problem."""


@dataclass(frozen=True)
class WebSettings:
    """The hosted chat app: on or off, where its built files are, its domain and its logging."""

    enabled: bool = True
    site_dir: str = "web/dist"  # relative to the project directory
    domain: str = ""  # custom domain; empty: the distribution's *.cloudfront.net name
    certificate_arn: str = ""  # ACM certificate (us-east-1) for ``domain``
    access_logging: bool = False


@dataclass(frozen=True)
class MachineClient:
    """An application that signs in with the client-credentials grant and is metered as one
    caller of ``tier``."""

    name: str
    tier: str


@dataclass(frozen=True)
class OpenAiSettings:
    """The OpenAI-compatible API under ``/v1``: on or off, its stage throttle, its optional
    custom domain, and the machine clients that may call it without a user."""

    enabled: bool = True
    #: Steady requests per second across the stage, and the burst above it.
    throttle_rate: float = 50.0
    throttle_burst: int = 100
    domain: str = ""  # custom domain; empty: the execute-api URL
    certificate_arn: str = ""  # ACM certificate in the stack's region for ``domain``
    machine_clients: tuple[MachineClient, ...] = ()


@dataclass(frozen=True)
class FederatedProvider:
    """A Cognito identity provider: Google, or a SAML/OIDC provider by name."""

    name: str
    kind: str  # "Google" | "SAML" | "OIDC"
    details: Mapping[str, str]
    attribute_mapping: Mapping[str, str]


@dataclass(frozen=True)
class Settings:
    """Everything the program needs to know about one stack."""

    stack: str
    region: str
    tier_config: TierConfig
    inbound_namespace: str
    outbound_namespace: str
    cost_center: str
    log_retention_days: int
    point_in_time_recovery: bool
    deletion_protection: bool
    mfa: str
    waf: bool
    alarm_email: str
    stream_flush_ms: int
    metering_fail_open: bool
    max_messages: int
    max_message_chars: int
    message_preview_chars: int
    tier_config_cache_seconds: int
    callback_urls: tuple[str, ...]
    federated_providers: tuple[FederatedProvider, ...] = field(default_factory=tuple)
    analytics_retention_days: int = 365
    self_sign_up: bool = False
    chat_memory_mb: int = 256
    #: Lambda SnapStart on the chat function (published versions behind the ``live`` alias).
    chat_snap_start: bool = True
    #: The chat function's reserved concurrency; ``None`` reserves nothing (config value 0).
    chat_reserved_concurrency: int | None = None
    #: Things worth an operator's attention that do not stop a deploy (Legacy models).
    warnings: tuple[str, ...] = ()
    web: WebSettings = field(default_factory=WebSettings)
    open_ai: OpenAiSettings = field(default_factory=OpenAiSettings)

    def function_environment(self, **resources: Any) -> FunctionEnvironment:
        """The functions' environment: what this stack's settings say, plus ``resources``
        (table, parameter and stream names, the events endpoint, the model provider) from
        whoever created them — the Pulumi program, or the local runtime."""
        return FunctionEnvironment(
            tier_config_cache_seconds=self.tier_config_cache_seconds,
            inbound_namespace=self.inbound_namespace,
            outbound_namespace=self.outbound_namespace,
            stream_flush_ms=self.stream_flush_ms,
            metering_fail_open=self.metering_fail_open,
            max_messages=self.max_messages,
            max_message_chars=self.max_message_chars,
            message_preview_chars=self.message_preview_chars,
            **resources,
        )

    @property
    def resource_prefix(self) -> str:
        """What every resource name of the stack starts with (``ai-gateway-<stack>``)."""
        return f"{PROJECT}-{self.stack}"

    @property
    def chat_function_name(self) -> str:
        """The chat function's name, which ``make preflight`` asks Lambda about too."""
        return f"{self.resource_prefix}-chat"

    @property
    def tags(self) -> dict[str, str]:
        """Default tags for every taggable resource of the stack."""
        return {"project": PROJECT, "environment": self.stack, "cost-center": self.cost_center}


def project_defaults(project_file: Path = PROJECT_FILE) -> dict[str, Any]:
    """Defaults of the project-level config schema in ``Pulumi.yaml``, by bare key name."""
    schema = yaml.safe_load(project_file.read_text())["config"]
    return {
        key.removeprefix(f"{PROJECT}:"): spec["default"]
        for key, spec in schema.items()
        if isinstance(spec, dict) and "default" in spec and key.startswith(f"{PROJECT}:")
    }


def config_reader(
    raw: Callable[[str], str | None], project_file: Path = PROJECT_FILE
) -> Callable[[str], Any]:
    """A getter for :func:`load_settings` over raw engine config (``pulumi.Config(...).get``).

    The engine passes every value as a string; keys the schema types ``object`` or ``array``
    arrive JSON-encoded and are decoded here (a value that is not JSON fails naming its key).
    Scalars stay strings: :func:`load_settings` checks and converts them.
    """
    schema = yaml.safe_load(project_file.read_text())["config"]
    structured = {
        key.removeprefix(f"{PROJECT}:")
        for key, spec in schema.items()
        if isinstance(spec, dict) and spec.get("type") in ("object", "array")
    }

    def get(key: str) -> Any:
        value = raw(key)
        if value is None or key not in structured or not isinstance(value, str):
            return value
        try:
            return json.loads(value)
        except json.JSONDecodeError as err:
            raise SettingsError(f"{PROJECT}:{key}: not a valid {key} value ({err.msg})") from None

    return get


def load_settings(
    stack: str,
    region: str | None,
    get: Callable[[str], Any],
    *,
    defaults: Mapping[str, Any] | None = None,
    today: date | None = None,
    catalog: ModelCatalog | None = None,
) -> Settings:
    """Build :class:`Settings` from a config getter (``pulumi.Config(...).get_object``).

    ``get(key)`` returns the stack value or ``None``; ``defaults`` fills the gaps, as the Pulumi
    CLI does from the project's schema. Every tier model is looked up in the model catalog as of
    ``today`` (UTC by default): an unknown or end-of-life model is refused, a Legacy one warned
    about.
    """
    defaults = project_defaults() if defaults is None else defaults
    today = datetime.now(UTC).date() if today is None else today
    if len(stack) > MAX_STACK_NAME_LENGTH:
        raise SettingsError(
            f"stack name '{stack}' is {len(stack)} characters; at most {MAX_STACK_NAME_LENGTH} "
            "fit AWS's name limits (the tightest: an IAM role name, 64 characters, holds "
            f"'{PROJECT}-<stack>-subscribe-role' and Pulumi's 8-character random suffix). "
            "Choose a shorter stack name"
        )
    if not isinstance(region, str) or not _REGION.fullmatch(region):
        raise SettingsError(f"aws:region: {region!r} is not an AWS region (e.g. us-east-1)")

    def value(key: str) -> Any:
        raw = get(key)
        return defaults.get(key) if raw is None else raw

    try:
        tier_config = parse_tier_config(value("tiers"), value("defaultTier"), prefix=f"{PROJECT}:")
    except TierConfigError as err:
        raise SettingsError(str(err)) from None
    catalog = load_catalog() if catalog is None else catalog
    warnings = model_lifecycle_warnings(tier_config, catalog, today)
    tier_config = tier_config.with_prices(
        model_prices(tier_config, catalog), counted_by_bedrock(tier_config, catalog)
    )

    inbound = _namespace(value("inboundNamespace"), "inboundNamespace")
    outbound = _namespace(value("outboundNamespace"), "outboundNamespace")
    if inbound == outbound:
        raise SettingsError(
            f"{PROJECT}:outboundNamespace: must differ from inboundNamespace ('{inbound}')"
        )

    retention = _int(value("logRetentionDays"), "logRetentionDays", minimum=1)
    if retention not in LOG_RETENTION_DAYS:
        raise SettingsError(
            f"{PROJECT}:logRetentionDays: {retention} is not a CloudWatch retention period "
            f"(one of {', '.join(map(str, sorted(LOG_RETENTION_DAYS)))})"
        )

    mfa = str(value("mfa")).upper()
    if mfa not in _MFA:
        raise SettingsError(f"{PROJECT}:mfa: must be one of {', '.join(_MFA)}, got {mfa!r}")

    alarm_email = value("alarmEmail") or ""
    if alarm_email and not _EMAIL.fullmatch(alarm_email):
        raise SettingsError(f"{PROJECT}:alarmEmail: '{alarm_email}' is not an e-mail address")

    cost_center = value("costCenter")
    if not isinstance(cost_center, str) or not cost_center.strip():
        raise SettingsError(f"{PROJECT}:costCenter: must be a non-empty string")

    callback_urls = value("callbackUrls")
    if not isinstance(callback_urls, list) or not all(
        isinstance(u, str) and u.startswith(("https://", "http://localhost")) for u in callback_urls
    ):
        raise SettingsError(
            f"{PROJECT}:callbackUrls: must be a list of https:// (or http://localhost) URLs"
        )

    return Settings(
        stack=stack,
        region=region,
        tier_config=tier_config,
        inbound_namespace=inbound,
        outbound_namespace=outbound,
        cost_center=cost_center,
        log_retention_days=retention,
        point_in_time_recovery=_bool(value("pointInTimeRecovery"), "pointInTimeRecovery"),
        deletion_protection=_bool(value("deletionProtection"), "deletionProtection"),
        mfa=mfa,
        waf=_bool(value("waf"), "waf"),
        alarm_email=alarm_email,
        stream_flush_ms=_int(value("streamFlushMs"), "streamFlushMs", minimum=10, maximum=5000),
        metering_fail_open=_bool(value("meteringFailOpen"), "meteringFailOpen"),
        max_messages=_int(value("maxMessages"), "maxMessages", minimum=1, maximum=500),
        max_message_chars=_int(
            value("maxMessageChars"), "maxMessageChars", minimum=1, maximum=200_000
        ),
        message_preview_chars=_int(
            value("messagePreviewChars"), "messagePreviewChars", minimum=0, maximum=2000
        ),
        tier_config_cache_seconds=_int(
            value("tierConfigCacheSeconds"), "tierConfigCacheSeconds", minimum=1, maximum=60
        ),
        callback_urls=tuple(callback_urls),
        federated_providers=_providers(value("identityProviders")),
        analytics_retention_days=_int(
            value("analyticsRetentionDays"), "analyticsRetentionDays", minimum=1
        ),
        self_sign_up=_bool(value("selfSignUp"), "selfSignUp"),
        chat_memory_mb=_int(
            value("chatMemoryMb"),
            "chatMemoryMb",
            minimum=_LAMBDA_MEMORY_MB[0],
            maximum=_LAMBDA_MEMORY_MB[1],
        ),
        chat_snap_start=_bool(value("chatSnapStart"), "chatSnapStart"),
        chat_reserved_concurrency=_int(
            value("chatReservedConcurrency"),
            "chatReservedConcurrency",
            minimum=0,
            maximum=_MAX_RESERVED_CONCURRENCY,
        )
        or None,
        warnings=tuple(warnings),
        web=_web(value),
        open_ai=_open_ai(value, region, tier_config),
    )


def _web(value: Callable[[str], Any]) -> WebSettings:
    """``web``, ``webSiteDir``, ``webDomain`` + ``webCertificateArn`` and ``webLogging``."""
    site_dir = value("webSiteDir")
    if not isinstance(site_dir, str) or not site_dir.strip():
        raise SettingsError(f"{PROJECT}:webSiteDir: must be a directory path")
    domain = str(value("webDomain") or "").strip().lower()
    certificate = str(value("webCertificateArn") or "").strip()
    if domain and not _HOSTNAME.fullmatch(domain):
        raise SettingsError(f"{PROJECT}:webDomain: {domain!r} is not a DNS name (app.example.com)")
    if bool(domain) != bool(certificate):
        missing = "webCertificateArn" if domain else "webDomain"
        raise SettingsError(
            f"{PROJECT}:{missing}: required with "
            f"{'webDomain' if domain else 'webCertificateArn'} (a custom domain needs both)"
        )
    if certificate and not _CLOUDFRONT_CERTIFICATE.fullmatch(certificate):
        raise SettingsError(
            f"{PROJECT}:webCertificateArn: {certificate!r} is not an ACM certificate ARN in "
            "us-east-1, the only region CloudFront takes certificates from"
        )
    return WebSettings(
        enabled=_bool(value("web"), "web"),
        site_dir=site_dir.strip(),
        domain=domain,
        certificate_arn=certificate,
        access_logging=_bool(value("webLogging"), "webLogging"),
    )


def model_prices(tier_config: TierConfig, catalog: ModelCatalog) -> dict[str, ModelPrice]:
    """Every configured model's price, from the catalog; a model without one is refused (the
    gateway meters spend, and a money window could not be kept without it)."""
    prices: dict[str, ModelPrice] = {}
    for tier in tier_config.tiers.values():
        for model_id in (*tier.models, *([tier.fallback_model] if tier.fallback_model else [])):
            model = catalog.find(model_id)
            if model is None or model.input_per_1k is None or model.output_per_1k is None:
                raise SettingsError(
                    f"{PROJECT}:tiers.{tier.name}.models: '{model_id}' has no price in "
                    "model-catalog.json; add its input and output price per 1,000 tokens, with "
                    "the page and the date it was read"
                )
            prices[model_id] = ModelPrice(model.input_per_1k, model.output_per_1k)
    return prices


def counted_by_bedrock(tier_config: TierConfig, catalog: ModelCatalog) -> frozenset[str]:
    """The configured models whose input Bedrock's CountTokens can count."""
    return frozenset(
        m for m in tier_config.all_models() if (found := catalog.find(m)) and found.count_tokens
    )


def _open_ai(value: Callable[[str], Any], region: str, tier_config: TierConfig) -> OpenAiSettings:
    """``openAi``, ``openAiThrottle``, ``openAiDomain`` + ``openAiCertificateArn`` and
    ``machineClients``."""
    throttle = value("openAiThrottle")
    key = f"{PROJECT}:openAiThrottle"
    if not isinstance(throttle, Mapping) or set(throttle) - {"rate", "burst"}:
        raise SettingsError(f"{key}: must be a mapping of rate and burst")
    rate = throttle.get("rate", OpenAiSettings.throttle_rate)
    if (
        isinstance(rate, bool)
        or not isinstance(rate, int | float)
        or not 0 < rate <= _THROTTLE_RATE_MAX
    ):
        raise SettingsError(
            f"{key}.rate: requests per second, above 0 and at most {_THROTTLE_RATE_MAX} "
            f"(API Gateway's per-Region quota), got {rate!r}"
        )
    burst = _int(
        throttle.get("burst", OpenAiSettings.throttle_burst),
        "openAiThrottle.burst",
        minimum=1,
        maximum=_THROTTLE_BURST_MAX,
    )

    domain = str(value("openAiDomain") or "").strip().lower()
    certificate = str(value("openAiCertificateArn") or "").strip()
    if domain and not _HOSTNAME.fullmatch(domain):
        raise SettingsError(
            f"{PROJECT}:openAiDomain: {domain!r} is not a DNS name (api.example.com)"
        )
    if bool(domain) != bool(certificate):
        missing = "openAiCertificateArn" if domain else "openAiDomain"
        given = "openAiDomain" if domain else "openAiCertificateArn"
        raise SettingsError(
            f"{PROJECT}:{missing}: required with {given} (a custom domain needs both)"
        )
    if certificate:
        match = _REGIONAL_CERTIFICATE.fullmatch(certificate)
        if not match or match["region"] != region:
            raise SettingsError(
                f"{PROJECT}:openAiCertificateArn: {certificate!r} is not an ACM certificate ARN "
                f"in {region}, the stack's region (a Regional API takes its own region's)"
            )

    clients_key = f"{PROJECT}:machineClients"
    raw_clients = value("machineClients") or {}
    if not isinstance(raw_clients, Mapping):
        raise SettingsError(f"{clients_key}: must be a mapping of client name to {{tier}}")
    clients = []
    for name, spec in sorted(raw_clients.items()):
        if not isinstance(name, str) or not _MACHINE_CLIENT_NAME.fullmatch(name):
            raise SettingsError(
                f"{clients_key}.{name}: a client name is 1-48 lowercase letters, digits and "
                "inner hyphens"
            )
        if not isinstance(spec, Mapping) or set(spec) != {"tier"}:
            raise SettingsError(f"{clients_key}.{name}: must be {{tier: <tier name>}}")
        if spec["tier"] not in tier_config.tiers:
            raise SettingsError(
                f"{clients_key}.{name}.tier: {spec['tier']!r} is not one of the tiers "
                f"({', '.join(sorted(tier_config.tiers))})"
            )
        clients.append(MachineClient(name=name, tier=spec["tier"]))
    enabled = _bool(value("openAi"), "openAi")
    if clients and not enabled:
        raise SettingsError(
            f"{clients_key}: machine clients call the OpenAI-compatible API; set "
            f"{PROJECT}:openAi to true or remove them"
        )
    return OpenAiSettings(
        enabled=enabled,
        throttle_rate=float(rate),
        throttle_burst=burst,
        domain=domain,
        certificate_arn=certificate,
        machine_clients=tuple(clients),
    )


def model_lifecycle_warnings(
    tier_config: TierConfig, catalog: ModelCatalog, today: date
) -> list[str]:
    """Refuse a tier model the catalog does not know or that is past its Bedrock EOL date;
    return a warning for each Legacy one."""
    warnings: list[str] = []
    for tier in tier_config.tiers.values():
        named = [(f"models[{i}]", m) for i, m in enumerate(tier.models)]
        named.append(("defaultModel", tier.default_model))
        if tier.fallback_model:
            named.append(("fallbackModel", tier.fallback_model))
        for key, model_id in named:
            where = f"{PROJECT}:tiers.{tier.name}.{key}"
            model = catalog.find(model_id)
            if model is None:
                raise SettingsError(
                    f"{where}: '{model_id}' is not in model-catalog.json; add it with its Bedrock "
                    "lifecycle and price before a tier may use it"
                )
            state = model.state_on(today)
            if state == EOL:
                raise SettingsError(
                    f"{where}: '{model_id}' cannot be called: {model.describe(today)}"
                )
            if state != ACTIVE:
                warnings.append(f"{where}: '{model_id}': {model.describe(today)}")
    return sorted(set(warnings))


def _namespace(raw: Any, key: str) -> str:
    if not isinstance(raw, str) or not _NAMESPACE.fullmatch(raw):
        raise SettingsError(
            f"{PROJECT}:{key}: {raw!r} is not a channel namespace name "
            "(1-50 letters, digits and inner hyphens)"
        )
    return raw


def _bool(raw: Any, key: str) -> bool:
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, str) and raw.lower() in ("true", "false"):
        return raw.lower() == "true"
    raise SettingsError(f"{PROJECT}:{key}: must be true or false, got {raw!r}")


def _int(raw: Any, key: str, *, minimum: int, maximum: int | None = None) -> int:
    if isinstance(raw, str) and raw.strip().lstrip("-").isdigit():
        raw = int(raw)
    if isinstance(raw, bool) or not isinstance(raw, int):
        raise SettingsError(f"{PROJECT}:{key}: must be a whole number, got {raw!r}")
    if raw < minimum or (maximum is not None and raw > maximum):
        bound = f"between {minimum} and {maximum}" if maximum is not None else f">= {minimum}"
        raise SettingsError(f"{PROJECT}:{key}: must be {bound}, got {raw}")
    return raw


def _providers(raw: Any) -> tuple[FederatedProvider, ...]:
    """``identityProviders``: ``{google: {clientId, clientSecret}, oidc: [...], saml: [...]}``."""
    key = f"{PROJECT}:identityProviders"
    if raw in (None, {}):
        return ()
    if not isinstance(raw, Mapping):
        raise SettingsError(f"{key}: must be a mapping with google, oidc and/or saml entries")
    unknown = sorted(set(raw) - {"google", "oidc", "saml"})
    if unknown:
        raise SettingsError(f"{key}.{unknown[0]}: unknown provider kind (google, oidc, saml)")
    providers: list[FederatedProvider] = []
    google = raw.get("google")
    if google:
        _require(google, ("clientId", "clientSecret"), f"{key}.google")
        providers.append(
            FederatedProvider(
                name="Google",
                kind="Google",
                details={
                    "client_id": google["clientId"],
                    "client_secret": google["clientSecret"],
                    "authorize_scopes": "openid email profile",
                },
                attribute_mapping={"email": "email", "username": "sub"},
            )
        )
    for i, oidc in enumerate(raw.get("oidc") or []):
        _require(oidc, ("name", "issuer", "clientId", "clientSecret"), f"{key}.oidc[{i}]")
        providers.append(
            FederatedProvider(
                name=oidc["name"],
                kind="OIDC",
                details={
                    "client_id": oidc["clientId"],
                    "client_secret": oidc["clientSecret"],
                    "oidc_issuer": oidc["issuer"],
                    "authorize_scopes": "openid email profile",
                    "attributes_request_method": "GET",
                },
                attribute_mapping={"email": "email", "username": "sub"},
            )
        )
    for i, saml in enumerate(raw.get("saml") or []):
        _require(saml, ("name", "metadataUrl"), f"{key}.saml[{i}]")
        providers.append(
            FederatedProvider(
                name=saml["name"],
                kind="SAML",
                details={"MetadataURL": saml["metadataUrl"]},
                attribute_mapping={
                    "email": "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress"
                },
            )
        )
    names = [p.name for p in providers]
    if len(set(names)) != len(names):
        raise SettingsError(f"{key}: provider names must be unique, got {names}")
    return tuple(providers)


def _require(raw: Any, keys: tuple[str, ...], key: str) -> None:
    if not isinstance(raw, Mapping):
        raise SettingsError(f"{key}: must be a mapping with {', '.join(keys)}")
    for k in keys:
        if not isinstance(raw.get(k), str) or not raw[k]:
            raise SettingsError(f"{key}.{k}: required")
