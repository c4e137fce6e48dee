"""OpenAiApiComponent: the OpenAI-compatible door as every stack declares it."""

from __future__ import annotations

import json
import stat
import zipfile
from pathlib import Path

import pytest
from infra_support import FUNCTION, LOG_GROUP, ROLE, grants, statements

from components.identity import CHAT_SCOPE
from components.openai_api import web_adapter_layer_arn
from devtools.declare import declare_stack

REST_API = "aws:apigateway/restApi:RestApi"
METHOD = "aws:apigateway/method:Method"
INTEGRATION = "aws:apigateway/integration:Integration"
AUTHORIZER = "aws:apigateway/authorizer:Authorizer"
STAGE = "aws:apigateway/stage:Stage"
METHOD_SETTINGS = "aws:apigateway/methodSettings:MethodSettings"
WAF_ASSOCIATION = "aws:wafv2/webAclAssociation:WebAclAssociation"
WEB_ACL = "aws:wafv2/webAcl:WebAcl"
DOMAIN = "aws:apigateway/domainName:DomainName"
MAPPING = "aws:apigateway/basePathMapping:BasePathMapping"
CLIENT = "aws:cognito/userPoolClient:UserPoolClient"
RESOURCE_SERVER = "aws:cognito/resourceServer:ResourceServer"
CERTIFICATE = "arn:aws:acm:us-east-1:123456789012:certificate/0f0e0d0c-1b1a-2c2b-3d3c-4e4d4c4b4a49"
MACHINES = {"machineClients": {"reporting-bot": {"tier": "pro"}, "etl": {"tier": "free"}}}


def door(stack):
    (found,) = [f for f in stack.of_type(FUNCTION) if f.inputs["handler"] == "openai_door.sh"]
    return found


def test_both_routes_exist_each_behind_the_cognito_authorizer_taking_access_tokens(stack):
    authorizer = stack.one(AUTHORIZER)
    assert authorizer.inputs["type"] == "COGNITO_USER_POOLS"
    methods = stack.of_type(METHOD)
    assert sorted(m.inputs["httpMethod"] for m in methods) == ["GET", "POST"]
    for method in methods:
        assert method.inputs["authorization"] == "COGNITO_USER_POOLS"
        assert method.inputs["authorizerId"] == authorizer.id
        # Users' access tokens (SRP or hosted UI) and machine clients' tokens.
        assert set(method.inputs["authorizationScopes"]) == {
            "aws.cognito.signin.user.admin",
            "openid",
            CHAT_SCOPE,
        }


def test_every_integration_streams_from_the_door_function(stack):
    function_arn = door(stack).outputs["arn"]
    integrations = stack.of_type(INTEGRATION)
    assert len(integrations) == 2
    for integration in integrations:
        assert integration.inputs["type"] == "AWS_PROXY"
        assert integration.inputs["responseTransferMode"] == "STREAM"
        assert integration.inputs["uri"].endswith(
            f"/2021-11-15/functions/{function_arn}/response-streaming-invocations"
        )
        assert integration.inputs["timeoutMilliseconds"] == door(stack).inputs["timeout"] * 1000


def test_the_door_runs_python_behind_the_lambda_web_adapter(stack):
    function = door(stack).inputs
    assert (function["runtime"], function["architectures"]) == ("python3.13", ["arm64"])
    assert function["layers"][0] == web_adapter_layer_arn("us-east-1")
    assert ":layer:LambdaAdapterLayerArm64:" in function["layers"][0]
    variables = function["environment"]["variables"]
    assert variables["AWS_LAMBDA_EXEC_WRAPPER"] == "/opt/bootstrap"
    assert variables["AWS_LWA_INVOKE_MODE"] == "response_stream"
    assert variables["AWS_LWA_READINESS_CHECK_PATH"] == "/healthz"
    assert "EVENTS_HTTP_ENDPOINT" not in variables
    assert variables["USAGE_TABLE"] and variables["TIER_CONFIG_PARAMETER"]


def test_the_door_package_holds_the_sources_and_an_executable_entry_script(stack):
    archive = Path(door(stack).inputs["code"].path)
    with zipfile.ZipFile(archive) as package:
        modes = {i.filename: stat.S_IMODE(i.external_attr >> 16) for i in package.infolist()}
        script = package.read("openai_door.sh").decode()
    assert modes["openai_door.sh"] == 0o755
    assert modes["openai_http.py"] == 0o644
    assert "gateway/openai/wire.py" in modes
    assert "python -m openai_http" in script


def test_the_door_package_is_the_same_bytes_for_the_same_sources(tmp_path):
    from components.function_code import door_archive

    functions = Path(__file__).resolve().parents[2] / "functions"
    first = Path(door_archive(functions, tmp_path / "a").path).read_bytes()
    second = Path(door_archive(functions, tmp_path / "b").path).read_bytes()
    assert first == second


def test_the_door_role_has_the_chat_turn_grants_and_nothing_for_the_event_api(stack):
    role_arn = door(stack).inputs["role"]
    role = next(r for r in stack.of_type(ROLE) if r.outputs["arn"] == role_arn)
    chat_role_arn = next(
        f for f in stack.of_type(FUNCTION) if f.inputs["handler"] == "chat.handler"
    ).inputs["role"]
    chat_role = next(r for r in stack.of_type(ROLE) if r.outputs["arn"] == chat_role_arn)
    door_grants = grants(stack, role)
    chat_grants = grants(stack, chat_role)
    assert "appsync:EventPublish" not in door_grants
    chat_grants.pop("appsync:EventPublish")
    for action in ("logs:CreateLogStream", "logs:PutLogEvents"):
        assert door_grants.pop(action) != chat_grants.pop(action)  # each its own log group
    assert door_grants == chat_grants


def test_the_stage_throttles_and_writes_access_logs_to_a_retained_group(stack):
    stage = stack.one(STAGE).inputs
    destination = stage["accessLogSettings"]["destinationArn"]
    (group,) = [g for g in stack.of_type(LOG_GROUP) if g.outputs["arn"] == destination]
    assert group.inputs["retentionInDays"] == stack.config["ai-gateway:logRetentionDays"]
    assert "$context.requestId" in stage["accessLogSettings"]["format"]
    settings = stack.one(METHOD_SETTINGS).inputs
    assert settings["methodPath"] == "*/*"
    assert (
        settings["settings"]["throttlingRateLimit"],
        settings["settings"]["throttlingBurstLimit"],
    ) == (50, 100)


def test_the_throttle_comes_from_stack_config():
    stack = declare_stack("dev", {"openAiThrottle": {"rate": 5, "burst": 10}})
    settings = stack.one(METHOD_SETTINGS).inputs["settings"]
    assert (settings["throttlingRateLimit"], settings["throttlingBurstLimit"]) == (5, 10)


def test_prod_puts_the_stage_behind_the_event_apis_web_acl(prod):
    stage_arn = prod.one(STAGE).outputs["arn"]
    (association,) = [
        a for a in prod.of_type(WAF_ASSOCIATION) if a.inputs["resourceArn"] == stage_arn
    ]
    assert association.inputs["webAclArn"] == prod.one(WEB_ACL).outputs["arn"]


def test_dev_has_no_web_acl(dev):
    assert dev.of_type(WAF_ASSOCIATION) == []


def test_the_base_url_output_ends_with_v1(stack):
    url = stack.outputs["openAiBaseUrl"]
    assert url.startswith("https://") and url.endswith("/api/v1")
    assert ".execute-api.us-east-1.amazonaws.com/" in url


def test_the_door_can_be_turned_off():
    stack = declare_stack("dev", {"openAi": False})
    assert stack.of_type(REST_API) == []
    assert "openAiBaseUrl" not in stack.outputs
    assert not [f for f in stack.of_type(FUNCTION) if f.inputs["handler"] == "openai_door.sh"]


def test_a_custom_domain_maps_to_the_stage_and_becomes_the_base_url():
    stack = declare_stack(
        "dev", {"openAiDomain": "api.example.com", "openAiCertificateArn": CERTIFICATE}
    )
    domain = stack.one(DOMAIN).inputs
    assert (domain["domainName"], domain["regionalCertificateArn"]) == (
        "api.example.com",
        CERTIFICATE,
    )
    assert domain["endpointConfiguration"]["types"] == "REGIONAL"
    assert stack.one(MAPPING).inputs["stageName"] == stack.one(STAGE).inputs["stageName"]
    assert stack.one(REST_API).inputs["disableExecuteApiEndpoint"] is True
    assert stack.outputs["openAiBaseUrl"] == "https://api.example.com/v1"


@pytest.fixture(scope="module")
def machines():
    return declare_stack("dev", MACHINES)


def test_machine_clients_hold_a_secret_and_only_the_client_credentials_grant(machines):
    server = machines.one(RESOURCE_SERVER).inputs
    assert server["identifier"] == "ai-gateway"
    assert [s["scopeName"] for s in server["scopes"]] == ["chat"]
    clients = [c for c in machines.of_type(CLIENT) if c.inputs.get("generateSecret")]
    assert sorted(c.inputs["name"] for c in clients) == [
        "ai-gateway-dev-identity-machine-etl",
        "ai-gateway-dev-identity-machine-reporting-bot",
    ]
    for client in clients:
        assert client.inputs["allowedOauthFlows"] == ["client_credentials"]
        assert client.inputs["allowedOauthScopes"] == [CHAT_SCOPE]
        assert client.inputs["explicitAuthFlows"] == ["ALLOW_REFRESH_TOKEN_AUTH"]


def test_machine_client_tiers_reach_the_door_by_client_id(machines):
    ids = machines.outputs["machineClientIds"]
    tiers = json.loads(door(machines).inputs["environment"]["variables"]["MACHINE_CLIENT_TIERS"])
    assert tiers == {ids["etl"]: "free", ids["reporting-bot"]: "pro"}
    assert machines.outputs["openAiTokenUrl"].endswith(
        ".auth.us-east-1.amazoncognito.com/oauth2/token"
    )


def test_without_machine_clients_the_door_knows_none(dev):
    assert door(dev).inputs["environment"]["variables"]["MACHINE_CLIENT_TIERS"] == "{}"
    assert "openAiTokenUrl" not in dev.outputs
    assert dev.of_type(RESOURCE_SERVER) == []


def test_the_access_log_role_may_write_only_this_accounts_log_groups(stack):
    account = stack.one("aws:apigateway/account:Account")
    role = next(
        r for r in stack.of_type(ROLE) if r.outputs["arn"] == account.inputs["cloudwatchRoleArn"]
    )
    trust = json.loads(role.inputs["assumeRolePolicy"])["Statement"][0]
    assert trust["Principal"] == {"Service": "apigateway.amazonaws.com"}
    for statement in (
        s
        for p in stack.of_type("aws:iam/rolePolicy:RolePolicy")
        if p.inputs["role"] == role.outputs["name"]
        for s in statements(p)
    ):
        assert all(r.startswith("arn:aws:logs:us-east-1:") for r in statement["Resource"])
