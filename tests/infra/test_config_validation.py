"""Config validation through the real program: a bad value stops `pulumi up` and names its key."""

from __future__ import annotations

import copy

import pytest

from devtools.declare import declare_stack, load_stack_config
from settings import SettingsError


def _tiers(**changes):
    """The dev tiers with ``changes`` applied: ``{"pro.defaultModel": "x"}``."""
    tiers = copy.deepcopy(load_stack_config("dev")["ai-gateway:tiers"])
    for path, value in changes.items():
        tier, key = path.split(".")
        tiers[tier][key] = value
    return tiers


DEV_PRO_MODELS = load_stack_config("dev")["ai-gateway:tiers"]["pro"]["models"]

BAD_CONFIGS = [
    pytest.param(
        {"tiers": _tiers(**{"pro.defaultModel": "anthropic.claude-v9:0"})},
        "ai-gateway:tiers.pro.defaultModel",
        id="default-model-not-in-allowlist",
    ),
    pytest.param(
        {"tiers": _tiers(**{"free.dailyInputTokens": -5})},
        "ai-gateway:tiers.free.dailyInputTokens",
        id="negative-limit",
    ),
    pytest.param(
        {"tiers": _tiers(**{"free.models": ["not a model id"]})},
        "ai-gateway:tiers.free.models[0]",
        id="malformed-model-id",
    ),
    pytest.param(
        {"tiers": _tiers(**{"pro.maxOutputTokensPerTurn": 10**9})},
        "ai-gateway:tiers.pro.maxOutputTokensPerTurn",
        id="turn-larger-than-daily-allowance",
    ),
    pytest.param(
        {"tiers": _tiers(**{"free.dailyOutputTokens": "lots"})},
        "ai-gateway:tiers.free.dailyOutputTokens",
        id="limit-not-a-number",
    ),
    pytest.param(
        {"tiers": _tiers(**{"free.tokensPerDay": 5})},
        "ai-gateway:tiers.free.tokensPerDay",
        id="unknown-tier-setting",
    ),
    pytest.param({"defaultTier": "gold"}, "ai-gateway:defaultTier", id="default-tier-undefined"),
    pytest.param({"tiers": None}, "ai-gateway:tiers", id="no-tiers"),
    pytest.param({"logRetentionDays": 8}, "ai-gateway:logRetentionDays", id="bad-log-retention"),
    pytest.param(
        {"inboundNamespace": "chat/room"}, "ai-gateway:inboundNamespace", id="bad-namespace"
    ),
    pytest.param(
        {"outboundNamespace": "chat"}, "ai-gateway:outboundNamespace", id="namespaces-equal"
    ),
    pytest.param({"mfa": "SOMETIMES"}, "ai-gateway:mfa", id="bad-mfa"),
    pytest.param({"alarmEmail": "oncall"}, "ai-gateway:alarmEmail", id="bad-alarm-email"),
    pytest.param({"streamFlushMs": 0}, "ai-gateway:streamFlushMs", id="flush-interval-too-low"),
    pytest.param(
        {"tierConfigCacheSeconds": 600},
        "ai-gateway:tierConfigCacheSeconds",
        id="tier-cache-longer-than-a-minute",
    ),
    pytest.param({"waf": "maybe"}, "ai-gateway:waf", id="bool-not-a-bool"),
    pytest.param({"costCenter": " "}, "ai-gateway:costCenter", id="blank-cost-center"),
    pytest.param({"callbackUrls": ["ftp://x"]}, "ai-gateway:callbackUrls", id="bad-callback-url"),
    pytest.param(
        {"identityProviders": {"google": {"clientId": "x"}}},
        "ai-gateway:identityProviders.google.clientSecret",
        id="incomplete-identity-provider",
    ),
    pytest.param({"aws:region": "moon-1"}, "aws:region", id="bad-region"),
    # A pattern ending in `$` also matches before a trailing newline; every check is whole-string.
    pytest.param({"aws:region": "us-east-1\n"}, "aws:region", id="region-trailing-newline"),
    pytest.param(
        {"inboundNamespace": "chat\n"}, "ai-gateway:inboundNamespace", id="namespace-newline"
    ),
    pytest.param(
        {"alarmEmail": "oncall@example.org\n"}, "ai-gateway:alarmEmail", id="email-newline"
    ),
    pytest.param(
        {"tiers": _tiers(**{"free.defaultModel": "amazon.nova-micro-v1:0\n"})},
        "ai-gateway:tiers.free.defaultModel",
        id="model-id-newline",
    ),
    pytest.param({"chatMemoryMb": 64}, "ai-gateway:chatMemoryMb", id="memory-below-lambda-min"),
    pytest.param({"chatMemoryMb": 20480}, "ai-gateway:chatMemoryMb", id="memory-above-lambda-max"),
    pytest.param(
        {"chatReservedConcurrency": -1},
        "ai-gateway:chatReservedConcurrency",
        id="negative-reserved-concurrency",
    ),
    pytest.param(
        {"chatReservedConcurrency": "lots"},
        "ai-gateway:chatReservedConcurrency",
        id="reserved-concurrency-not-a-number",
    ),
    pytest.param(
        {"tiers": _tiers(**{"pro.models": [*DEV_PRO_MODELS, "meta.unknown-v1:0"]})},
        "ai-gateway:tiers.pro.models[3]",
        id="model-not-in-catalog",
    ),
    # --- the OpenAI-compatible API ---
    pytest.param({"openAi": "sometimes"}, "ai-gateway:openAi", id="open-ai-not-a-bool"),
    pytest.param(
        {"openAiThrottle": {"rate": 0, "burst": 10}},
        "ai-gateway:openAiThrottle.rate",
        id="throttle-rate-zero",
    ),
    pytest.param(
        {"openAiThrottle": {"rate": 20_000, "burst": 10}},
        "ai-gateway:openAiThrottle.rate",
        id="throttle-rate-above-the-region-quota",
    ),
    pytest.param(
        {"openAiThrottle": {"rate": 10, "burst": 9000}},
        "ai-gateway:openAiThrottle.burst",
        id="throttle-burst-above-the-region-quota",
    ),
    pytest.param(
        {"openAiThrottle": {"rate": 10, "bursts": 5}},
        "ai-gateway:openAiThrottle",
        id="throttle-unknown-key",
    ),
    pytest.param(
        {"openAiDomain": "api.example.com"},
        "ai-gateway:openAiCertificateArn",
        id="open-ai-domain-without-certificate",
    ),
    pytest.param(
        {
            "openAiDomain": "api.example.com",
            "openAiCertificateArn": (
                "arn:aws:acm:eu-west-1:123456789012:certificate/0f0e0d0c-1b1a-2c2b-3d3c-4e4d4c4b"
            ),
        },
        "ai-gateway:openAiCertificateArn",
        id="open-ai-certificate-in-another-region",
    ),
    pytest.param(
        {"openAiDomain": "not a host", "openAiCertificateArn": "x"},
        "ai-gateway:openAiDomain",
        id="open-ai-domain-not-a-hostname",
    ),
    pytest.param(
        {"machineClients": {"reporting-bot": {"tier": "gold"}}},
        "ai-gateway:machineClients.reporting-bot.tier",
        id="machine-client-unknown-tier",
    ),
    pytest.param(
        {"machineClients": {"Reporting Bot": {"tier": "pro"}}},
        "ai-gateway:machineClients.Reporting Bot",
        id="machine-client-bad-name",
    ),
    pytest.param(
        {"machineClients": {"reporting-bot": {"tier": "pro", "scopes": ["x"]}}},
        "ai-gateway:machineClients.reporting-bot",
        id="machine-client-unknown-setting",
    ),
    pytest.param(
        {"machineClients": ["reporting-bot"]},
        "ai-gateway:machineClients",
        id="machine-clients-not-a-mapping",
    ),
    pytest.param(
        {"openAi": False, "machineClients": {"reporting-bot": {"tier": "pro"}}},
        "ai-gateway:machineClients",
        id="machine-clients-without-the-api",
    ),
]


@pytest.mark.parametrize(("overrides", "key"), BAD_CONFIGS)
def test_bad_config_fails_naming_the_key(overrides, key):
    with pytest.raises(SettingsError) as failure:
        declare_stack("dev", overrides)
    assert str(failure.value).startswith(f"{key}:"), str(failure.value)


def test_tiers_that_are_not_json_fail_naming_the_key():
    # The engine hands object config to the program as a JSON string; a hand-edited string that
    # is not JSON must still be reported against its key.
    with pytest.raises(SettingsError, match=r"^ai-gateway:tiers: "):
        declare_stack("dev", {"tiers": "free: {models: [x]"})


def test_the_stack_files_are_valid(stack):
    assert stack.resources


def test_the_open_ai_settings_default_to_on_with_no_machine_clients():
    from settings import OpenAiSettings, load_settings

    defaults = load_stack_config("dev")
    settings = load_settings("dev", "us-east-1", lambda key: defaults.get(f"ai-gateway:{key}"))
    assert settings.open_ai == OpenAiSettings()
    assert settings.open_ai.enabled


def test_machine_clients_are_read_with_their_tiers():
    from settings import MachineClient, load_settings

    config = {
        **load_stack_config("dev"),
        "ai-gateway:machineClients": {"reporting-bot": {"tier": "pro"}, "etl": {"tier": "free"}},
    }
    settings = load_settings("dev", "us-east-1", lambda key: config.get(f"ai-gateway:{key}"))
    assert settings.open_ai.machine_clients == (
        MachineClient("etl", "free"),
        MachineClient("reporting-bot", "pro"),
    )
