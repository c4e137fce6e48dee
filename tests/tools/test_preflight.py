"""``make preflight`` without a real account: every AWS answer comes from botocore's Stubber, so
each failure path is exercised with the exact response shapes the service models define."""

from __future__ import annotations

import dataclasses
import io
import time
from datetime import date
from pathlib import Path

import boto3
import pytest
from botocore.exceptions import NoCredentialsError
from botocore.stub import Stubber

from tools import preflight
from tools.preflight_checks import FAIL, PASS, WARN, Context

ROOT = Path(__file__).resolve().parents[2]

ACCOUNT = "123456789012"
TODAY = date(2026, 11, 27)
HAIKU_PROFILE = "us.anthropic.claude-haiku-4-5-20251001-v1:0"
HAIKU = "anthropic.claude-haiku-4-5-20251001-v1:0"


class Account:
    """Stubbed clients for one region, one per service, with the happy answers queued by
    :meth:`healthy` and any service's answers replaceable per test."""

    def __init__(self, monkeypatch):
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        self.clients = {
            s: boto3.client(s, region_name="us-east-1") for s in ("sts", "bedrock", "ssm", "lambda")
        }
        self.stubs = {s: Stubber(c) for s, c in self.clients.items()}

    def client(self, service):
        return self.clients[service]

    def activate(self):
        for stub in self.stubs.values():
            stub.activate()


def _model_calls(stub, models, *, broken=None):
    """Queue Bedrock's answers for ``models`` (ids as tiers name them); ``broken`` maps a model
    id to a function that queues its failing answer instead."""
    broken = broken or {}
    for model_id in models:
        if model_id in broken:
            broken[model_id](stub, model_id)
            continue
        foundation = model_id.removeprefix("us.")
        if model_id != foundation:
            stub.add_response(
                "get_inference_profile",
                _profile(model_id),
                {"inferenceProfileIdentifier": model_id},
            )
        stub.add_response(
            "get_foundation_model", _details(foundation), {"modelIdentifier": foundation}
        )
        stub.add_response(
            "get_foundation_model_availability", _availability(foundation), {"modelId": foundation}
        )


def _profile(model_id, status="ACTIVE"):
    arn = f"arn:aws:bedrock:us-east-1:{ACCOUNT}:inference-profile/{model_id}"
    return {
        "inferenceProfileName": model_id,
        "inferenceProfileArn": arn,
        "inferenceProfileId": model_id,
        "models": [{"modelArn": f"arn:aws:bedrock:us-east-1::foundation-model/{HAIKU}"}],
        "status": status,
        "type": "SYSTEM_DEFINED",
    }


def _details(foundation, lifecycle="ACTIVE"):
    return {
        "modelDetails": {
            "modelArn": f"arn:aws:bedrock:us-east-1::foundation-model/{foundation}",
            "modelId": foundation,
            "modelLifecycle": {"status": lifecycle},
        }
    }


def _availability(foundation, **changes):
    return {
        "modelId": foundation,
        "agreementAvailability": {"status": "AVAILABLE"},
        "authorizationStatus": "AUTHORIZED",
        "entitlementAvailability": "AVAILABLE",
        "regionAvailability": "AVAILABLE",
        **changes,
    }


def _healthy(
    account, ctx, *, broken_models=None, use_case=True, layer=True, unreserved=1000, holds=None
):
    """Queue a healthy account's answers; ``unreserved`` is the account's unreserved concurrency
    and ``holds`` what the chat function reserves now (``None``: it does not exist yet)."""
    stubs = account.stubs
    stubs["sts"].add_response(
        "get_caller_identity",
        {"Account": ACCOUNT, "Arn": f"arn:aws:iam::{ACCOUNT}:user/ops", "UserId": "AIDA"},
    )
    _model_calls(stubs["bedrock"], ctx.settings.tier_config.all_models(), broken=broken_models)
    if use_case:
        stubs["bedrock"].add_response("get_use_case_for_model_access", {"formData": b"{}"})
    else:
        stubs["bedrock"].add_client_error(
            "get_use_case_for_model_access", "ResourceNotFoundException", http_status_code=404
        )
    if layer:
        stubs["ssm"].add_response(
            "get_parameter", {"Parameter": {"Name": "x", "Type": "String", "Value": "arn"}}
        )
    else:
        stubs["ssm"].add_client_error("get_parameter", "ParameterNotFound", http_status_code=400)
    if ctx.settings.chat_reserved_concurrency:
        _concurrency(stubs["lambda"], ctx, unreserved=unreserved, holds=holds)
    account.activate()


def _concurrency(stub, ctx, *, unreserved, holds):
    stub.add_response(
        "get_account_settings",
        {
            "AccountLimit": {
                "ConcurrentExecutions": 1000,
                "UnreservedConcurrentExecutions": unreserved,
            }
        },
    )
    function = {"FunctionName": ctx.settings.chat_function_name}
    if holds is None:
        stub.add_client_error(
            "get_function_concurrency",
            "ResourceNotFoundException",
            http_status_code=404,
            expected_params=function,
        )
    else:
        answer = {"ReservedConcurrentExecutions": holds} if holds else {}
        stub.add_response("get_function_concurrency", answer, function)


@pytest.fixture
def account(monkeypatch):
    return Account(monkeypatch)


def _context(account, stack="dev", version="v3.272.0", **changes) -> Context:
    ctx = preflight.build_context(stack, client=account.client, run=lambda argv: version + "\n")
    return dataclasses.replace(ctx, today=TODAY, **changes)


def _results(ctx):
    return {r.check: r for r in preflight.run_checks(ctx, budget=10)}


def test_a_healthy_account_passes_every_check_and_exits_zero(account, monkeypatch):
    ctx = _context(account)
    _healthy(account, ctx)
    monkeypatch.setattr(preflight, "build_context", lambda stack: ctx)
    out = io.StringIO()
    assert preflight.main(["--stack", "dev"], out=out) == 0
    table = out.getvalue()
    assert "0 failed of" in table
    assert f"PASS  model {HAIKU_PROFILE}" in table
    assert "FAIL" not in table
    for stub in account.stubs.values():
        stub.assert_no_pending_responses()  # every AWS answer was asked for


def test_preflight_stays_within_its_budget_when_aws_does_not_answer(account):
    ctx = _context(account)

    def hang(service):
        time.sleep(5)
        raise AssertionError("unreachable")

    started = time.monotonic()
    results = preflight.run_checks(dataclasses.replace(ctx, client=hang), budget=0.5)
    assert time.monotonic() - started < 2
    assert {r.check: r.status for r in results}["credentials"] == FAIL


@pytest.mark.parametrize(
    ("run", "detail"),
    [
        (lambda argv: (_ for _ in ()).throw(FileNotFoundError("pulumi")), "did not run"),
        (lambda argv: "v3.186.0\n", "version 3.186.0; this project needs >= 3.187.0"),
    ],
    ids=["missing", "too-old"],
)
def test_pulumi_cli_missing_or_too_old_fails(account, run, detail):
    ctx = _context(account, run=run)
    _healthy(account, ctx)
    result = _results(ctx)["Pulumi CLI"]
    assert (result.status, detail in result.detail) == (FAIL, True)
    assert "install" in result.fix or "upgrade" in result.fix


def test_missing_credentials_fail_with_how_to_sign_in(account):
    ctx = _context(account)

    def no_credentials(service):
        client = account.client(service)
        if service == "sts":
            stub = Stubber(client)
            stub.activate()
            client.get_caller_identity = lambda: (_ for _ in ()).throw(NoCredentialsError())
        return client

    result = _results(dataclasses.replace(ctx, client=no_credentials))["AWS credentials"]
    assert result.status == FAIL
    assert "aws sso login" in result.fix


BROKEN_MODEL = {
    "profile-not-active": lambda s, m: s.add_response(
        "get_inference_profile", _profile(m, status="INACTIVE")
    ),
    "not-offered-in-region": lambda s, m: s.add_client_error(
        "get_inference_profile", "ResourceNotFoundException", http_status_code=404
    ),
    "legacy-on-bedrock": lambda s, m: (
        s.add_response("get_inference_profile", _profile(m)),
        s.add_response("get_foundation_model", _details(HAIKU, lifecycle="LEGACY")),
    ),
    "not-authorized": lambda s, m: (
        s.add_response("get_inference_profile", _profile(m)),
        s.add_response("get_foundation_model", _details(HAIKU)),
        s.add_response(
            "get_foundation_model_availability",
            _availability(HAIKU, authorizationStatus="NOT_AUTHORIZED"),
        ),
    ),
    "no-marketplace-agreement": lambda s, m: (
        s.add_response("get_inference_profile", _profile(m)),
        s.add_response("get_foundation_model", _details(HAIKU)),
        s.add_response(
            "get_foundation_model_availability",
            _availability(HAIKU, agreementAvailability={"status": "NOT_AVAILABLE"}),
        ),
    ),
}


@pytest.mark.parametrize("case", sorted(BROKEN_MODEL))
def test_a_model_bedrock_will_not_serve_fails_with_a_fix(account, case):
    ctx = _context(account)
    _healthy(account, ctx, broken_models={HAIKU_PROFILE: BROKEN_MODEL[case]})
    result = _results(ctx)[f"model {HAIKU_PROFILE}"]
    assert result.status == FAIL, result
    assert result.fix


def test_a_pending_marketplace_agreement_only_warns(account):
    ctx = _context(account)
    pending = lambda s, m: (  # noqa: E731
        s.add_response("get_inference_profile", _profile(m)),
        s.add_response("get_foundation_model", _details(HAIKU)),
        s.add_response(
            "get_foundation_model_availability",
            _availability(HAIKU, agreementAvailability={"status": "PENDING"}),
        ),
    )
    _healthy(account, ctx, broken_models={HAIKU_PROFILE: pending})
    assert _results(ctx)[f"model {HAIKU_PROFILE}"].status == WARN


def test_a_model_the_catalog_no_longer_lists_as_active_fails_without_asking_aws(account):
    ctx = _context(account)
    catalog = ctx.catalog
    legacy = [
        dataclasses.replace(m, state="Legacy", eol_on=date(2027, 1, 1))
        if m.foundation_model_id == "amazon.nova-micro-v1:0"
        else m
        for m in catalog.models
    ]
    ctx = dataclasses.replace(ctx, catalog=dataclasses.replace(catalog, models=tuple(legacy)))
    micro = lambda s, m: None  # noqa: E731 - Bedrock is never asked about it
    _healthy(account, ctx, broken_models={"amazon.nova-micro-v1:0": micro})
    result = _results(ctx)["model amazon.nova-micro-v1:0"]
    assert (result.status, "Legacy" in result.detail) == (FAIL, True)


def test_anthropic_use_case_form_not_submitted_fails(account):
    ctx = _context(account)
    _healthy(account, ctx, use_case=False)
    result = _results(ctx)["Anthropic use-case form"]
    assert result.status == FAIL
    assert "PutUseCaseForModelAccess" in result.fix


def test_missing_powertools_layer_parameter_fails(account):
    ctx = _context(account)
    _healthy(account, ctx, layer=False)
    result = _results(ctx)["Powertools layer"]
    assert result.status == FAIL
    assert "/aws/service/powertools/python/arm64/python3.13/" in result.detail


@pytest.mark.parametrize(
    ("email", "detail"),
    [("", "notify nobody"), ("oncall@example.com", "placeholder")],
    ids=["unset", "placeholder"],
)
def test_prod_without_a_real_alarm_email_fails(account, email, detail):
    ctx = _context(account, stack="prod")
    ctx = dataclasses.replace(ctx, settings=dataclasses.replace(ctx.settings, alarm_email=email))
    _healthy(account, ctx)
    result = _results(ctx)["alarm e-mail"]
    assert (result.status, detail in result.detail) == (FAIL, True)


def test_prod_as_shipped_is_told_to_replace_the_placeholder_alarm_email(account):
    ctx = _context(account, stack="prod")
    _healthy(account, ctx)
    results = _results(ctx)
    assert results["alarm e-mail"].status == FAIL
    assert results["Cognito e-mail"].status == WARN
    assert "SES" in results["Cognito e-mail"].fix


def _reserving(account, reservation, stack="dev"):
    ctx = _context(account, stack=stack)
    settings = dataclasses.replace(ctx.settings, chat_reserved_concurrency=reservation)
    return dataclasses.replace(ctx, settings=settings)


def test_the_shipped_stacks_reserve_no_concurrency(account):
    # A deploy then needs no headroom: accounts with small quotas can run `pulumi up`.
    for stack in ("dev", "prod"):
        assert _context(account, stack=stack).settings.chat_reserved_concurrency is None


def test_a_first_deploy_reserving_beyond_the_account_fails_with_the_most_it_may_reserve(account):
    ctx = _reserving(account, 100)
    _healthy(account, ctx, unreserved=150)  # no chat function yet: 50 reservable
    result = _results(ctx)["chat concurrency"]
    assert result.status == FAIL
    assert "100 > 50" in result.detail
    assert "at most 50" in result.fix and "to 0" in result.fix


def test_a_first_deploy_within_the_account_passes(account):
    ctx = _reserving(account, 50)
    _healthy(account, ctx, unreserved=150)
    assert _results(ctx)["chat concurrency"].status == PASS
    account.stubs["lambda"].assert_no_pending_responses()


def test_a_rerun_counts_the_functions_own_reservation_as_reservable(account):
    # Quota 250, the chat function already holds 100: Lambda reports 150 unreserved. Keeping
    # the 100 leaves 150 unreserved, more than Lambda's 100 - the re-run must pass.
    ctx = _reserving(account, 100)
    _healthy(account, ctx, unreserved=150, holds=100)
    result = _results(ctx)["chat concurrency"]
    assert result.status == PASS, result
    assert "100 reserved of 150 reservable" in result.detail


def test_a_rerun_raising_the_reservation_beyond_the_account_fails(account):
    ctx = _reserving(account, 200)
    _healthy(account, ctx, unreserved=150, holds=100)
    result = _results(ctx)["chat concurrency"]
    assert result.status == FAIL
    assert "200 > 150" in result.detail
    assert "at most 150" in result.fix


def test_no_reservation_needs_no_account_headroom(account):
    ctx = _context(account)
    ctx = dataclasses.replace(
        ctx, settings=dataclasses.replace(ctx.settings, chat_reserved_concurrency=None)
    )
    _healthy(account, ctx)
    account.stubs["lambda"].deactivate()
    assert _results(ctx)["chat concurrency"].status == PASS


def test_a_stack_config_the_program_refuses_is_one_failed_line(capsys):
    out = io.StringIO()
    assert preflight.main(["--stack", "does-not-exist"], out=out) == 1
    assert "FAIL  stack config  no stack file Pulumi.does-not-exist.yaml" in out.getvalue()
