"""What a turn is charged when its model step ends, and the conversation it leaves counted.

The model's own report decides, when there is one. A stream that never reported (its user stopped
it, or it broke after some text) is charged what it produced: counted exactly where the provider
can count it (:mod:`gateway.counting`), estimated elsewhere, never above the turn's reservation
(the lease caps the charge). A whole answer also leaves the conversation's count on the usage item
(:mod:`gateway.counted`), so the next turn of that conversation is not bounded again.
"""

from __future__ import annotations

from dataclasses import replace

from gateway.admission import TurnPlan
from gateway.counted import COUNT_SECONDS, answered_key
from gateway.lease import ReservationLease
from gateway.model import ModelRequest
from gateway.model_call import ModelRun
from gateway.ports import TokenCounter
from gateway.stop import STOP_REASON_STOPPED
from gateway.token_bound import estimate_tokens
from gateway.turn_io import TurnRequest
from gateway.usage import CountedConversation, TokenUsage


def charged_usage_of(
    run: ModelRun,
    request: ModelRequest,
    plan: TurnPlan,
    lease: ReservationLease,
    counter: TokenCounter,
) -> TokenUsage | None:
    """What the turn is charged (None: a call that produced nothing is charged nothing)."""
    done = run.completion
    if done is not None and done.stop_reason != STOP_REASON_STOPPED:
        return done.usage
    if done is None and not run.produced_chars:
        return None
    most = lease.max_output_tokens or plan.tier.max_output_tokens_per_turn
    output = counter.output_tokens(run.model_id, "".join(run.answer))
    input_tokens = counter.input_tokens(replace(request, model_id=run.model_id))
    return TokenUsage(
        plan.input_estimate if input_tokens is None else input_tokens,
        estimate_tokens(run.produced_chars, at_most=most) if output is None else min(most, output),
    )


def counted_conversation(
    request: TurnRequest, run: ModelRun, now: int
) -> CountedConversation | None:
    """The conversation this turn leaves, counted by the model (a whole answer only)."""
    done = run.completion
    if done is None or run.failure is not None or done.stop_reason == STOP_REASON_STOPPED:
        return None
    return CountedConversation(
        answered_key(run.model_id, request, "".join(run.answer)),
        done.usage.input_tokens + done.usage.output_tokens,
        now + COUNT_SECONDS,
    )
