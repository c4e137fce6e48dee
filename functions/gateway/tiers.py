"""The tier model: which models a Cognito group may use, and how many tokens and dollars it may
spend.

This module is the single source of truth for tier configuration. The Pulumi program validates
the stack's ``ai-gateway:tiers`` with it before declaring anything, and the functions parse the
published tier document with it at run time, so both sides always agree on its shape.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from gateway.model_ids import foundation_model_of, is_inference_profile
from gateway.pricing import NANO_PER_USD, ModelPrice
from gateway.tier_values import (
    TierConfigError,
    optional_count,
    optional_usd,
    parse_prices,
    positive_int,
    stream_flush_ms,
)

__all__ = [
    "MONEY_WINDOWS",
    "NANO_PER_USD",
    "WINDOWS",
    "Guardrail",
    "ModelPrice",
    "Tier",
    "TierConfig",
    "TierConfigError",
    "foundation_model_of",
    "is_inference_profile",
    "parse_tier_config",
]

#: The four token windows, by their config (and wire) names.
WINDOWS: tuple[str, ...] = (
    "dailyInputTokens",
    "dailyOutputTokens",
    "monthlyInputTokens",
    "monthlyOutputTokens",
)
#: The optional money windows (US dollars), by their config (and wire) names.
MONEY_WINDOWS: tuple[str, ...] = ("dailyUsd", "monthlyUsd")

# Bedrock model ids ("amazon.nova-lite-v1:0") and cross-region inference-profile ids
# ("us.anthropic.claude-3-5-haiku-20241022-v1:0"). Provider prefix, dotted name, optional version.
_MODEL_ID = re.compile(r"^(?:(us|eu|apac|global|us-gov|jp|au|ca)\.)?[a-z0-9-]+\.[A-Za-z0-9._:-]+$")
_GUARDRAIL_ID = re.compile(r"^[a-z0-9]+$")
_GUARDRAIL_VERSION = re.compile(r"^(DRAFT|[1-9][0-9]{0,7})$")
_TIER_NAME = re.compile(r"^[A-Za-z0-9_-]{1,128}$")

#: Request limits of a tier that does not set them: enough for anyone chatting by hand, and a
#: bound on what one user's script can make the gateway do.
DEFAULT_REQUESTS_PER_MINUTE = 60
DEFAULT_MAX_CONCURRENT_TURNS = 5


@dataclass(frozen=True)
class Guardrail:
    """A Bedrock guardrail applied to every model call of a tier."""

    identifier: str
    version: str


@dataclass(frozen=True)
class Tier:
    """One tier: a Cognito group name, its model allowlist and its token limits."""

    name: str
    models: tuple[str, ...]
    default_model: str
    daily_input_tokens: int
    daily_output_tokens: int
    monthly_input_tokens: int
    monthly_output_tokens: int
    max_output_tokens_per_turn: int
    cache: bool
    precedence: int
    fallback_model: str | None = None
    guardrail: Guardrail | None = None
    #: As written in the config (None: the default applies; see the properties below).
    requests_per_minute_setting: int | None = None
    max_concurrent_turns_setting: int | None = None
    #: The tier's coalescing interval of stream deltas (None: the stack-wide ``streamFlushMs``).
    stream_flush_ms: int | None = None
    #: Money allowances in US dollars (None: no money limit in that window).
    daily_usd: float | None = None
    monthly_usd: float | None = None

    @property
    def money_windows(self) -> tuple[str, ...]:
        """The money windows this tier sets."""
        return tuple(w for w in MONEY_WINDOWS if self.money_limit(w) is not None)

    def money_limit(self, window: str) -> int | None:
        """A money window's allowance in nano-dollars (None: not set)."""
        usd = {"dailyUsd": self.daily_usd, "monthlyUsd": self.monthly_usd}[window]
        return None if usd is None else round(usd * NANO_PER_USD)

    @property
    def requests_per_minute(self) -> int:
        return self.requests_per_minute_setting or DEFAULT_REQUESTS_PER_MINUTE

    @property
    def max_concurrent_turns(self) -> int:
        return self.max_concurrent_turns_setting or DEFAULT_MAX_CONCURRENT_TURNS

    def allows(self, model_id: str) -> bool:
        return model_id in self.models

    def limit(self, window: str) -> int:
        """The allowance of one window, by its config name (``dailyInputTokens``...)."""
        return {
            "dailyInputTokens": self.daily_input_tokens,
            "dailyOutputTokens": self.daily_output_tokens,
            "monthlyInputTokens": self.monthly_input_tokens,
            "monthlyOutputTokens": self.monthly_output_tokens,
        }[window]

    def to_document(self) -> dict[str, Any]:
        """The tier as written in the stack config (camelCase keys)."""
        doc: dict[str, Any] = {
            "models": list(self.models),
            "defaultModel": self.default_model,
            "dailyInputTokens": self.daily_input_tokens,
            "dailyOutputTokens": self.daily_output_tokens,
            "monthlyInputTokens": self.monthly_input_tokens,
            "monthlyOutputTokens": self.monthly_output_tokens,
            "maxOutputTokensPerTurn": self.max_output_tokens_per_turn,
            "cache": self.cache,
            "precedence": self.precedence,
        }
        if self.fallback_model:
            doc["fallbackModel"] = self.fallback_model
        if self.guardrail:
            doc["guardrail"] = {
                "identifier": self.guardrail.identifier,
                "version": self.guardrail.version,
            }
        for name, value in (
            ("requestsPerMinute", self.requests_per_minute_setting),
            ("maxConcurrentTurns", self.max_concurrent_turns_setting),
            ("streamFlushMs", self.stream_flush_ms),
            ("dailyUsd", self.daily_usd),
            ("monthlyUsd", self.monthly_usd),
        ):
            if value is not None:
                doc[name] = value
        return doc


@dataclass(frozen=True)
class TierConfig:
    """All tiers of a stack and the tier of users who belong to no tier group."""

    default_tier: str
    tiers: Mapping[str, Tier] = field(default_factory=dict)
    #: Each model's price (from the model catalog), by every id a tier uses.
    prices: Mapping[str, ModelPrice] = field(default_factory=dict)
    #: The models whose tokens Bedrock's CountTokens can count (from the model catalog).
    countable: frozenset[str] = frozenset()

    def price_of(self, model_id: str) -> ModelPrice | None:
        return self.prices.get(model_id)

    def with_prices(
        self, prices: Mapping[str, ModelPrice], countable: frozenset[str] = frozenset()
    ) -> TierConfig:
        """This config with prices; a tier with a money window needs one for every model."""
        for tier in self.tiers.values():
            if not tier.money_windows:
                continue
            for model in (*tier.models, *([tier.fallback_model] if tier.fallback_model else [])):
                if model not in prices:
                    raise TierConfigError(
                        f"ai-gateway:tiers.{tier.name}: '{model}' has no price, so its "
                        "dailyUsd/monthlyUsd cannot be metered"
                    )
        return TierConfig(self.default_tier, self.tiers, dict(prices), frozenset(countable))

    def tier_for_groups(self, groups: Iterable[str] | None) -> Tier:
        """The tier of a user in ``groups``: the matching tier with the lowest precedence wins,
        as Cognito ranks groups; users in no tier group get the default tier."""
        matching = [self.tiers[g] for g in (groups or ()) if g in self.tiers]
        if not matching:
            return self.tiers[self.default_tier]
        return min(matching, key=lambda t: (t.precedence, t.name))

    def all_models(self) -> tuple[str, ...]:
        """Every model any tier may call (allowlists and fallbacks), sorted and unique."""
        models: set[str] = set()
        for tier in self.tiers.values():
            models.update(tier.models)
            if tier.fallback_model:
                models.add(tier.fallback_model)
        return tuple(sorted(models))

    def to_document(self) -> dict[str, Any]:
        """The JSON document the functions read at run time."""
        doc: dict[str, Any] = {
            "defaultTier": self.default_tier,
            "tiers": {name: tier.to_document() for name, tier in self.tiers.items()},
        }
        if self.prices:
            doc["prices"] = {m: p.to_document() for m, p in sorted(self.prices.items())}
        if self.countable:
            doc["countTokens"] = sorted(self.countable)
        return doc

    @classmethod
    def from_document(cls, doc: Mapping[str, Any]) -> TierConfig:
        """Parse the run-time document (the shape :meth:`to_document` writes)."""
        config = parse_tier_config(doc.get("tiers"), doc.get("defaultTier"))
        counted = doc.get("countTokens")
        countable = (
            frozenset(m for m in counted if isinstance(m, str))
            if isinstance(counted, list)
            else frozenset()
        )
        return config.with_prices(parse_prices(doc.get("prices")), countable)


_LIMIT_KEYS = (*WINDOWS, "maxOutputTokensPerTurn")
_KNOWN_TIER_KEYS = frozenset(
    {
        *_LIMIT_KEYS,
        "models",
        "defaultModel",
        "cache",
        "precedence",
        "fallbackModel",
        "guardrail",
        "requestsPerMinute",
        "maxConcurrentTurns",
        "streamFlushMs",
        *MONEY_WINDOWS,
    }
)


def parse_tier_config(tiers: Any, default_tier: Any, *, prefix: str = "ai-gateway:") -> TierConfig:
    """Validate raw tier config and build a :class:`TierConfig`.

    Raises :class:`TierConfigError` naming the exact key (``ai-gateway:tiers.free.defaultModel``)
    and what is wrong with it.
    """
    if not isinstance(tiers, Mapping) or not tiers:
        raise TierConfigError(f"{prefix}tiers: must be a non-empty mapping of tier name to tier")
    if not isinstance(default_tier, str) or not default_tier:
        raise TierConfigError(f"{prefix}defaultTier: must name one of the tiers")
    if default_tier not in tiers:
        raise TierConfigError(
            f"{prefix}defaultTier: '{default_tier}' is not a defined tier "
            f"(defined: {', '.join(sorted(map(str, tiers)))})"
        )
    count = len(tiers)
    parsed = {
        name: _parse_tier(name, raw, f"{prefix}tiers.{name}", default_precedence=10 * (count - i))
        for i, (name, raw) in enumerate(tiers.items())
    }
    precedences: dict[int, str] = {}
    for tier in parsed.values():
        if tier.precedence in precedences:
            raise TierConfigError(
                f"{prefix}tiers.{tier.name}.precedence: {tier.precedence} is also the precedence "
                f"of tier '{precedences[tier.precedence]}'; each tier needs its own"
            )
        precedences[tier.precedence] = tier.name
    return TierConfig(default_tier=default_tier, tiers=parsed)


def _parse_models(raw: Mapping[str, Any], key: str) -> tuple[list[str], str]:
    """A tier's model allowlist and its default model."""
    models = raw.get("models")
    if not isinstance(models, list) or not models:
        raise TierConfigError(f"{key}.models: must be a non-empty list of Bedrock model ids")
    for i, model in enumerate(models):
        if not isinstance(model, str) or not _MODEL_ID.fullmatch(model):
            raise TierConfigError(f"{key}.models[{i}]: '{model}' is not a Bedrock model id")
    if len(set(models)) != len(models):
        raise TierConfigError(f"{key}.models: lists a model more than once")
    default_model = raw.get("defaultModel", models[0])
    if default_model not in models:
        raise TierConfigError(f"{key}.defaultModel: '{default_model}' is not in this tier's models")
    return models, default_model


def _parse_limits(raw: Mapping[str, Any], key: str) -> dict[str, int]:
    """A tier's token limits, each window consistent with the others."""
    limits = {k: positive_int(raw.get(k), f"{key}.{k}") for k in _LIMIT_KEYS}
    if limits["maxOutputTokensPerTurn"] > limits["dailyOutputTokens"]:
        raise TierConfigError(
            f"{key}.maxOutputTokensPerTurn: {limits['maxOutputTokensPerTurn']} exceeds "
            f"dailyOutputTokens ({limits['dailyOutputTokens']}); no turn could be admitted"
        )
    for daily, monthly in (
        ("dailyInputTokens", "monthlyInputTokens"),
        ("dailyOutputTokens", "monthlyOutputTokens"),
    ):
        if limits[daily] > limits[monthly]:
            raise TierConfigError(
                f"{key}.{daily}: {limits[daily]} exceeds {monthly} ({limits[monthly]})"
            )
    return limits


def _parse_tier(name: Any, raw: Any, key: str, *, default_precedence: int) -> Tier:
    if not isinstance(name, str) or not _TIER_NAME.fullmatch(name):
        raise TierConfigError(
            f"{key}: tier names are Cognito group names (letters, digits, '-', '_', ≤ 128)"
        )
    if not isinstance(raw, Mapping):
        raise TierConfigError(f"{key}: must be a mapping of tier settings")
    unknown = sorted(set(raw) - _KNOWN_TIER_KEYS)
    if unknown:
        raise TierConfigError(f"{key}.{unknown[0]}: unknown tier setting")

    models, default_model = _parse_models(raw, key)
    limits = _parse_limits(raw, key)

    cache = raw.get("cache", False)
    if not isinstance(cache, bool):
        raise TierConfigError(f"{key}.cache: must be true or false")

    precedence = raw.get("precedence", default_precedence)
    if isinstance(precedence, bool) or not isinstance(precedence, int) or precedence < 0:
        raise TierConfigError(f"{key}.precedence: must be a non-negative integer")

    fallback = raw.get("fallbackModel")
    if fallback is not None:
        if not isinstance(fallback, str) or not _MODEL_ID.fullmatch(fallback):
            raise TierConfigError(f"{key}.fallbackModel: '{fallback}' is not a Bedrock model id")
        if fallback not in models:
            raise TierConfigError(f"{key}.fallbackModel: '{fallback}' is not in this tier's models")

    return Tier(
        name=name,
        models=tuple(models),
        default_model=default_model,
        daily_input_tokens=limits["dailyInputTokens"],
        daily_output_tokens=limits["dailyOutputTokens"],
        monthly_input_tokens=limits["monthlyInputTokens"],
        monthly_output_tokens=limits["monthlyOutputTokens"],
        max_output_tokens_per_turn=limits["maxOutputTokensPerTurn"],
        cache=cache,
        precedence=precedence,
        fallback_model=fallback,
        guardrail=_parse_guardrail(raw.get("guardrail"), f"{key}.guardrail"),
        requests_per_minute_setting=optional_count(
            raw.get("requestsPerMinute"), f"{key}.requestsPerMinute", "requests", 100_000
        ),
        max_concurrent_turns_setting=optional_count(
            raw.get("maxConcurrentTurns"), f"{key}.maxConcurrentTurns", "turns", 1_000
        ),
        stream_flush_ms=stream_flush_ms(raw.get("streamFlushMs"), f"{key}.streamFlushMs"),
        daily_usd=optional_usd(raw.get("dailyUsd"), f"{key}.dailyUsd"),
        monthly_usd=optional_usd(raw.get("monthlyUsd"), f"{key}.monthlyUsd"),
    )


def _parse_guardrail(raw: Any, key: str) -> Guardrail | None:
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        raise TierConfigError(f"{key}: must be a mapping with identifier and version")
    identifier, version = raw.get("identifier"), str(raw.get("version", "DRAFT"))
    if not isinstance(identifier, str) or not _GUARDRAIL_ID.fullmatch(identifier):
        raise TierConfigError(f"{key}.identifier: '{identifier}' is not a guardrail id")
    if not _GUARDRAIL_VERSION.fullmatch(version):
        raise TierConfigError(f"{key}.version: '{version}' is not DRAFT or a version number")
    return Guardrail(identifier=identifier, version=version)
