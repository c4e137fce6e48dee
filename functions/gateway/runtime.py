"""The one place real adapters are built, lazily, from a function's :class:`FunctionEnvironment`.

Nothing here runs at import: boto3 is imported and clients are created on a function's first
turn, then reused by every warm invocation (and by the local runtime's concurrent threads —
boto3 clients are thread-safe, sessions are not, so clients are created under a lock). Under
Lambda SnapStart, :meth:`Runtime.prime` does that first-turn work at init instead, and
:meth:`Runtime.after_restore` drops what a snapshot must not carry (see ``gateway.snapstart``).
Tests build a :class:`Runtime` with fakes for any port and leave the rest real.
"""

from __future__ import annotations

import os
import random
import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from gateway.environment import FunctionEnvironment
from gateway.events_door import EventsDoor, EventsDoorSettings
from gateway.ports import (
    AnalyticsSink,
    Clock,
    ModelProvider,
    NoTokenCounter,
    PreparedKeySource,
    StopSignals,
    SystemClock,
    TierSource,
    TokenCounter,
    TurnLog,
    TurnMetrics,
    TurnStore,
)
from gateway.relay import Publisher
from gateway.tier_parameter import ParameterTierSource
from gateway.turn import ChatTurns, TurnDeps, TurnSettings
from gateway.wire import RequestLimits

if TYPE_CHECKING:
    # Imported where the OpenAI door is built: the chat function never builds it, so its
    # handler import does not pay for the door's wire models.
    from gateway.openai.door import OpenAiDoor


class _LazyClient:
    """A boto3 client created on first use."""

    def __init__(self, build: Callable[[], Any]) -> None:
        self._build = build
        self._client: Any = None
        self._lock = threading.Lock()

    def __call__(self) -> Any:
        if self._client is None:
            with self._lock:
                if self._client is None:
                    self._client = self._build()
        return self._client

    def close_connections(self) -> None:
        """Close the built client's pooled connections (it opens new ones when next used)."""
        if self._client is not None:
            self._client.close()


class Runtime:
    """Ports of one function configuration; any of them may be given (tests), the rest are
    built from ``env`` when first needed."""

    def __init__(
        self,
        env: FunctionEnvironment,
        *,
        log: TurnLog | None = None,
        tiers: TierSource | None = None,
        store: TurnStore | None = None,
        provider: ModelProvider | None = None,
        publisher: Publisher | None = None,
        analytics: AnalyticsSink | None = None,
        metrics: TurnMetrics | None = None,
        stops: StopSignals | None = None,
        counter: TokenCounter | None = None,
        clock: Clock | None = None,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        self.env = env
        self._given: dict[str, Any] = {
            "tiers": tiers,
            "store": store,
            "provider": provider,
            "publisher": publisher,
            "analytics": analytics,
            "metrics": metrics,
            "stops": stops,
            "counter": counter,
        }
        self._log = log
        self._clock = clock or SystemClock()
        self._sleep = sleep
        self._lock = threading.Lock()
        self._session_lock = threading.RLock()  # sessions are not thread-safe
        self._session: Any = None
        self._clients: list[_LazyClient] = []
        self._core: ChatTurns | None = None
        self._events: EventsDoor | None = None
        self._openai: OpenAiDoor | None = None

    def core(self, log: TurnLog | None = None) -> ChatTurns:
        """The turn core of this configuration, built on first use."""
        if self._core is None:
            with self._lock:
                if self._core is None:
                    self._core = self._build_core(log)
        return self._core

    def events_door(self, log: TurnLog | None = None) -> EventsDoor:
        """The chat channel's door onto the core, built on first use."""
        core = self.core(log)
        if self._events is None:
            with self._lock:
                if self._events is None:
                    env = self.env
                    self._events = EventsDoor(
                        core,
                        self._given["publisher"] or self._publisher(),
                        EventsDoorSettings(
                            inbound_namespace=env.inbound_namespace,
                            outbound_namespace=env.outbound_namespace,
                            limits=RequestLimits(env.max_messages, env.max_message_chars),
                            flush_interval=env.stream_flush_ms / 1000.0,
                        ),
                        core.deps.log,
                    )
        return self._events

    def openai_door(
        self, machine_tiers: Mapping[str, str], log: TurnLog | None = None
    ) -> OpenAiDoor:
        """The OpenAI-compatible API's door onto the same core, built on first use."""
        from gateway.openai.door import OpenAiDoor, OpenAiDoorSettings
        from gateway.openai.wire import WireLimits

        core = self.core(log)
        if self._openai is None:
            with self._lock:
                if self._openai is None:
                    env = self.env
                    limits = WireLimits(env.max_messages, env.max_message_chars)
                    self._openai = OpenAiDoor(
                        core, OpenAiDoorSettings(limits, dict(machine_tiers)), core.deps.log
                    )
        return self._openai

    # -- Lambda SnapStart ---------------------------------------------------------------------

    def prime(self, log: TurnLog | None = None) -> None:
        """Do now the one-time work a function's first turn would otherwise do: import the
        turn's modules, build the core, the chat door and every AWS client (botocore loads each
        service's model when its first client is built), read the tier document and the
        prepared-key index. Lambda SnapStart runs this before its snapshot, so every execution
        environment restored from it starts with the work done."""
        core = self.events_door(log).core
        for client in list(self._clients):
            client()
        self._refresh(core)

    def after_restore(self) -> None:
        """Drop what a SnapStart snapshot must not carry into a restored environment, and read
        again what may have changed since it was taken.

        - Connections: those opened before the snapshot lead nowhere after a restore; every
          client's pool and the publisher's are closed, and reopened by the first request.
        - The tier document and the prepared-key index are as old as the snapshot: both are read
          again here, side by side, so the first turn finds them fresh and its only extra
          request is its user's usage read.
        - Pseudorandomness: every environment restored from one snapshot would draw the same
          retry jitter, so ``random`` is reseeded from the OS.

        AWS: "To maintain uniqueness when using SnapStart, you must generate unique content after
        initialization. This includes ... entropy that's used to generate pseudorandomness"
        (https://docs.aws.amazon.com/lambda/latest/dg/snapstart-uniqueness.html)."""
        from gateway.publisher import close_connections

        random.seed()
        for client in list(self._clients):
            client.close_connections()
        close_connections()
        if self._core is None:
            return
        tiers = self._core.deps.tiers
        if isinstance(tiers, ParameterTierSource):
            tiers.expire()
        index = self._core.admission.prepared_index
        if index is not None:
            index.forget()
        self._refresh(self._core)

    def _refresh(self, core: ChatTurns) -> None:
        """Read the tier document and the prepared-key index, side by side; a failure leaves
        each to be read by the first turn that needs it, as on a function without SnapStart."""
        log = core.deps.log
        index = core.admission.prepared_index

        def tiers() -> None:
            try:
                core.deps.tiers.current()
            except Exception as err:
                log.warning("tier config not read ahead", extra={"reason": str(err)[:200]})

        reads = [threading.Thread(target=tiers, name="tier-config", daemon=True)]
        if index is not None:
            reads.append(threading.Thread(target=index.refresh, name="prepared-index", daemon=True))
        for read in reads:
            read.start()
        for read in reads:
            # A restore hook has 10 s in all; a stuck read is left to finish in the background.
            # https://docs.aws.amazon.com/lambda/latest/dg/snapstart-runtime-hooks-python.html
            read.join(timeout=4.0)

    def _build_core(self, log: TurnLog | None) -> ChatTurns:
        env = self.env
        store = self._given["store"] or self._store()
        deps = TurnDeps(
            tiers=self._given["tiers"] or self._tier_source(),
            store=store,
            provider=self._given["provider"] or self._provider(),
            analytics=self._given["analytics"] or self._analytics(),
            metrics=self._given["metrics"] or self._metrics(),
            log=self._log or log or _default_log(),
            clock=self._clock,
            stops=self._given["stops"] or self._stop_signals(),
            prepared_keys=_prepared_key_source(store),
        )
        deps.counter = self._given["counter"] or self._counter(deps)
        if self._sleep is not None:
            deps.sleep = self._sleep
        settings = TurnSettings(
            metering_fail_open=env.metering_fail_open,
            message_preview_chars=env.message_preview_chars,
            # One setting says how soon an operator's change reaches warm functions: the tier
            # config and the prepared-response index are refreshed on the same period.
            prepared_index_seconds=float(env.tier_config_cache_seconds),
        )
        return ChatTurns(deps, settings)

    # -- adapters ------------------------------------------------------------------------------

    def _boto_session(self) -> Any:
        with self._session_lock:
            if self._session is None:
                import boto3

                self._session = boto3.session.Session()
            return self._session

    def _client(self, service: str, *, max_attempts: int = 3, **config: Any) -> _LazyClient:
        def build() -> Any:
            from botocore.config import Config

            with self._session_lock:
                return self._boto_session().client(
                    service,
                    config=Config(
                        retries={"mode": "standard", "max_attempts": max_attempts},
                        tcp_keepalive=True,
                        max_pool_connections=32,
                        **config,
                    ),
                )

        client = _LazyClient(build)
        self._clients.append(client)
        return client

    def _tier_source(self) -> TierSource:
        return ParameterTierSource(
            self.env.tier_config_parameter, self.env.tier_config_cache_seconds
        )

    def _store(self) -> TurnStore:
        from gateway.usage_store import DynamoTurnStore

        client = self._client("dynamodb", connect_timeout=2, read_timeout=3)
        return DynamoTurnStore(client, self.env.usage_table, self.env.prepared_responses_table)

    def _stop_signals(self) -> StopSignals:
        from gateway.schema import USAGE_TABLE
        from gateway.stop import DynamoStopSignals, NoStopSignals

        if not self.env.usage_table:
            return NoStopSignals()
        # One attempt, short timeouts: a stop check is one request per interval at most, and
        # a slow one must not hold up the stream it runs between.
        client = self._client("dynamodb", max_attempts=1, connect_timeout=1, read_timeout=1)
        return DynamoStopSignals(
            client,
            self.env.usage_table,
            partition_key=USAGE_TABLE.partition_key,
            ttl_attribute=USAGE_TABLE.ttl_attribute,
        )

    def _provider(self) -> ModelProvider:
        from gateway.providers import BedrockProvider, LocalModel, OpenAICompatibleProvider

        kind = self.env.model_provider.strip().lower()
        if kind == "local":
            return LocalModel(self.env.local_model_tokens_per_second)
        if kind == "openai":
            return OpenAICompatibleProvider(self.env.openai_base_url, model=self.env.openai_model)
        if kind == "bedrock":
            return BedrockProvider(
                self._client("bedrock-runtime", connect_timeout=5, read_timeout=60)
            )
        raise ValueError(f"MODEL_PROVIDER must be bedrock, local or openai, got {kind!r}")

    def _counter(self, deps: TurnDeps) -> TokenCounter:
        """Exact counts from the provider this runtime built (none for a provider given)."""
        from gateway.counting import BedrockTokenCounter, LocalTokenCounter

        if self._given["provider"] is not None:
            return NoTokenCounter()
        kind = self.env.model_provider.strip().lower()
        if kind == "local":
            return LocalTokenCounter(deps.tiers)
        if kind == "bedrock":
            client = self._client(
                "bedrock-runtime", max_attempts=1, connect_timeout=2, read_timeout=3
            )
            return BedrockTokenCounter(client, deps.tiers, deps.log)
        return NoTokenCounter()

    def _publisher(self) -> Publisher:
        from gateway.publisher import EventsHttpPublisher

        def credentials() -> Any:
            with self._session_lock:
                found = self._boto_session().get_credentials()
            return found.get_frozen_credentials() if found is not None else None

        region = (
            os.environ.get("AWS_REGION")
            or os.environ.get("AWS_DEFAULT_REGION")
            or self._boto_session().region_name
            or ""
        )
        return EventsHttpPublisher(
            self.env.events_http_endpoint, region=region, credentials=credentials
        )

    def _analytics(self) -> AnalyticsSink:
        from gateway.telemetry import FirehoseAnalytics, NoAnalytics

        if not self.env.analytics_stream:
            return NoAnalytics()
        client = self._client("firehose", connect_timeout=2, read_timeout=3)
        return FirehoseAnalytics(client, self.env.analytics_stream)

    def _metrics(self) -> TurnMetrics:
        from gateway.telemetry import EmfTurnMetrics

        return EmfTurnMetrics()


def _prepared_key_source(store: TurnStore) -> PreparedKeySource | None:
    """The store as a lister of prepared keys, where it is one (the DynamoDB store is; a test's
    in-memory store may not be)."""
    from gateway.usage_store import DynamoTurnStore

    return store if isinstance(store, DynamoTurnStore) else None


def _default_log() -> TurnLog:
    import logging

    return logging.getLogger("ai-gateway.turn")


_runtimes: dict[FunctionEnvironment, Runtime] = {}
_runtimes_lock = threading.Lock()


def runtime_for(env: FunctionEnvironment, *, log: TurnLog | None = None) -> Runtime:
    """The process's runtime for ``env`` — one per configuration, kept across invocations."""
    runtime = _runtimes.get(env)
    if runtime is None:
        with _runtimes_lock:
            runtime = _runtimes.setdefault(env, Runtime(env, log=log))
    return runtime
