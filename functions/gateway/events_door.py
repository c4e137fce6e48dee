"""The AppSync Events door: the chat channel's published events in, the relay's events out.

It does only what is particular to this door: the caller's identity as AppSync authenticated it,
the ownership of the channel the event was published to, the payload's parsing (a chat turn, or
a stop request), and the turn's answer as numbered, coalesced events on the caller's own
outbound channel (:class:`gateway.relay.StreamRelay`). Everything else — admission, the model,
settlement, the record — is the turn core's (:class:`gateway.turn.ChatTurns`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from gateway.access import Caller, caller_from_identity, owns_channel
from gateway.contract import ErrorCode, channel, new_turn_id
from gateway.environment import DEFAULT_STREAM_FLUSH_MS
from gateway.outbound import ErrorBody, UsageBody, failure_body, terminal_body, usage_body
from gateway.ports import OutputReport, TurnLog
from gateway.relay import Publisher, StreamRelay
from gateway.telemetry import TurnRecord
from gateway.turn import ChatTurns
from gateway.turn_io import (
    EVENTS_DOOR,
    ChatMessage,
    TurnFailed,
    TurnOutcome,
    TurnRequest,
)
from gateway.wire import (
    ChatRequest,
    InvalidRequest,
    RequestLimits,
    StopRequest,
    UsageRequest,
    parse_inbound,
    printable,
    salvage_ids,
)


@dataclass(frozen=True)
class InboundEvent:
    """One event published to an inbound channel, as AppSync delivered it."""

    identity: Any
    channel_path: Any
    channel_segments: Any
    payload: Any
    request_id: str
    event_id: str | None = None


def inbound_events(event: dict[str, Any], request_id: str) -> list[InboundEvent]:
    """The published events of an AppSync invocation, each with its caller and channel."""
    info = event.get("info")
    found = info.get("channel") if isinstance(info, dict) else None
    channel: dict[str, Any] = found if isinstance(found, dict) else {}
    events = event.get("events")
    return [
        InboundEvent(
            identity=event.get("identity"),
            channel_path=channel.get("path"),
            channel_segments=channel.get("segments"),
            payload=item.get("payload") if isinstance(item, dict) else None,
            request_id=request_id,
            event_id=item.get("id") if isinstance(item, dict) else None,
        )
        for item in (events if isinstance(events, list) else ())
    ]


@dataclass(frozen=True)
class EventsDoorSettings:
    inbound_namespace: str
    outbound_namespace: str
    limits: RequestLimits
    #: The stack's coalescing interval (a tier may set its own), in seconds.
    flush_interval: float = DEFAULT_STREAM_FLUSH_MS / 1000.0


class RelayOutput:
    """A turn's output on the caller's outbound channel (the core's ``TurnOutput``)."""

    def __init__(self, relay: Callable[[str], StreamRelay], turn_id: str, request_id: str) -> None:
        self._make = relay
        self._relay = relay(turn_id)
        self._request_id = request_id
        self._sent = False

    def delta(self, text: str) -> None:
        self._sent = True
        self._relay.delta(text)

    def cancelled(self) -> bool:
        return False  # AppSync tells a function nothing of its subscribers; a user stops a turn

    def publish_only(self, body: UsageBody | ErrorBody) -> None:
        """Publish one event that is no turn's answer (a usage report)."""
        self._relay.finish(body)

    def finish(self, outcome: TurnOutcome) -> OutputReport:
        relay = self._relay
        if isinstance(outcome, TurnFailed) and outcome.answer_turn_id and not self._sent:
            # Answered under a turn id of its own, so it cannot join another turn's events.
            relay = self._make(outcome.answer_turn_id)
        report = relay.finish(terminal_body(outcome, self._request_id))
        return OutputReport(
            events_published=report.events_published,
            events_failed=report.events_failed,
            publish_retries=report.publish_retries,
            terminal_type=report.terminal_type,
            terminal_code=report.terminal_code,
        )


class EventsDoor:
    """Runs each event published to the chat channel as a turn (or a stop)."""

    def __init__(
        self,
        core: ChatTurns,
        publisher: Publisher,
        settings: EventsDoorSettings,
        log: TurnLog,
    ) -> None:
        self.core = core
        self.settings = settings
        self._publisher = publisher
        self._log = log

    def handle(self, event: InboundEvent) -> TurnRecord | None:
        """Run one event to its terminal event, or record one stop request. Returns the turn's
        analytics record (``None`` when there is no user to answer, or for a stop).

        Never raises: whatever the payload holds, a user's event ends with exactly one terminal
        event on their own channel (a valid stop request with none)."""
        try:
            caller = caller_from_identity(event.identity)
        except Exception:  # an identity no AppSync event carries
            caller = None
        if caller is None:
            self._log.warning(
                "publish without a user identity dropped",
                extra={"channel": printable(str(event.channel_path)[:200])},
            )
            self.core.dropped(ErrorCode.UNAUTHORIZED)
            return None
        request_id = str(event.request_id)
        conversation_id, turn_id = None, new_turn_id()
        try:
            conversation_id, salvaged = salvage_ids(event.payload)
            turn_id = salvaged or turn_id
            if not owns_channel(
                caller,
                self.settings.inbound_namespace,
                event.channel_path,
                event.channel_segments,
            ):
                failure = TurnFailed(ErrorCode.UNAUTHORIZED)
                return self._refuse(caller, failure, request_id, turn_id, conversation_id)
            try:
                parsed = parse_inbound(event.payload, self.settings.limits)
            except InvalidRequest as err:
                failure = TurnFailed(ErrorCode.INVALID_REQUEST, str(err))
                return self._refuse(caller, failure, request_id, turn_id, conversation_id)
            if isinstance(parsed, StopRequest):
                self.core.request_stop(caller, parsed.turnId)
                return None
            if isinstance(parsed, UsageRequest):
                self._answer_usage(caller, parsed.turnId or turn_id, request_id)
                return None
            request = _turn_request(caller, parsed, request_id, turn_id)
        except Exception:
            self._log.exception("turn failed", extra={"turn": turn_id})
            failure = TurnFailed(ErrorCode.INTERNAL_ERROR)
            return self._refuse(caller, failure, request_id, turn_id, conversation_id)
        return self.core.run(
            request, self._output(caller, request.conversation_id, turn_id, request_id)
        )

    def _answer_usage(self, caller: Caller, turn_id: str, request_id: str) -> None:
        """Publish the caller's usage as one ``usage`` event (or an ``error``)."""
        report = self.core.usage(caller)
        body: UsageBody | ErrorBody
        if isinstance(report, TurnFailed):
            body = failure_body(report, request_id)
        else:
            body = usage_body(report)
        self._output(caller, None, turn_id, request_id).publish_only(body)

    def _refuse(
        self,
        caller: Caller,
        failure: TurnFailed,
        request_id: str,
        turn_id: str,
        conversation_id: str | None,
    ) -> TurnRecord:
        output = self._output(caller, conversation_id, turn_id, request_id)
        return self.core.refuse(
            caller,
            failure,
            output,
            request_id=request_id,
            turn_id=turn_id,
            conversation_id=conversation_id,
        )

    def _output(
        self, caller: Caller, conversation_id: str | None, turn_id: str, request_id: str
    ) -> RelayOutput:
        outbound = channel(self.settings.outbound_namespace, caller.sub)
        interval = self._flush_interval(caller)

        def lost(err: Exception) -> None:
            self._log.warning("publish failed", extra={"reason": type(err).__name__})

        def relay(answer_turn_id: str) -> StreamRelay:
            return StreamRelay(
                self._publisher,
                outbound,
                conversation_id,
                answer_turn_id,
                flush_interval=interval,
                on_error=lost,
                request_id=request_id,
            )

        return RelayOutput(relay, turn_id, request_id)

    def _flush_interval(self, caller: Caller) -> float:
        """The caller's tier's coalescing interval, else the stack's (seconds)."""
        tier = self.core.tier_of(caller)
        if tier is None or tier.stream_flush_ms is None:
            return self.settings.flush_interval
        return tier.stream_flush_ms / 1000.0


def _turn_request(
    caller: Caller, parsed: ChatRequest, request_id: str, fallback_turn_id: str
) -> TurnRequest:
    return TurnRequest(
        caller=caller,
        door=EVENTS_DOOR,
        request_id=request_id,
        turn_id=parsed.turnId or fallback_turn_id,
        client_turn_id=parsed.turnId,
        conversation_id=parsed.conversationId,
        model_id=parsed.modelId,
        messages=tuple(
            ChatMessage(m.role, tuple(block.text for block in m.content)) for m in parsed.messages
        ),
    )
