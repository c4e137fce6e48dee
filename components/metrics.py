"""The gateway's CloudWatch metrics: the names the functions emit, and the dashboard on them.

The metric names come from the function code (``gateway.metrics``), which emits them through
Powertools as EMF; the dashboard only charts them.
"""

from __future__ import annotations

from collections.abc import Mapping

from gateway.metrics import METRICS_NAMESPACE, Metric

_PERIOD = 300


def _search(metric: str, stat: str, label: str) -> dict[str, object]:
    # SEARCH matches the metric whatever its dimensions (modelId, code, service), so the dashboard
    # never lists models and a tier's allowlist change leaves it untouched.
    query = f'Namespace="{METRICS_NAMESPACE}" MetricName="{metric}"'
    return {
        "expression": f"SEARCH('{query}', '{stat}', {_PERIOD})",
        "label": label,
        "id": f"{metric}_{stat}".lower(),
    }


def _charts(
    function_names: Mapping[str, str], rest_api: tuple[str, str] | None = None
) -> list[tuple[str, list, bool]]:
    """(title, metrics, stacked) of every chart, in reading order."""
    lambda_metrics = [
        ["AWS/Lambda", metric, "FunctionName", name, {"stat": "Sum", "label": f"{role} {metric}"}]
        for role, name in sorted(function_names.items())
        for metric in ("Invocations", "Errors", "Throttles")
    ]
    return [
        (
            "Tokens by model",
            [
                [_search(Metric.INPUT_TOKENS, "Sum", "input")],
                [_search(Metric.OUTPUT_TOKENS, "Sum", "output")],
            ],
            True,
        ),
        (
            "Turn latency (ms)",
            [[_search(Metric.TURN_LATENCY, p, p)] for p in ("p50", "p90", "p99")],
            False,
        ),
        (
            "First-token latency (ms)",
            [[_search(Metric.FIRST_TOKEN_LATENCY, p, p)] for p in ("p50", "p90", "p99")],
            False,
        ),
        ("Spend, US dollars at list prices", [[_search(Metric.COST_USD, "Sum", "spend")]], True),
        ("Errors by code", [[_search(Metric.ERRORS, "Sum", "errors")]], True),
        ("Prepared-response cache hits", [[_search(Metric.CACHE_HITS, "Sum", "hits")]], False),
        ("Model throttles", [[_search(Metric.MODEL_THROTTLES, "Sum", "throttles")]], False),
        (
            "Survived faults",
            [
                [_search(Metric.USAGE_STORE_FAILURES, "Sum", "usage store")],
                [_search(Metric.ANALYTICS_FAILURES, "Sum", "analytics")],
                [_search(Metric.PUBLISH_FAILURES, "Sum", "publish")],
                [_search(Metric.PUBLISH_RETRIES, "Sum", "publish retried")],
            ],
            True,
        ),
        (
            "Admission: speculative model calls cancelled, tokens over a reservation",
            [
                [_search(Metric.SPECULATIVE_CALLS_CANCELLED, "Sum", "calls cancelled")],
                [_search(Metric.SPECULATIVE_INPUT_TOKENS, "Sum", "their input tokens")],
                [_search(Metric.METERING_OVERRUN_TOKENS, "Sum", "tokens not charged")],
            ],
            False,
        ),
        ("Functions: invocations, errors, throttles", lambda_metrics, False),
        *_door_charts(rest_api),
    ]


def _door_charts(rest_api: tuple[str, str] | None) -> list[tuple[str, list, bool]]:
    """The OpenAI door's stage: requests and their client and server errors (``Sum`` is the
    count of each: https://docs.aws.amazon.com/apigateway/latest/developerguide/api-gateway-metrics-and-dimensions.html)."""
    if rest_api is None:
        return []
    api, stage = rest_api
    metrics = [
        ["AWS/ApiGateway", metric, "ApiName", api, "Stage", stage, {"stat": "Sum", "label": label}]
        for metric, label in (("Count", "requests"), ("4XXError", "4xx"), ("5XXError", "5xx"))
    ]
    return [("OpenAI door: requests, 4xx, 5xx", metrics, False)]


def dashboard_body(
    region: str, function_names: Mapping[str, str], rest_api: tuple[str, str] | None = None
) -> dict[str, object]:
    """A two-column dashboard: tokens by model, turn and first-token latency, errors by code,
    cache hits, model throttles, survived faults, the functions' own health and, with the OpenAI
    door's ``(api name, stage)``, its stage's requests and errors."""
    widgets = []
    for i, (title, metrics, stacked) in enumerate(_charts(function_names, rest_api)):
        widgets.append(
            {
                "type": "metric",
                "x": 12 * (i % 2),
                "y": 6 * (i // 2),
                "width": 12,
                "height": 6,
                "properties": {
                    "title": title,
                    "region": region,
                    "view": "timeSeries",
                    "stacked": stacked,
                    "period": _PERIOD,
                    "metrics": metrics,
                },
            }
        )
    return {"widgets": widgets}
