"""The benchmark's own arithmetic and parsing: pricing a footprint, the CPU quota of a memory size,
the time a function waited on moto, the memory and cadence choices, reading a CDK app, and the
fake model's event-stream framing. No timing is asserted here; ``make bench`` prints figures."""

from __future__ import annotations

import math

import pytest
from botocore.eventstream import EventStreamBuffer

from bench import cgroups, figures, reference_stack
from bench.cost import TurnFootprint, appsync_operations, cost_per_million_turns, load_prices
from bench.fake_bedrock import event_message
from bench.worker import on_path

PRICES = load_prices()


def test_lambda_duration_is_the_whole_invocation_at_the_configured_memory() -> None:
    # 10 s at 512 MB is 5 GB-s per turn; a million turns is 5 million GB-s.
    footprint = TurnFootprint(published_event_bytes=(), lambda_seconds=10.0)
    lines = cost_per_million_turns(footprint, PRICES, 512).lines
    per_gb_second = PRICES["lambda_arm64"]["usd_per_gb_second"]
    assert lines["Lambda duration (whole invocation)"] == pytest.approx(5e6 * per_gb_second)
    assert cost_per_million_turns(footprint, PRICES, 1024).lines[
        "Lambda duration (whole invocation)"
    ] == pytest.approx(10e6 * per_gb_second)


def test_event_operations_count_each_event_in_and_out_in_5_kb_units() -> None:
    footprint = TurnFootprint(published_event_bytes=(100, 6000))
    # 1 + 2 units, each published and delivered to one subscriber, plus the user's publish and
    # its delivery to the handler.
    assert appsync_operations(footprint, PRICES) == (1 + 2) * 2 + 2
    lines = cost_per_million_turns(footprint, PRICES, 128).lines
    assert lines["AppSync Events operations"] == pytest.approx(
        8 * PRICES["appsync_events"]["usd_per_million_operations"]
    )


def test_connection_minutes_and_every_line_name_their_price() -> None:
    footprint = TurnFootprint(published_event_bytes=(10,), connection_minutes=0.5)
    breakdown = cost_per_million_turns(footprint, PRICES, 256)
    assert breakdown.lines["AppSync Events connection minutes"] == pytest.approx(
        0.5 * PRICES["appsync_events"]["usd_per_million_connection_minutes"]
    )
    assert set(breakdown.prices) == set(breakdown.lines)
    assert breakdown.total == pytest.approx(sum(breakdown.lines.values()))


def test_a_memory_size_gets_its_share_of_one_vcpu() -> None:
    assert cgroups.quota_us(1769) == cgroups.PERIOD_US
    assert cgroups.quota_us(128) == round(cgroups.PERIOD_US * 128 / 1769)
    assert cgroups.quota_us(3538) == 2 * cgroups.PERIOD_US


def test_moto_time_counts_once_and_only_outside_the_model_wait() -> None:
    # Two overlapping waits (1..3 and 2..4) count as 3 seconds, less what falls inside the
    # model's time to first token (2.5..3.5), less what falls after the end (past 10).
    assert on_path([(1, 3), (2, 4)], 0, 10, (2.5, 3.5)) == pytest.approx(2.0)
    assert on_path([(9, 12)], 0, 10, (0, 0)) == pytest.approx(1.0)
    assert on_path([], 0, 10, (1, 2)) == 0


def _row(
    memory: int,
    added: float,
    cost: float,
    rss: float = 90,
    cold_start: float = 400.0,
    restored: float = math.nan,
) -> figures.MemoryRow:
    return figures.MemoryRow(
        memory_mb=memory,
        cpu_share=memory / 1769,
        time_added_ms=added,
        time_added_0_ms=added,
        cpu_ms=1,
        paced_cpu_ms=1,
        billed_ms=1,
        cost=cost,
        import_ms=cold_start / 2,
        cold_added_ms=cold_start / 2,
        max_rss_mb=rss,
        within_budget=added <= 3,
        restored_ms=restored,
    )


def test_the_cheapest_size_within_the_cold_and_warm_ceilings_is_chosen() -> None:
    # GIVEN the cheapest size adds 12 ms warm, the next 6 ms, the largest 1 ms
    rows = [_row(128, 12.0, 50), _row(256, 6.0, 60), _row(512, 1.0, 80)]
    # THEN the cheapest within 10 ms warm (and 1 s cold) is chosen
    assert figures.choose_memory(rows) == 256


def test_a_size_the_function_does_not_fit_in_is_not_chosen() -> None:
    rows = [_row(128, 1.0, 50, rss=140), _row(256, 2.0, 60, rss=140), _row(512, 1.0, 80)]
    assert figures.choose_memory(rows) == 256


def test_a_size_whose_cold_first_token_adds_over_a_second_is_not_chosen() -> None:
    # GIVEN the cheapest size starts cold in 3.5 s, the next in 0.9 s
    rows = [_row(128, 1.0, 50, cold_start=3_500), _row(256, 1.0, 60, cold_start=900)]
    assert figures.choose_memory(rows) == 256


def test_a_measured_snapstart_restore_stands_for_the_import() -> None:
    # GIVEN 256 MB imports in 1.8 s and adds 1.7 s on its first turn, but after a SnapStart
    # restore its hook and first turn add 0.6 s
    slow = _row(256, 6.0, 94, cold_start=3_500)
    restored = _row(256, 6.0, 94, cold_start=3_500, restored=600)
    assert restored.cold_first_token_ms == 600
    # THEN only the restored figure keeps it within the second
    assert figures.choose_memory([slow, _row(1024, 6.0, 200, cold_start=800)]) == 1024
    assert figures.choose_memory([restored, _row(1024, 6.0, 200, cold_start=800)]) == 256


def test_without_a_size_within_both_ceilings_the_quickest_cold_start_in_budget_is_chosen() -> None:
    # GIVEN no size starts cold within a second; 1024 MB is quickest but over the bill's budget
    rows = [
        _row(128, 5.0, 50, cold_start=5_000),
        _row(256, 5.0, 94, cold_start=3_000),
        _row(1024, 5.0, 203, cold_start=1_200),
    ]
    # THEN the quickest within the $100 budget is chosen
    assert figures.choose_memory(rows) == 256


def test_the_supported_cadence_is_the_shortest_within_budget() -> None:
    rows = [
        figures.CadenceRow(100, 104, 210, 250, False),
        figures.CadenceRow(200, 54, 110, 99, True),
        figures.CadenceRow(500, 23, 48, 70, True),
    ]
    assert figures.supported_cadence(rows) == 200
    assert figures.supported_cadence(rows[:1]) is None


CDK_FUNCTIONS = """
        this.chatbotHandler = new cdk.aws_lambda.Function(this, "ChatbotHandler", {
                handler: "eventhandlers.chatbot_handler.lambda_handler",
                memorySize: 768,
                environment: {
                    RESPONSE_CHANNEL: props.responseChannel || "Outbound-Messages",
                    TOKEN_USAGE_TABLE: props.tokenUsageTable.tableName,
                    DAILY_OUTPUT_LIMIT: (props.dailyOutputLimit || 20000).toString(),
                },
                role: this.chatbotHandlerRole,
        });
"""
CDK_APP = """
        new ChatLambdaFunctionsConstruct(this, "ChatLambdas", {
                dailyInputLimit: 10000, dailyOutputLimit: 20000,
                monthlyInputLimit: 100000, monthlyOutputLimit: 200000,
        });
        chatLambdas.chatbotHandler.addEnvironment(
            "APPSYNC_ENDPOINT_URL", eventsApi.api.httpDns);
"""
CDK_USAGE = 'partitionKey: { name: "user_id", type: S }, sortKey: { name: "period_id", type: S },'
CDK_CACHE = 'partitionKey: { name: "prompt_hash", type: S },'


def _write_app(root, functions: str = CDK_FUNCTIONS) -> None:
    deploy = root / "deploy"
    deploy.mkdir(parents=True)
    (deploy / "chat-lambda-functions-construct.ts").write_text(functions)
    (deploy / "app-stack.ts").write_text(CDK_APP)
    (deploy / "token-usage-construct.ts").write_text(CDK_USAGE)
    (deploy / "response-cache-construct.ts").write_text(CDK_CACHE)


def test_the_reference_stack_is_read_from_its_cdk_sources(tmp_path) -> None:
    _write_app(tmp_path)
    stack = reference_stack.read_stack(tmp_path)
    assert stack.handler == "eventhandlers.chatbot_handler.lambda_handler"
    assert stack.memory_mb == 768
    assert stack.environment_names == (
        "RESPONSE_CHANNEL",
        "TOKEN_USAGE_TABLE",
        "DAILY_OUTPUT_LIMIT",
        "APPSYNC_ENDPOINT_URL",
    )
    assert stack.limits["DAILY_OUTPUT_LIMIT"] == 20000
    assert stack.usage_keys == ("user_id", "period_id")
    assert stack.cache_key == "prompt_hash"
    env = reference_stack.environment(stack, reference_stack.ReferenceResources(), "127.0.0.1:4443")
    assert env["APPSYNC_ENDPOINT_URL"] == "127.0.0.1:4443"
    assert set(env) == set(stack.environment_names)


def test_a_variable_the_bench_does_not_know_is_named(tmp_path) -> None:
    _write_app(tmp_path, CDK_FUNCTIONS.replace("RESPONSE_CHANNEL", "NEW_SETTING"))
    stack = reference_stack.read_stack(tmp_path)
    with pytest.raises(reference_stack.ReferenceError, match="NEW_SETTING"):
        reference_stack.environment(stack, reference_stack.ReferenceResources(), "h")


def test_a_missing_cdk_source_is_named(tmp_path) -> None:
    with pytest.raises(reference_stack.ReferenceError, match="chat-lambda-functions"):
        reference_stack.read_stack(tmp_path)
    assert reference_stack.locate(str(tmp_path)) is None


def test_the_fake_model_frames_events_as_botocore_reads_them() -> None:
    buffer = EventStreamBuffer()
    buffer.add_data(event_message("contentBlockDelta", {"delta": {"text": "hi"}}))
    buffer.add_data(event_message("messageStop", {"stopReason": "end_turn"}))
    messages = list(buffer)
    assert [m.headers[":event-type"] for m in messages] == ["contentBlockDelta", "messageStop"]
    assert messages[0].payload == b'{"delta":{"text":"hi"}}'
