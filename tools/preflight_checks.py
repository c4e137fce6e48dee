"""The checks ``make preflight`` runs against the operator's AWS account before ``pulumi up``.

Each check takes a :class:`Context` (the stack's settings and AWS clients for its region) and
returns :class:`Result` lines; a failure always says how to fix it. The AWS calls are the ones
the deploy and the functions themselves depend on, so a pass here means those calls will work.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

from components.function_code import powertools_layer_parameter
from model_catalog import ACTIVE, ModelCatalog
from settings import Settings

PASS, WARN, FAIL = "PASS", "WARN", "FAIL"
#: Lambda keeps this much of an account's concurrency unreserved
#: (https://docs.aws.amazon.com/lambda/latest/dg/configuration-concurrency.html).
LAMBDA_UNRESERVED_MINIMUM = 100
_VERSION = re.compile(r"v?(\d+)\.(\d+)\.(\d+)")
_PLACEHOLDER_DOMAINS = ("example.com", "example.org", "example.net")


@dataclass(frozen=True)
class Result:
    status: str  # PASS | WARN | FAIL
    check: str
    detail: str
    fix: str = ""


@dataclass
class Context:
    settings: Settings
    catalog: ModelCatalog
    today: date
    client: Callable[[str], Any]  # boto3-style client factory for the stack's region
    powertools_version: str
    required_pulumi: tuple[int, int, int]
    production: bool
    run: Callable[[list[str]], str]  # runs a command, returns its stdout


def version_tuple(text: str) -> tuple[int, int, int] | None:
    match = _VERSION.search(text)
    return tuple(int(g) for g in match.groups()) if match else None  # type: ignore[return-value]


def run_command(argv: list[str]) -> str:
    return subprocess.run(argv, capture_output=True, text=True, timeout=5, check=True).stdout


def pulumi_cli(ctx: Context) -> Iterator[Result]:
    required = ".".join(map(str, ctx.required_pulumi))
    install = "install it: https://www.pulumi.com/docs/iac/download-install/"
    try:
        found = version_tuple(ctx.run(["pulumi", "version"]))
    except (OSError, subprocess.SubprocessError):
        yield Result(FAIL, "Pulumi CLI", "`pulumi version` did not run", install)
        return
    if found is None or found < ctx.required_pulumi:
        shown = ".".join(map(str, found)) if found else "unknown"
        yield Result(
            FAIL,
            "Pulumi CLI",
            f"version {shown}; this project needs >= {required} (object-typed config)",
            f"upgrade the CLI (`pulumi version` must print {required} or later); {install}",
        )
        return
    yield Result(PASS, "Pulumi CLI", f"version {'.'.join(map(str, found))} >= {required}")


def credentials(ctx: Context) -> Iterator[Result]:
    try:
        identity = ctx.client("sts").get_caller_identity()
    except (NoCredentialsError, ClientError, BotoCoreError) as err:
        yield Result(
            FAIL,
            "AWS credentials",
            f"no usable credentials ({type(err).__name__})",
            "sign in (`aws sso login`, or set AWS_PROFILE / AWS_ACCESS_KEY_ID) and run again",
        )
        return
    yield Result(
        PASS,
        "AWS credentials",
        f"account {identity['Account']} as {identity['Arn']}, region {ctx.settings.region}",
    )


def models(ctx: Context) -> Iterator[Result]:
    """Each configured model: Active in the catalog and on Bedrock, offered and callable here."""
    bedrock = ctx.client("bedrock")
    anthropic = False
    for model_id in ctx.settings.tier_config.all_models():
        check = f"model {model_id}"
        entry = ctx.catalog.find(model_id)
        if entry is None or entry.state_on(ctx.today) != ACTIVE:
            why = entry.describe(ctx.today) if entry else "not in model-catalog.json"
            yield Result(FAIL, check, why, "move the tiers to an Active model in the catalog")
            continue
        anthropic = anthropic or entry.provider == "Anthropic"
        yield _model_on_bedrock(bedrock, check, model_id, entry.foundation_model_id, entry.provider)
    if anthropic:
        yield _anthropic_use_case(bedrock)


def _model_on_bedrock(bedrock, check: str, model_id: str, foundation: str, provider: str) -> Result:
    try:
        if model_id != foundation:
            profile = bedrock.get_inference_profile(inferenceProfileIdentifier=model_id)
            if profile["status"] != "ACTIVE":
                return Result(FAIL, check, f"inference profile is {profile['status']}", _OTHER)
        details = bedrock.get_foundation_model(modelIdentifier=foundation)["modelDetails"]
        lifecycle = details["modelLifecycle"]["status"]
        if lifecycle != "ACTIVE":
            return Result(FAIL, check, f"Bedrock reports it {lifecycle}", _OTHER)
        availability = bedrock.get_foundation_model_availability(modelId=foundation)
    except ClientError as err:
        code = err.response["Error"]["Code"]
        return Result(FAIL, check, f"not offered here ({code})", _OTHER)
    problems = [
        f"{key} {availability[key]}"
        for key, good in (
            ("authorizationStatus", "AUTHORIZED"),
            ("entitlementAvailability", "AVAILABLE"),
            ("regionAvailability", "AVAILABLE"),
        )
        if availability.get(key) != good
    ]
    if problems:
        return Result(FAIL, check, ", ".join(problems), _ACCESS)
    agreement = (availability.get("agreementAvailability") or {}).get("status")
    if provider != "Amazon" and agreement != "AVAILABLE":
        return Result(
            FAIL if agreement != "PENDING" else WARN, check, f"agreement {agreement}", _MARKET
        )
    return Result(PASS, check, f"Active, offered in {bedrock.meta.region_name}, callable")


_OTHER = "use a model Bedrock offers as Active in this region (see model-catalog.json)"
_ACCESS = (
    "grant bedrock:InvokeModel* to the deploying account and check Service Control Policies; "
    "https://docs.aws.amazon.com/bedrock/latest/userguide/model-access.html"
)
_MARKET = (
    "invoke the model once as a principal with aws-marketplace:Subscribe, Unsubscribe and "
    "ViewSubscriptions (the first call subscribes the account); "
    "https://docs.aws.amazon.com/bedrock/latest/userguide/model-access.html"
)


def _anthropic_use_case(bedrock) -> Result:
    check = "Anthropic use-case form"
    try:
        bedrock.get_use_case_for_model_access()
    except ClientError as err:
        if err.response["Error"]["Code"] == "ResourceNotFoundException":
            return Result(
                FAIL,
                check,
                "not submitted for this account (Anthropic models refuse calls until it is)",
                "submit it once per account (or organization management account): open any "
                "Anthropic model in the Bedrock console's model catalog, or call "
                "PutUseCaseForModelAccess",
            )
        return Result(FAIL, check, f"could not be read ({err.response['Error']['Code']})", "")
    return Result(PASS, check, "submitted")


def powertools_layer(ctx: Context) -> Iterator[Result]:
    name = powertools_layer_parameter(ctx.powertools_version)
    try:
        ctx.client("ssm").get_parameter(Name=name)
    except ClientError as err:
        yield Result(
            FAIL,
            "Powertools layer",
            f"{name} not found ({err.response['Error']['Code']})",
            "pin a Powertools version AWS has published a layer for in this region in "
            "functions/requirements.txt",
        )
        return
    yield Result(PASS, "Powertools layer", name)


def alarm_email(ctx: Context) -> Iterator[Result]:
    email = ctx.settings.alarm_email
    if not ctx.production:
        yield Result(PASS, "alarm e-mail", email or "none (not a production stack)")
    elif not email:
        yield Result(FAIL, "alarm e-mail", "production alarms notify nobody", _ALARM_FIX)
    elif email.rsplit("@", 1)[1].lower() in _PLACEHOLDER_DOMAINS:
        yield Result(FAIL, "alarm e-mail", f"{email} is a placeholder address", _ALARM_FIX)
    else:
        yield Result(PASS, "alarm e-mail", f"{email} (confirm the SNS subscription e-mail)")


_ALARM_FIX = "pulumi config set alarmEmail <on-call address> --stack <stack>"


def cognito_email(ctx: Context) -> Iterator[Result]:
    # The user pool sends sign-up and reset codes with Cognito's built-in e-mail, which "allows
    # only a limited number of emails each day" - below typical production volume
    # (https://docs.aws.amazon.com/cognito-user-identity-pools/latest/APIReference/API_EmailConfigurationType.html).
    status = WARN if ctx.production or ctx.settings.self_sign_up else PASS
    yield Result(
        status,
        "Cognito e-mail",
        "built-in Cognito e-mail: a small daily sending quota (Cognito quotas page)",
        "for production volumes configure Amazon SES as the user pool's e-mail sender"
        if status == WARN
        else "",
    )


def lambda_concurrency(ctx: Context) -> Iterator[Result]:
    """A configured reservation fits the account, on a first deploy and on every re-run.

    Lambda grants a reservation only while at least 100 of the account's concurrency stay
    unreserved: "You can reserve up to the Unreserved account concurrency value that is shown,
    minus 100" (https://docs.aws.amazon.com/lambda/latest/dg/configuration-concurrency.html).
    ``UnreservedConcurrentExecutions`` (GetAccountSettings) already leaves out what the chat
    function reserves now (GetFunctionConcurrency; none before the first deploy), so that is
    added back: the function may hold up to unreserved + its own reservation - 100.
    """
    reserved = ctx.settings.chat_reserved_concurrency
    if not reserved:
        yield Result(PASS, "chat concurrency", "no reservation (shares the unreserved pool)")
        return
    lambda_ = ctx.client("lambda")
    try:
        unreserved = lambda_.get_account_settings()["AccountLimit"][
            "UnreservedConcurrentExecutions"
        ]
        current = _current_reservation(lambda_, ctx.settings.chat_function_name)
    except ClientError as err:
        yield Result(FAIL, "chat concurrency", f"cannot read ({err.response['Error']['Code']})", "")
        return
    room = unreserved + current - LAMBDA_UNRESERVED_MINIMUM
    if reserved > room:
        yield Result(
            FAIL,
            "chat concurrency",
            f"chatReservedConcurrency {reserved} > {max(room, 0)} reservable in this account "
            f"({unreserved} unreserved + {current} held by the chat function now - the "
            f"{LAMBDA_UNRESERVED_MINIMUM} Lambda keeps unreserved)",
            f"set chatReservedConcurrency to at most {max(room, 0)}, or to 0 (no reservation: "
            "the function shares the unreserved pool), or request a higher Lambda quota "
            "(Service Quotas: 'Concurrent executions')",
        )
        return
    yield Result(PASS, "chat concurrency", f"{reserved} reserved of {room} reservable")


def _current_reservation(lambda_: Any, function_name: str) -> int:
    """What the chat function reserves now: 0 before the first deploy or without a reservation."""
    try:
        answer = lambda_.get_function_concurrency(FunctionName=function_name)
    except ClientError as err:
        if err.response["Error"]["Code"] == "ResourceNotFoundException":
            return 0
        raise
    return int(answer.get("ReservedConcurrentExecutions") or 0)


CHECKS: tuple[Callable[[Context], Iterator[Result]], ...] = (
    pulumi_cli,
    credentials,
    models,
    powertools_layer,
    alarm_email,
    cognito_email,
    lambda_concurrency,
)
