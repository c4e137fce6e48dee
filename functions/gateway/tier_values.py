"""Validators of single tier settings; each error names the offending key."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gateway.pricing import ModelPrice

#: Range of a tier's ``streamFlushMs`` (the stack-wide setting has the same range).
STREAM_FLUSH_MS_RANGE = (10, 5000)


class TierConfigError(ValueError):
    """A tier configuration value is invalid; the message names the offending key."""


def optional_count(value: Any, key: str, unit: str, maximum: int) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise TierConfigError(f"{key}: must be a whole number of {unit}, got {value!r}")
    if not 1 <= value <= maximum:
        raise TierConfigError(f"{key}: must be between 1 and {maximum}, got {value}")
    return value


def stream_flush_ms(value: Any, key: str) -> int | None:
    if value is None:
        return None
    low, high = STREAM_FLUSH_MS_RANGE
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise TierConfigError(
            f"{key}: must be a whole number of milliseconds from {low} to {high}, got {value!r}"
        )
    return value


def optional_usd(value: Any, key: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 1e6:
        raise TierConfigError(f"{key}: must be an amount of US dollars above 0, got {value!r}")
    return float(value)


def parse_prices(raw: Any) -> dict[str, ModelPrice]:
    if not isinstance(raw, Mapping):
        return {}
    prices: dict[str, ModelPrice] = {}
    for model, price in raw.items():
        if isinstance(price, Mapping):
            prices[str(model)] = ModelPrice(float(price["inputPer1k"]), float(price["outputPer1k"]))
    return prices


def positive_int(value: Any, key: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TierConfigError(f"{key}: must be a whole number of tokens, got {value!r}")
    if value <= 0:
        raise TierConfigError(f"{key}: must be greater than zero, got {value}")
    return value
