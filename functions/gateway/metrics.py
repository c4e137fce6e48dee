"""Names of the CloudWatch metrics the chat function emits (EMF, no API calls).

The dashboard and alarms the program declares import these names, so a chart can never point at
a metric the functions do not write.
"""

from __future__ import annotations

#: CloudWatch namespace of the EMF metrics (``POWERTOOLS_METRICS_NAMESPACE`` in AWS).
METRICS_NAMESPACE = "AiGateway"


class Metric:
    """The metrics of a turn, with the dimension each one carries."""

    INPUT_TOKENS = "InputTokens"  # dimension modelId; and door
    OUTPUT_TOKENS = "OutputTokens"  # dimension modelId; and door
    TURN_LATENCY = "TurnLatency"  # milliseconds, dimension modelId; and door
    FIRST_TOKEN_LATENCY = "FirstTokenLatency"  # milliseconds, dimension modelId; and door
    CACHE_HITS = "CacheHits"  # dimension modelId
    COST_USD = "CostUsd"  # US dollars at list prices, dimension modelId
    ERRORS = "Errors"  # dimension code; and door
    #: Every turn, refused or answered, by the door it came through (dimension door).
    TURNS = "Turns"
    MODEL_THROTTLES = "ModelThrottles"  # dimension modelId
    # Faults a turn survived (it still ended with a terminal event).
    USAGE_STORE_FAILURES = "UsageStoreFailures"
    ANALYTICS_FAILURES = "AnalyticsFailures"
    PUBLISH_FAILURES = "PublishFailures"
    PUBLISH_RETRIES = "PublishRetries"  # publishes that recovered after a retry
    # Tokens a model reported beyond the turn's reservation, which are not charged (the input
    # upper bound failed for that model); dimension modelId.
    METERING_OVERRUN_TOKENS = "MeteringOverrunTokens"
    # Model calls opened before admission and cancelled, and their estimated input tokens.
    SPECULATIVE_CALLS_CANCELLED = "SpeculativeCallsCancelled"
    SPECULATIVE_INPUT_TOKENS = "SpeculativeInputTokens"
