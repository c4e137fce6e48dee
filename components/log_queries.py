"""The CloudWatch Logs Insights queries every stack saves for its operators, over the log lines the
turn functions write.

Each turn ends with one Powertools JSON line, ``"message": "turn finished"``, that carries the
turn's fields as top-level keys (``gateway.turn_record``: ``user``, ``conversation``, ``tier``,
``model``, ``door``, ``input_tokens``, ``output_tokens``, ``first_token_ms``, ``outcome``,
``error_code``...). Logs Insights discovers the keys of a JSON log event as fields (nested keys
joined with dots), so the queries name them directly. Powertools leaves a key out of the line
when its value is ``None`` (an answered turn has no ``error_code``, an OpenAI-door turn no
``conversation``), so a query filters on the lines that carry what it reads. Fields:
https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/CWL_AnalyzeLogData-discoverable-fields.html
Syntax (``filter``, ``stats`` with ``count_distinct``, ``pct``, ``sum`` and ``bin``; ``in``):
https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/CWL_QuerySyntax.html and
https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/CWL_QuerySyntax-Stats.html

The first two are the examples of the AWS Machine Learning blog post "Build a serverless AI
Gateway architecture with AWS AppSync Events"
(https://aws.amazon.com/blogs/machine-learning/build-a-serverless-ai-gateway-architecture-with-aws-appsync-events),
the users with the most conversations and the unique users per 5 minutes, written over this
gateway's fields. ``tests/functions/test_saved_queries.py`` checks every field a query names
against the lines real turns log.

No AWS or Pulumi import: the function tests read these queries too.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.contract import ErrorCode

#: The message of the one log line every finished turn writes (``gateway.turn_record``).
TURN_FINISHED = "turn finished"

#: Error codes that are the gateway refusing a user (a rule said no), as opposed to a fault.
REFUSAL_CODES: tuple[ErrorCode, ...] = (
    ErrorCode.UNAUTHORIZED,
    ErrorCode.INVALID_REQUEST,
    ErrorCode.MODEL_NOT_ALLOWED,
    ErrorCode.LIMIT_EXCEEDED,
    ErrorCode.TURN_TOO_LARGE,
    ErrorCode.RATE_LIMITED,
    ErrorCode.DUPLICATE_TURN,
    ErrorCode.ACCOUNT_BLOCKED,
)
#: Error codes that are something failing on the gateway's side (the model, the store, a bug).
FAULT_CODES: tuple[ErrorCode, ...] = (
    ErrorCode.USAGE_UNAVAILABLE,
    ErrorCode.MODEL_THROTTLED,
    ErrorCode.MODEL_TIMEOUT,
    ErrorCode.MODEL_ERROR,
    ErrorCode.INTERNAL_ERROR,
)


def _codes(codes: tuple[ErrorCode, ...]) -> str:
    return "[" + ", ".join(f'"{code.value}"' for code in codes) + "]"


_FINISHED = f'filter message = "{TURN_FINISHED}"'


@dataclass(frozen=True)
class LogQuery:
    """A saved Logs Insights query: what it answers, and its text."""

    description: str
    query: str


LOG_QUERIES: dict[str, LogQuery] = {
    "users-with-most-conversations": LogQuery(
        "The users with the most conversations (the AWS blog post's first example; the chat "
        "channel's turns: an OpenAI-door request carries its whole history, no conversation)",
        f"{_FINISHED} and ispresent(conversation)\n"
        "| stats count_distinct(conversation) as conversations, count(*) as turns by user\n"
        "| sort conversations desc\n"
        "| limit 25",
    ),
    "unique-users-per-5-minutes": LogQuery(
        "Unique users per 5 minutes (the AWS blog post's second example)",
        f"{_FINISHED}\n| stats count_distinct(user) as unique_users by bin(5m)",
    ),
    "errors-by-code": LogQuery(
        "Turns that ended in a gateway-side error, by error code, model and door",
        f"{_FINISHED} and error_code in {_codes(FAULT_CODES)}\n"
        "| stats count(*) as errors by error_code, model, door\n"
        "| sort errors desc",
    ),
    "first-token-latency-by-model": LogQuery(
        "Time to first token (p50, p95) of the turns that streamed an answer, by model",
        f'{_FINISHED} and outcome = "done" and ispresent(first_token_ms)\n'
        "| stats pct(first_token_ms, 50) as p50_ms, pct(first_token_ms, 95) as p95_ms,"
        " count(*) as turns by model\n"
        "| sort p95_ms desc",
    ),
    "refusals-by-reason-and-tier": LogQuery(
        "Turns the gateway refused, by reason (error code) and tier",
        f"{_FINISHED} and error_code in {_codes(REFUSAL_CODES)}\n"
        "| stats count(*) as refusals by error_code, tier\n"
        "| sort refusals desc",
    ),
    "top-users-by-tokens": LogQuery(
        "The users who spent the most tokens (input + output), with their tier",
        f"{_FINISHED}\n"
        "| fields input_tokens + output_tokens as tokens\n"
        "| stats sum(tokens) as total_tokens, sum(input_tokens) as input,"
        " sum(output_tokens) as output, count(*) as turns by user, tier\n"
        "| sort total_tokens desc\n"
        "| limit 25",
    ),
}


def query_definition_name(project: str, stack: str, key: str) -> str:
    """``ai-gateway/<stack>/<key>``: the console lists saved queries in folders split at '/'
    (https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-resource-logs-querydefinition.html,
    ``Name``: "use a forward slash (/) ... to create a folder")."""
    return f"{project}/{stack}/{key}"
