"""The environment contract of the gateway's functions.

The Pulumi components build each function's environment with :meth:`FunctionEnvironment.variables`
and the local runtime does the same, so a name can never be spelled two ways. The functions read
it back with :meth:`FunctionEnvironment.from_environ`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields

from gateway.contract import (
    DEFAULT_INBOUND_NAMESPACE,
    DEFAULT_MAX_MESSAGE_CHARS,
    DEFAULT_MAX_MESSAGES,
    DEFAULT_OUTBOUND_NAMESPACE,
)

#: The stack's default coalescing interval of streamed answers (``ai-gateway:streamFlushMs``).
DEFAULT_STREAM_FLUSH_MS = 500
#: How long a warm function trusts its tier config and prepared-response index (seconds).
DEFAULT_TIER_CONFIG_CACHE_SECONDS = 30
#: The WAF origin secret the publisher sends in ``ORIGIN_HEADER`` (``components/waf.py``), so the
#: WAF's user rules skip the gateway's own publishes; unset in stacks without a WAF.
ORIGIN_SECRET_VARIABLE = "EVENTS_ORIGIN_SECRET"
ORIGIN_HEADER = "x-gateway-origin"

_ENV_NAMES = {
    "usage_table": "USAGE_TABLE",
    "prepared_responses_table": "PREPARED_RESPONSES_TABLE",
    "tier_config_parameter": "TIER_CONFIG_PARAMETER",
    "tier_config_cache_seconds": "TIER_CONFIG_CACHE_SECONDS",
    "events_http_endpoint": "EVENTS_HTTP_ENDPOINT",
    "events_origin_secret": ORIGIN_SECRET_VARIABLE,
    "inbound_namespace": "INBOUND_NAMESPACE",
    "outbound_namespace": "OUTBOUND_NAMESPACE",
    "analytics_stream": "ANALYTICS_STREAM",
    "stream_flush_ms": "STREAM_FLUSH_MS",
    "metering_fail_open": "METERING_FAIL_OPEN",
    "max_messages": "MAX_MESSAGES",
    "max_message_chars": "MAX_MESSAGE_CHARS",
    "message_preview_chars": "MESSAGE_PREVIEW_CHARS",
    "model_provider": "MODEL_PROVIDER",
    "local_model_tokens_per_second": "LOCAL_MODEL_TOKENS_PER_SECOND",
    "openai_base_url": "OPENAI_BASE_URL",
    "openai_model": "OPENAI_MODEL",
}


@dataclass(frozen=True)
class FunctionEnvironment:
    """Settings a function receives through its environment variables.

    ``model_provider`` is ``bedrock`` in AWS; the local runtime and tests use ``local`` (the
    deterministic local model) or ``openai`` (an OpenAI-compatible endpoint at
    ``openai_base_url``).
    """

    usage_table: str = ""
    prepared_responses_table: str = ""
    tier_config_parameter: str = ""
    tier_config_cache_seconds: int = DEFAULT_TIER_CONFIG_CACHE_SECONDS
    events_http_endpoint: str = ""
    events_origin_secret: str = ""
    inbound_namespace: str = DEFAULT_INBOUND_NAMESPACE
    outbound_namespace: str = DEFAULT_OUTBOUND_NAMESPACE
    analytics_stream: str = ""
    stream_flush_ms: int = DEFAULT_STREAM_FLUSH_MS
    metering_fail_open: bool = False
    max_messages: int = DEFAULT_MAX_MESSAGES
    max_message_chars: int = DEFAULT_MAX_MESSAGE_CHARS
    message_preview_chars: int = 0
    model_provider: str = "bedrock"
    local_model_tokens_per_second: float = 0.0
    openai_base_url: str = ""
    #: Model name sent to the OpenAI-compatible endpoint in place of the tier's model id
    #: (Ollama and vLLM name their models differently); empty sends the tier's id.
    openai_model: str = ""

    def variables(self, *only: str) -> dict[str, str]:
        """Environment variables for this configuration: all, or just the named fields,
        with empty values left out so a function carries only what its code reads."""
        out: dict[str, str] = {}
        for f in fields(self):
            if only and f.name not in only:
                continue
            value = getattr(self, f.name)
            if value in ("", None):
                continue
            out[_ENV_NAMES[f.name]] = str(value).lower() if isinstance(value, bool) else str(value)
        return out

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> FunctionEnvironment:
        env = os.environ if environ is None else environ
        kwargs: dict[str, object] = {}
        for f in fields(cls):
            raw = env.get(_ENV_NAMES[f.name])
            if raw is None:
                continue
            default = f.default
            if isinstance(default, bool):
                kwargs[f.name] = raw.strip().lower() in ("1", "true", "yes")
            elif isinstance(default, int):
                kwargs[f.name] = int(raw)
            elif isinstance(default, float):
                kwargs[f.name] = float(raw)
            else:
                kwargs[f.name] = raw
        return cls(**kwargs)  # type: ignore[arg-type]
