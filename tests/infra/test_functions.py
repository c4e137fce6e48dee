"""GatewayFunctionsComponent: runtime, code, layer, environment and invocation of the functions."""

from __future__ import annotations

from pathlib import Path

import pytest
from infra_support import LOG_GROUP, component, function

from components.function_code import code_files, powertools_version
from devtools.declare import declare_stack
from settings import project_defaults

ROOT = Path(__file__).resolve().parents[2]
HANDLERS = ["chat.handler", "subscribe.handler"]
CHAT_VARIABLES = {
    "POWERTOOLS_SERVICE_NAME",
    "POWERTOOLS_METRICS_NAMESPACE",
    "USAGE_TABLE",
    "PREPARED_RESPONSES_TABLE",
    "TIER_CONFIG_PARAMETER",
    "TIER_CONFIG_CACHE_SECONDS",
    "EVENTS_HTTP_ENDPOINT",
    "INBOUND_NAMESPACE",
    "OUTBOUND_NAMESPACE",
    "ANALYTICS_STREAM",
    "STREAM_FLUSH_MS",
    "METERING_FAIL_OPEN",
    "MAX_MESSAGES",
    "MAX_MESSAGE_CHARS",
    "MESSAGE_PREVIEW_CHARS",
}


def _pinned_powertools() -> str:
    for line in (ROOT / "functions" / "requirements.txt").read_text().splitlines():
        if line.startswith("aws-lambda-powertools"):
            return line.split("==")[1].strip()
    raise AssertionError("functions/requirements.txt pins no Powertools")


@pytest.mark.parametrize("handler", HANDLERS)
def test_functions_run_python_3_13_on_arm64_with_tracing(stack, handler):
    declared = function(stack, handler).inputs
    assert declared["runtime"] == "python3.13"
    assert declared["architectures"] == ["arm64"]
    assert declared["tracingConfig"] == {"mode": "Active"}


@pytest.mark.parametrize("handler", HANDLERS)
def test_functions_have_explicit_stack_scoped_names(stack, handler):
    name = function(stack, handler).inputs["name"]
    assert name == f"ai-gateway-{stack.stack}-{handler.split('.')[0]}"


def test_powertools_comes_from_the_managed_layer_of_the_pinned_version(stack):
    # GIVEN the version functions/requirements.txt pins
    parameter = f"/aws/service/powertools/python/arm64/python3.13/{_pinned_powertools()}"
    # THEN the program asked for that version's public layer parameter ...
    (lookup,) = [
        args for token, args in stack.invokes if token == "aws:ssm/getParameter:getParameter"
    ]
    assert lookup["name"] == parameter
    # ... and both functions run with the layer it named
    layers = {tuple(function(stack, h).inputs["layers"]) for h in HANDLERS}
    assert len(layers) == 1
    (layer,) = layers.pop()
    assert ":layer:AWSLambdaPowertoolsPythonV3-python313-arm64:" in layer


@pytest.mark.parametrize("handler", HANDLERS)
def test_code_archive_holds_exactly_the_function_sources(stack, handler):
    archive = function(stack, handler).inputs["code"]
    shipped = sorted(archive.assets)
    expected = sorted(
        p.relative_to(ROOT / "functions").as_posix()
        for p in (ROOT / "functions").rglob("*.py")
        if not {"__pycache__", "tests"} & set(p.parts) and not p.name.startswith("test_")
    )
    assert shipped == expected
    assert "gateway/tiers.py" in shipped
    assert not any(name.endswith(".txt") or "__pycache__" in name for name in shipped)
    for name, asset in archive.assets.items():
        assert Path(asset.path) == ROOT / "functions" / name


def test_code_files_are_sorted_and_skip_caches_and_tests(tmp_path):
    for relative in (
        "b.py",
        "a.py",
        "pkg/c.py",
        "pkg/__pycache__/c.cpython-311.py",
        "tests/t.py",
        "pkg/test_x.py",
        "requirements.txt",
    ):
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_text("")
    assert [p.as_posix() for p in code_files(tmp_path)] == ["a.py", "b.py", "pkg/c.py"]


def test_chat_environment_carries_only_what_the_chat_code_reads(stack):
    variables = function(stack, "chat.handler").inputs["environment"]["variables"]
    # The WAF's origin secret only where there is a WAF (tests/infra/test_waf_rules.py).
    waf = stack.config["ai-gateway:waf"] is True
    assert set(variables) == CHAT_VARIABLES | ({"EVENTS_ORIGIN_SECRET"} if waf else set())


def test_chat_environment_names_the_stack_resources(stack):
    variables = function(stack, "chat.handler").inputs["environment"]["variables"]
    assert variables["USAGE_TABLE"] == stack.outputs["usageTableName"]
    assert variables["PREPARED_RESPONSES_TABLE"] == stack.outputs["preparedResponsesTableName"]
    assert variables["TIER_CONFIG_PARAMETER"] == stack.outputs["tierConfigParameterName"]
    assert variables["EVENTS_HTTP_ENDPOINT"] == stack.outputs["eventsHttpEndpoint"]
    assert (
        variables["ANALYTICS_STREAM"]
        == stack.one("aws:kinesis/firehoseDeliveryStream:FirehoseDeliveryStream").outputs["name"]
    )
    assert variables["POWERTOOLS_METRICS_NAMESPACE"] == "AiGateway"


def test_chat_environment_follows_the_stack_config():
    overrides = {
        "streamFlushMs": 350,
        "meteringFailOpen": True,
        "maxMessages": 12,
        "maxMessageChars": 9000,
        "messagePreviewChars": 40,
        "tierConfigCacheSeconds": 15,
    }
    variables = function(declare_stack("dev", overrides), "chat.handler").inputs["environment"][
        "variables"
    ]
    assert variables["STREAM_FLUSH_MS"] == "350"
    assert variables["METERING_FAIL_OPEN"] == "true"
    assert variables["MAX_MESSAGES"] == "12"
    assert variables["MAX_MESSAGE_CHARS"] == "9000"
    assert variables["MESSAGE_PREVIEW_CHARS"] == "40"
    assert variables["TIER_CONFIG_CACHE_SECONDS"] == "15"


def test_subscribe_environment_carries_only_the_outbound_namespace(stack):
    variables = function(stack, "subscribe.handler").inputs["environment"]["variables"]
    assert variables == {
        "POWERTOOLS_SERVICE_NAME": "subscribe",
        "POWERTOOLS_METRICS_NAMESPACE": "AiGateway",
        "OUTBOUND_NAMESPACE": stack.config["ai-gateway:outboundNamespace"],
    }


@pytest.mark.parametrize("handler", HANDLERS)
def test_functions_log_json_to_their_declared_log_group(stack, handler):
    declared = function(stack, handler)
    logging = declared.inputs["loggingConfig"]
    assert logging["logFormat"] == "JSON"
    assert logging["logGroup"] == f"/aws/lambda/{declared.inputs['name']}"
    (group,) = [g for g in stack.of_type(LOG_GROUP) if g.outputs["name"] == logging["logGroup"]]
    # Declared first, so Lambda never creates a never-expiring group of its own.
    assert group.urn in declared.dependencies


ALIAS = "aws:lambda/alias:Alias"


def test_failed_chat_invocations_are_not_retried(stack):
    (config,) = stack.of_type("aws:lambda/functionEventInvokeConfig:FunctionEventInvokeConfig")
    assert config.inputs["functionName"] == function(stack, "chat.handler").inputs["name"]
    assert config.inputs["maximumRetryAttempts"] == 0
    # On the alias AppSync invokes: the setting is per function, version or alias.
    (alias,) = stack.of_type(ALIAS)
    assert config.inputs["qualifier"] == alias.inputs["name"] == "live"


def test_both_stacks_run_chat_with_snapstart_through_its_live_alias(stack):
    chat = function(stack, "chat.handler")
    assert chat.inputs["snapStart"] == {"applyOn": "PublishedVersions"}
    assert chat.inputs["publish"] is True
    (alias,) = stack.of_type(ALIAS)
    assert alias.inputs["functionName"] == chat.outputs["name"]
    assert alias.inputs["functionVersion"] == chat.outputs["version"] != "$LATEST"
    assert alias.parent == chat.parent


def test_snapstart_is_a_stack_setting():
    stack = declare_stack("dev", {"chatSnapStart": False})
    chat = function(stack, "chat.handler")
    assert chat.inputs.get("snapStart") is None
    # Still published and invoked through the alias, so turning it back on changes no invoker.
    assert chat.inputs["publish"] is True
    assert project_defaults()["chatSnapStart"] is True


def test_the_subscribe_function_has_no_snapstart(dev):
    assert function(dev, "subscribe.handler").inputs.get("snapStart") is None


def test_functions_are_parented_to_the_functions_component(dev):
    owner = component(dev, "GatewayFunctions")
    assert all(function(dev, h).parent == owner.urn for h in HANDLERS)


def test_powertools_version_is_read_from_the_pin(tmp_path):
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("# comment\npydantic==2.0\naws-lambda-powertools[tracer]==3.21.1\n")
    assert powertools_version(requirements) == "3.21.1"


def test_an_unpinned_powertools_is_refused(tmp_path):
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("aws-lambda-powertools>=3\n")
    with pytest.raises(ValueError, match="aws-lambda-powertools==<version>"):
        powertools_version(requirements)


def test_chat_memory_and_reserved_concurrency_default_from_the_project(dev):
    declared = function(dev, "chat.handler").inputs
    assert declared["memorySize"] == project_defaults()["chatMemoryMb"] == 256
    # No reservation by default: PutFunctionConcurrency fails on accounts with small quotas.
    assert project_defaults()["chatReservedConcurrency"] == 0
    assert declared["reservedConcurrentExecutions"] == -1


def test_no_shipped_stack_reserves_concurrency(stack):
    # Lambda grants a reservation only while 100 stay unreserved
    # (https://docs.aws.amazon.com/lambda/latest/dg/configuration-concurrency.html).
    assert function(stack, "chat.handler").inputs["reservedConcurrentExecutions"] == -1


def test_chat_memory_and_reserved_concurrency_follow_the_stack_config():
    stack = declare_stack("dev", {"chatMemoryMb": 1769, "chatReservedConcurrency": 40})
    declared = function(stack, "chat.handler").inputs
    assert declared["memorySize"] == 1769
    assert declared["reservedConcurrentExecutions"] == 40


def test_zero_reserved_concurrency_reserves_nothing():
    # Lambda throttles every invocation of a function reserved at 0; the config's 0 means "no
    # reservation" instead, which Lambda spells -1.
    stack = declare_stack("dev", {"chatReservedConcurrency": 0})
    assert function(stack, "chat.handler").inputs["reservedConcurrentExecutions"] == -1


def test_the_subscribe_function_reserves_nothing(dev):
    assert function(dev, "subscribe.handler").inputs["reservedConcurrentExecutions"] == -1
