"""The tier document as the functions read it: one SSM parameter, cached by Powertools."""

from __future__ import annotations

import threading
from typing import Any

from gateway.tiers import TierConfig


class ParameterTierSource:
    """The tier document from SSM Parameter Store through Powertools' cache (``max_age``), so a
    tier change reaches a warm function within ``TIER_CONFIG_CACHE_SECONDS``."""

    def __init__(self, parameter_name: str, max_age: int) -> None:
        self._name = parameter_name
        self._max_age = max_age
        self._lock = threading.Lock()
        self._document: Any = None
        self._config: TierConfig | None = None

    def current(self) -> TierConfig:
        if not self._name:
            raise RuntimeError("TIER_CONFIG_PARAMETER is not set")
        from aws_lambda_powertools.utilities import parameters

        document = parameters.get_parameter(self._name, transform="json", max_age=self._max_age)
        with self._lock:
            if self._config is None or document != self._document:
                self._config = TierConfig.from_document(document)
                self._document = document
            return self._config

    def expire(self) -> None:
        """Forget the cached document (the next :meth:`current` reads it again) and close the
        parameter client's connections: after a SnapStart restore both are as old as the
        snapshot. The client itself, whose service model is the costly part, is kept."""
        from aws_lambda_powertools.utilities.parameters.constants import DEFAULT_PROVIDERS

        provider = DEFAULT_PROVIDERS.get("ssm")
        if provider is not None:
            provider.clear_cache()
            provider.client.close()
