"""Authorisation as AppSync Events does it: Cognito user-pool JWTs and IAM (SigV4) signatures.

A caller is resolved from the headers a client sends — the HTTP request's headers, or the
``authorization`` object of a WebSocket message, or the ``header-<base64url>`` subprotocol — into an
:class:`Caller` carrying the ``identity`` object AppSync passes to handlers.
"""

from __future__ import annotations

import base64
import datetime as dt
import hmac
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import jwt
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import ReadOnlyCredentials

_SIGV4 = re.compile(
    r"^AWS4-HMAC-SHA256\s+Credential=(?P<key>[^/,\s]+)/(?P<date>\d{8})/(?P<region>[^/]+)/"
    r"(?P<service>[^/]+)/aws4_request,\s*SignedHeaders=(?P<signed>[a-z0-9;-]+),\s*"
    r"Signature=(?P<signature>[0-9a-f]{64})$"
)
_CLOCK_SKEW = dt.timedelta(minutes=5)


class AuthMode(StrEnum):
    """The authorisation modes the gateway's Event API uses."""

    COGNITO = "AMAZON_COGNITO_USER_POOLS"
    IAM = "AWS_IAM"


class Unauthorized(Exception):
    """The request carries no valid credentials for the operation."""


@dataclass(frozen=True)
class Caller:
    """An authenticated caller and the ``identity`` object handlers receive."""

    mode: AuthMode
    identity: dict[str, Any]

    @property
    def sub(self) -> str | None:
        return self.identity.get("sub")


def decode_header_subprotocol(protocol: str) -> dict[str, str]:
    """``header-<base64url(JSON)>`` (padding optional) → the headers it carries."""
    encoded = protocol.removeprefix("header-")
    try:
        raw = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
        headers = json.loads(raw)
    except ValueError as err:
        raise Unauthorized("The authorization subprotocol is not base64url-encoded JSON") from err
    if not isinstance(headers, dict) or not all(isinstance(v, str) for v in headers.values()):
        raise Unauthorized("The authorization subprotocol must encode an object of strings")
    return headers


def encode_header_subprotocol(headers: Mapping[str, str]) -> str:
    """The inverse of :func:`decode_header_subprotocol`, as clients build it."""
    raw = json.dumps(dict(headers)).encode()
    return "header-" + base64.urlsafe_b64encode(raw).decode().rstrip("=")


class CognitoVerifier:
    """Verifies user-pool tokens against the pool's JWKS: signature, issuer, use, expiry, client."""

    def __init__(self, *, issuer: str, client_id: str, jwks: Mapping[str, Any]) -> None:
        self.issuer = issuer
        self.client_id = client_id
        self._keys = {key.key_id: key for key in jwt.PyJWKSet.from_dict(dict(jwks)).keys}

    def verify(self, token: str, source_ip: str) -> Caller:
        claims = self._claims(token)
        use = claims.get("token_use")
        audience = claims.get("aud") if use == "id" else claims.get("client_id")
        if use not in ("id", "access"):
            raise Unauthorized("The token is neither an ID nor an access token")
        if audience != self.client_id:
            raise Unauthorized("The token was issued to another app client")

        groups = claims.get("cognito:groups")
        return Caller(
            mode=AuthMode.COGNITO,
            identity={
                "sub": claims["sub"],
                "issuer": self.issuer,
                "username": claims.get("cognito:username") or claims.get("username"),
                "claims": claims,
                "sourceIp": [source_ip],
                "defaultAuthStrategy": "ALLOW",
                "groups": list(groups) if groups else None,
            },
        )

    def verify_access_token(self, token: str, client_ids: frozenset[str]) -> dict[str, Any]:
        """The claims of an access token one of ``client_ids`` holds, checked as API Gateway's
        Cognito authorizer checks a method with OAuth scopes: an access token only (an ID token
        is refused), signed by the pool, unexpired."""
        claims = self._claims(token)
        if claims.get("token_use") != "access":
            raise Unauthorized("An access token is required (ID tokens are not accepted)")
        if claims.get("client_id") not in client_ids:
            raise Unauthorized("The token was issued to an app client this API does not accept")
        return claims

    def _claims(self, token: str) -> dict[str, Any]:
        token = token.removeprefix("Bearer ").strip()
        try:
            header = jwt.get_unverified_header(token)
            key = self._keys.get(header.get("kid"))
            if key is None:
                raise Unauthorized("The token was not signed by this user pool")
            claims = jwt.decode(
                token,
                key=key.key,
                algorithms=["RS256"],
                issuer=self.issuer,
                options={"verify_aud": False, "require": ["exp", "iat", "iss", "sub"]},
            )
        except jwt.ExpiredSignatureError as err:
            raise Unauthorized("The token has expired") from err
        except jwt.PyJWTError as err:
            raise Unauthorized(f"The token is not valid: {err}") from err
        return dict(claims)


class SigV4Verifier:
    """Verifies SigV4 signatures (service ``appsync``) made with the credentials it trusts."""

    def __init__(
        self,
        credentials: Callable[[], ReadOnlyCredentials | None],
        *,
        region: str,
        account_id: str,
        now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self._credentials = credentials
        self.region = region
        self.account_id = account_id
        self._now = now

    def verify(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str],
        body: bytes,
        source_ip: str,
    ) -> Caller:
        lower = {k.lower(): v for k, v in headers.items()}
        match = _SIGV4.match(lower.get("authorization", "").strip())
        if not match:
            raise Unauthorized("The Authorization header is not a SigV4 signature")
        trusted = self._credentials()
        if trusted is None or not hmac.compare_digest(match["key"], trusted.access_key):
            raise Unauthorized("The request was signed with unknown credentials")
        if match["service"] != "appsync" or match["region"] != self.region:
            raise Unauthorized(
                f"The signature's scope must be {self.region}/appsync, "
                f"got {match['region']}/{match['service']}"
            )
        if trusted.token and lower.get("x-amz-security-token") != trusted.token:
            raise Unauthorized("The request's security token does not match its credentials")

        stamp = lower.get("x-amz-date", "")
        try:
            signed_at = dt.datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.UTC)
        except ValueError as err:
            raise Unauthorized("X-Amz-Date is missing or malformed") from err
        if abs(self._now() - signed_at) > _CLOCK_SKEW or not stamp.startswith(match["date"]):
            raise Unauthorized("The signature has expired or is not yet valid")

        signed_names = match["signed"].split(";")
        missing = [name for name in signed_names if name not in lower]
        if missing or "host" not in signed_names:
            raise Unauthorized("The signed headers are not all present (host must be signed)")
        request = AWSRequest(
            method=method, url=url, data=body, headers={n: lower[n] for n in signed_names}
        )
        request.context["timestamp"] = stamp
        signer = SigV4Auth(trusted, "appsync", self.region)
        canonical = signer.canonical_request(request)
        expected = signer.signature(signer.string_to_sign(request, canonical), request)
        if signer.signed_headers(signer.headers_to_sign(request)) != match["signed"]:
            raise Unauthorized("The signed headers do not match the request")
        if not hmac.compare_digest(expected, match["signature"]):
            raise Unauthorized("The request signature does not match")

        user = f"arn:aws:iam::{self.account_id}:user/local-gateway"
        return Caller(
            mode=AuthMode.IAM,
            identity={
                "accountId": self.account_id,
                "cognitoIdentityAuthProvider": None,
                "cognitoIdentityAuthType": None,
                "cognitoIdentityId": None,
                "cognitoIdentityPoolId": None,
                "sourceIp": [source_ip],
                "userArn": user,
                "username": match["key"],
            },
        )


class Authorizer:
    """Resolves a caller from the headers of one request, for the modes an operation allows."""

    def __init__(self, cognito: CognitoVerifier, sigv4: SigV4Verifier) -> None:
        self.cognito = cognito
        self.sigv4 = sigv4

    def authorize(
        self,
        headers: Mapping[str, str],
        allowed: frozenset[AuthMode],
        *,
        source_ip: str,
        method: str = "POST",
        path: str = "/event",
        body: bytes = b"",
    ) -> Caller:
        lower = {str(k).lower(): str(v) for k, v in headers.items()}
        value = lower.get("authorization", "")
        if not value:
            raise Unauthorized("No Authorization header")
        if not lower.get("host"):
            raise Unauthorized("The authorization headers must include host")
        if value.startswith("AWS4-HMAC-SHA256"):
            if AuthMode.IAM not in allowed:
                raise Unauthorized("IAM authorization is not allowed for this operation")
            return self.sigv4.verify(
                method, f"http://{lower['host']}{path}", lower, body, source_ip
            )
        if AuthMode.COGNITO not in allowed:
            raise Unauthorized("Cognito user-pool authorization is not allowed for this operation")
        return self.cognito.verify(value, source_ip)
