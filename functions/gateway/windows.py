"""UTC window arithmetic: 10-minute usage buckets, the trailing 24 hours, calendar months, and the
10-second request buckets of the per-minute rate.

All times are whole seconds since the Unix epoch (UTC); nothing here reads a clock.
"""

from __future__ import annotations

from datetime import UTC, datetime

BUCKET_SECONDS = 600
#: Buckets in the trailing-24 h window: the current bucket and the 143 before it.
DAILY_BUCKETS = 144
DAY_SECONDS = BUCKET_SECONDS * DAILY_BUCKETS

#: Width of a request-count bucket, and how many seconds make the request-rate window.
RATE_BUCKET_SECONDS = 10
RATE_WINDOW_SECONDS = 60
#: How long a client turn id is remembered (a retried publish comes back within seconds).
TURN_ID_SECONDS = 900


def bucket_start(epoch: int) -> int:
    """Start of the 10-minute UTC bucket holding ``epoch``."""
    return int(epoch) - int(epoch) % BUCKET_SECONDS


def daily_window_start(epoch: int) -> int:
    """Start of the oldest bucket still inside the trailing-24 h window at ``epoch``."""
    return bucket_start(epoch) - (DAILY_BUCKETS - 1) * BUCKET_SECONDS


def in_daily_window(bucket: int, epoch: int) -> bool:
    """Whether usage recorded in ``bucket`` still counts against the daily limit at ``epoch``."""
    return daily_window_start(epoch) <= bucket <= bucket_start(epoch)


def leaves_daily_window(bucket: int) -> int:
    """The first instant at which ``bucket`` no longer counts against the daily limit."""
    return bucket + DAY_SECONDS


def rate_bucket(epoch: int) -> int:
    """Start of the 10-second request bucket holding ``epoch``."""
    return int(epoch) - int(epoch) % RATE_BUCKET_SECONDS


def in_rate_window(bucket: int, epoch: int) -> bool:
    """Whether requests counted in ``bucket`` still count against the per-minute rate."""
    return bucket > epoch - RATE_WINDOW_SECONDS


def month_key(epoch: int) -> str:
    """``YYYY-MM`` of the UTC calendar month holding ``epoch``."""
    return datetime.fromtimestamp(int(epoch), UTC).strftime("%Y-%m")


def next_month_start(epoch: int) -> int:
    """First instant of the UTC calendar month after the one holding ``epoch``."""
    moment = datetime.fromtimestamp(int(epoch), UTC)
    year, month = (moment.year + 1, 1) if moment.month == 12 else (moment.year, moment.month + 1)
    return int(datetime(year, month, 1, tzinfo=UTC).timestamp())


def previous_month_key(epoch: int) -> str:
    """``YYYY-MM`` of the month before the one holding ``epoch``."""
    moment = datetime.fromtimestamp(int(epoch), UTC)
    year, month = (moment.year - 1, 12) if moment.month == 1 else (moment.year, moment.month - 1)
    return f"{year:04d}-{month:02d}"


def iso_utc(epoch: float) -> str:
    """ISO-8601 UTC with a ``Z`` suffix, to the second (``2025-01-31T23:50:00Z``)."""
    return datetime.fromtimestamp(int(epoch), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
