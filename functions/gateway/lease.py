"""A reservation held as a lease: settled with what the model used, or released, never left.

Admission hands the turn a :class:`ReservationLease`. Used as a context manager it releases the
reservation on exit unless it was settled, whatever happened inside — a model failure, a bug,
a refused publish — so the user's headroom is never held by a turn that has ended. (A crashed
invocation's reservation still expires by itself.)
"""

from __future__ import annotations

from dataclasses import dataclass
from types import TracebackType

from gateway.metering import charged_usage
from gateway.ports import StoreUnavailable, TurnLog, TurnStore
from gateway.pricing import ModelPrice
from gateway.usage import CountedConversation, Reservation, TokenUsage, UsageSnapshot
from gateway.usage_cache import UsageCache


@dataclass(frozen=True)
class Settlement:
    """What settling stored: the charged usage (never above the reservation), what the model
    reported beyond it, and the usage item after the write (or as it would be, when the store
    failed and the reservation is left to expire)."""

    usage: TokenUsage
    snapshot: UsageSnapshot
    overrun_input_tokens: int = 0
    overrun_output_tokens: int = 0
    store_failed: bool = False


class ReservationLease:
    """One admitted turn's hold on its user's usage item."""

    def __init__(
        self,
        store: TurnStore,
        user_key: str,
        reservation: Reservation | None,
        *,
        cache: UsageCache | None,
        log: TurnLog,
        price: ModelPrice | None = None,
    ) -> None:
        self.user_key = user_key
        self.reservation = reservation
        self.store_failures = 0
        self._store = store
        self._cache = cache
        self._log = log
        self.price = price
        self._closed = reservation is None

    def __enter__(self) -> ReservationLease:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if not self._closed:
            self.release()

    @property
    def max_output_tokens(self) -> int | None:
        return self.reservation.output_tokens if self.reservation is not None else None

    def settle(
        self,
        reported: TokenUsage,
        before: UsageSnapshot | None,
        now: int,
        counted: CountedConversation | None = None,
    ) -> Settlement:
        """Store ``reported`` usage, capped at the reservation (a turn metered fail-open has
        none and stores what was reported), and the conversation the model ``counted``."""
        charge = charged_usage(self.reservation, reported, self.price)
        if charge.overrun_input_tokens or charge.overrun_output_tokens:
            # The model counted more than the turn's upper bound: stored usage stays within the
            # limits (the reservation was admitted within them); the excess is counted instead.
            self._log.warning(
                "model reported more tokens than were reserved; the excess is not charged",
                extra={
                    "user": self.user_key,
                    "overrun_input_tokens": charge.overrun_input_tokens,
                    "overrun_output_tokens": charge.overrun_output_tokens,
                },
            )
        self._closed = True
        try:
            after = self._store.settle(self.user_key, self.reservation, charge.usage, now, counted)
        except StoreUnavailable as err:
            self._forget()
            self._log.error(
                "usage not settled",
                extra={
                    "user": self.user_key,
                    "input_tokens": charge.usage.input_tokens,
                    "output_tokens": charge.usage.output_tokens,
                    "reason": str(err),
                },
            )
            self.store_failures += 1
            # The reservation expires by itself; releasing would fail too.
            base = before or UsageSnapshot()
            return Settlement(
                charge.usage,
                base.with_settlement(self.reservation, charge.usage, now),
                charge.overrun_input_tokens,
                charge.overrun_output_tokens,
                store_failed=True,
            )
        if self._cache is not None:
            self._cache.put(self.user_key, after)
        return Settlement(
            charge.usage, after, charge.overrun_input_tokens, charge.overrun_output_tokens
        )

    def release(self) -> None:
        """Give the reservation back (a turn that ends without usage to settle)."""
        self._closed = True
        if self.reservation is None:
            return
        self._forget()
        try:
            self._store.release(self.user_key, self.reservation.id)
        except StoreUnavailable as err:
            self._log.warning(
                "reservation not released; it will expire", extra={"reason": str(err)}
            )
            self.store_failures += 1
        except Exception:
            self._log.exception("reservation not released; it will expire")

    def _forget(self) -> None:
        if self._cache is not None:
            self._cache.drop(self.user_key)
