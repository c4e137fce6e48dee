"""Channel rules and SigV4 verification of the local Event API, tested in-process and exactly."""

from __future__ import annotations

import datetime as dt

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials, ReadOnlyCredentials

from local.auth import (
    SigV4Verifier,
    Unauthorized,
    decode_header_subprotocol,
    encode_header_subprotocol,
)
from local.channels import InvalidChannel, parse_channel

URL = "http://127.0.0.1:8080/event"
BODY = b'{"channel":"/replies/abc","events":["{}"]}'
KEY, SECRET = "AKIDEXAMPLE", "secret"


def signed(
    body: bytes = BODY,
    *,
    secret: str = SECRET,
    region: str = "us-east-1",
    service: str = "appsync",
    token: str | None = None,
) -> dict[str, str]:
    request = AWSRequest(
        method="POST", url=URL, data=body, headers={"content-type": "application/json"}
    )
    SigV4Auth(Credentials(KEY, secret, token), service, region).add_auth(request)
    return {k.lower(): v for k, v in request.headers.items()} | {"host": "127.0.0.1:8080"}


def verifier(token: str | None = None, now: dt.datetime | None = None) -> SigV4Verifier:
    return SigV4Verifier(
        lambda: ReadOnlyCredentials(KEY, SECRET, token),
        region="us-east-1",
        account_id="123456789012",
        now=(lambda: now) if now else (lambda: dt.datetime.now(dt.UTC)),
    )


def test_a_botocore_signed_publish_verifies_as_an_iam_caller():
    caller = verifier().verify("POST", URL, signed(), BODY, "127.0.0.1")
    assert caller.mode == "AWS_IAM"
    assert caller.identity["accountId"] == "123456789012"
    assert caller.identity["sourceIp"] == ["127.0.0.1"]


@pytest.mark.parametrize(
    ("headers", "body"),
    [
        pytest.param(signed(secret="other"), BODY, id="other-secret"),
        pytest.param(signed(), BODY.replace(b"abc", b"abd"), id="changed-body"),
        pytest.param(signed(region="eu-west-1"), BODY, id="other-region"),
        pytest.param(signed(service="execute-api"), BODY, id="other-service"),
    ],
)
def test_signatures_that_do_not_match_are_unauthorized(headers, body):
    with pytest.raises(Unauthorized):
        verifier().verify("POST", URL, headers, body, "127.0.0.1")


def test_a_signature_older_than_five_minutes_is_unauthorized():
    later = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=6)
    with pytest.raises(Unauthorized, match="expired"):
        verifier(now=later).verify("POST", URL, signed(), BODY, "127.0.0.1")


def test_temporary_credentials_must_carry_their_session_token():
    with pytest.raises(Unauthorized, match="security token"):
        verifier(token="session").verify("POST", URL, signed(), BODY, "127.0.0.1")
    assert verifier(token="session").verify("POST", URL, signed(token="session"), BODY, "::1")


def test_the_header_subprotocol_round_trips_without_padding():
    headers = {"host": "example.appsync-api.us-east-1.amazonaws.com", "Authorization": "ey.J"}
    protocol = encode_header_subprotocol(headers)
    assert not protocol.endswith("=")
    assert decode_header_subprotocol(protocol) == headers


def test_a_header_subprotocol_that_is_not_json_is_unauthorized():
    with pytest.raises(Unauthorized):
        decode_header_subprotocol("header-bm90IGpzb24")


@pytest.mark.parametrize(
    ("subscription", "published", "delivered"),
    [
        ("/replies/u1", "/replies/u1", True),
        ("/replies/u1", "/replies/u2", False),
        ("/replies/*", "/replies/u1", True),
        ("/replies/*", "/replies/u1/deeper", True),
        ("/replies/u1/*", "/replies/u1", False),
        ("/replies/*", "/chat/u1", False),
    ],
)
def test_subscriptions_receive_exact_and_wildcard_matches(subscription, published, delivered):
    sub = parse_channel(subscription, allow_wildcard=True)
    assert sub.matches(parse_channel(published, allow_wildcard=False)) is delivered


@pytest.mark.parametrize(
    "path",
    [
        "",
        "/",
        "replies/u1",
        "/replies",
        "/replies/",
        "/replies/-u1",
        "/replies/u_1",
        "/a/b/c/d/e/f",
        "/replies/" + "x" * 51,
        "/*",
    ],
)
def test_channels_breaking_the_naming_rules_are_invalid(path):
    with pytest.raises(InvalidChannel):
        parse_channel(path, allow_wildcard=True)


def test_publishing_to_a_wildcard_is_invalid():
    with pytest.raises(InvalidChannel, match="Wildcards"):
        parse_channel("/replies/*", allow_wildcard=False)
