"""The local user pool's token endpoint for machine clients: the client-credentials grant.

On AWS a stack with ``machineClients`` gets Cognito app clients with a secret and a user pool
domain whose ``/oauth2/token`` issues them access tokens
(https://docs.aws.amazon.com/cognito/latest/developerguide/token-endpoint.html). moto has no
token endpoint, so ``make dev`` serves this one at ``/oauth2/token`` on its own port, for the app
clients it created from the same stack config:

- **Request** (``application/x-www-form-urlencoded``): ``grant_type=client_credentials``, an
  optional ``scope`` (space-separated; by default every scope the client may ask for), the client
  authenticated with ``Authorization: Basic base64(client_id:client_secret)`` or with
  ``client_id`` and ``client_secret`` in the body, as Cognito accepts either.
- **Answer**: ``{"access_token", "expires_in", "token_type": "Bearer"}``. The access token is a
  JWT signed by the local pool's key (the one its JWKS publishes, so the door verifies it as any
  other token of the pool) with the claims Cognito gives a client-credentials token: ``sub`` and
  ``client_id`` both the app client's id, ``token_use: access``, ``scope``, ``auth_time``,
  ``iat``, ``exp``, ``iss``, ``jti`` and ``version: 2``
  (https://docs.aws.amazon.com/cognito/latest/developerguide/amazon-cognito-user-pools-using-the-access-token.html).
- **Errors**: OAuth 2.0's (RFC 6749 section 5.2, https://www.rfc-editor.org/rfc/rfc6749#section-5.2):
  ``invalid_request``, ``invalid_client`` (401 when the client tried the Authorization header),
  ``unsupported_grant_type``, ``invalid_scope``; ``{"error": code}`` as Cognito answers.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import jwt
from aiohttp import web

#: The kid moto's user pools sign with; their JWKS (``/.well-known/jwks.json``) publishes it.
_MOTO_KEY_ID = "dummy"


@dataclass(frozen=True)
class LocalMachineClient:
    """A machine client ``make dev`` created: its stack-config name, tier and credentials."""

    name: str
    tier: str
    client_id: str
    client_secret: str
    scopes: tuple[str, ...]

    def to_output(self) -> dict[str, str]:
        return {
            "clientId": self.client_id,
            "clientSecret": self.client_secret,
            "tier": self.tier,
            "scope": " ".join(self.scopes),
        }


class _TokenError(Exception):
    def __init__(self, code: str, status: int = 400) -> None:
        super().__init__(code)
        self.code = code
        self.status = status


def moto_signing_key() -> Any:
    """The private key moto's user pools sign their tokens with (moto ships one key for every
    pool; its public half is what the pool's JWKS serves)."""
    from moto.utilities.utils import load_resource

    document = load_resource("cognitoidp/resources/jwks-private.json")
    return jwt.PyJWK(document, algorithm="RS256").key


class TokenEndpoint:
    """``POST /oauth2/token`` for the client-credentials grant of the local machine clients."""

    def __init__(
        self,
        *,
        issuer: str,
        clients: Mapping[str, LocalMachineClient],
        lifetime_seconds: int,
        signing_key: Any,
    ) -> None:
        self._issuer = issuer
        self._clients = dict(clients)
        self._lifetime = lifetime_seconds
        self._key = signing_key

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post("/oauth2/token", self.handle)

    async def handle(self, request: web.Request) -> web.Response:
        try:
            form = await request.post()
            fields = {k: v for k, v in form.items() if isinstance(v, str)}
            answer = self.issue(request.headers.get("Authorization", ""), fields)
        except _TokenError as err:
            return web.json_response({"error": err.code}, status=err.status)
        return web.json_response(answer, headers={"Cache-Control": "no-store"})

    def issue(self, authorization: str, form: Mapping[str, str]) -> dict[str, Any]:
        """The token answer for one request, or :class:`_TokenError`."""
        client = self._authenticate(authorization, form)
        if form.get("grant_type") != "client_credentials":
            code = "invalid_request" if "grant_type" not in form else "unsupported_grant_type"
            raise _TokenError(code)
        scopes = self._scopes(client, form.get("scope"))
        now = int(time.time())
        claims = {
            "sub": client.client_id,
            "token_use": "access",
            "scope": " ".join(scopes),
            "auth_time": now,
            "iss": self._issuer,
            "exp": now + self._lifetime,
            "iat": now,
            "version": 2,
            "jti": str(uuid.uuid4()),
            "client_id": client.client_id,
        }
        token = jwt.encode(claims, self._key, algorithm="RS256", headers={"kid": _MOTO_KEY_ID})
        return {"access_token": token, "expires_in": self._lifetime, "token_type": "Bearer"}

    def _authenticate(self, authorization: str, form: Mapping[str, str]) -> LocalMachineClient:
        if authorization:
            scheme, _, encoded = authorization.partition(" ")
            try:
                decoded = base64.b64decode(encoded.strip(), validate=True).decode()
            except (binascii.Error, UnicodeDecodeError):
                raise _TokenError("invalid_client", 401) from None
            client_id, separator, secret = decoded.partition(":")
            if scheme.lower() != "basic" or not separator:
                raise _TokenError("invalid_client", 401)
            status = 401
        elif "client_id" in form:
            client_id, secret, status = form["client_id"], form.get("client_secret", ""), 400
        else:
            raise _TokenError("invalid_request")
        client = self._clients.get(client_id)
        if client is None or not hmac.compare_digest(
            client.client_secret.encode(), secret.encode()
        ):
            raise _TokenError("invalid_client", status)
        return client

    @staticmethod
    def _scopes(client: LocalMachineClient, requested: str | None) -> tuple[str, ...]:
        if requested is None or not requested.strip():
            return client.scopes
        asked = tuple(dict.fromkeys(requested.split()))
        if any(scope not in client.scopes for scope in asked):
            raise _TokenError("invalid_scope")
        return asked


def outputs(clients: Mapping[str, LocalMachineClient]) -> dict[str, Any]:
    """What ``.local/outputs.json`` says of the machine clients (the secrets included: the local
    pool is throwaway, and an application needs them to get a token)."""
    return {name: client.to_output() for name, client in sorted(clients.items())}
