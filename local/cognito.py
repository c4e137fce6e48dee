"""The local user pool's sign-in endpoint: Cognito's user-facing API in front of moto.

Clients sign in at ``/cognito-idp/`` on the gateway's own port (Amplify's ``userPoolEndpoint``,
the built-in UI, or any AWS SDK given it as its Cognito endpoint). Only the operations a signed-out
or signed-in user may call are forwarded; admin operations are refused. Two things are fixed on
the way, so clients written for Cognito work unchanged:

- **SRP is checked.** moto issues random ``SRP_B``/``SALT`` and accepts any signature; here the
  PASSWORD_VERIFIER challenge is issued and verified for real (:mod:`local.srp`), so a wrong
  password is refused with ``NotAuthorizedException`` as Cognito refuses it.
- **``USERNAME`` may be the user's ``sub``.** Amplify answers PASSWORD_VERIFIER with
  ``USERNAME`` = ``USER_ID_FOR_SRP`` (aws-amplify/amplify-js,
  packages/auth/src/providers/cognito/utils/handlePasswordVerifierChallenge.ts), which moto sets to
  the ``sub``, and moto's RespondToAuthChallenge looks users up by user name only. The answer is
  forwarded with the user name the challenge was issued for.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import aiohttp
from aiohttp import web

from local.srp import SrpChallenge

log = logging.getLogger("local.cognito")

#: Cognito operations a browser or app may call (no admin APIs through this door).
USER_OPERATIONS = frozenset(
    {
        "InitiateAuth",
        "RespondToAuthChallenge",
        "GetUser",
        "GlobalSignOut",
        "RevokeToken",
        "GetTokensFromRefreshToken",
        "ChangePassword",
    }
)
TARGET_PREFIX = "AWSCognitoIdentityProviderService."
CHALLENGE_TTL_SECONDS = 300.0
#: Looks up a user's password: (user pool id, user name) → password, or None.
PasswordLookup = Callable[[str, str], str | None]


@dataclass(frozen=True)
class _Pending:
    pool_id: str
    username: str
    challenge: SrpChallenge
    expires: float


class CognitoFront:
    """``POST /cognito-idp/``: forwards user operations to moto, doing SRP's server half itself."""

    def __init__(self, moto_endpoint: str, user_pool_id: str, password_of: PasswordLookup) -> None:
        self._moto = moto_endpoint.rstrip("/") + "/"
        self._pool_id = user_pool_id
        self._pool_name = user_pool_id.split("_", 1)[-1]
        self._password_of = password_of
        self._pending: dict[str, _Pending] = {}
        self._lock = threading.Lock()
        self._session: aiohttp.ClientSession | None = None

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post("/cognito-idp/", self.handle)
        app.on_cleanup.append(self._close)

    async def handle(self, request: web.Request) -> web.Response:
        target = request.headers.get("X-Amz-Target", "")
        operation = target.removeprefix(TARGET_PREFIX)
        if not target.startswith(TARGET_PREFIX) or operation not in USER_OPERATIONS:
            return _error(
                "NotAuthorizedException", f"{operation or 'This operation'} is not available here"
            )
        body = await request.read()
        try:
            document = json.loads(body)
        except (ValueError, RecursionError):
            return _error("SerializationException", "The request body is not valid JSON")
        if not isinstance(document, dict):
            return _error("SerializationException", "The request body must be a JSON object")

        if operation == "RevokeToken":
            # moto does not implement RevokeToken (it answers 500, and Amplify's signOut calls
            # it). The local pool's tokens die with the process; answer as Cognito does.
            return web.json_response({}, content_type=_JSON)
        if operation == "InitiateAuth" and document.get("AuthFlow") == "USER_SRP_AUTH":
            return await self._initiate_srp(target, document)
        if (
            operation == "RespondToAuthChallenge"
            and document.get("ChallengeName") == "PASSWORD_VERIFIER"
        ):
            refused = self._verify_password_claim(document)
            if refused is not None:
                return refused
        status, answer = await self._forward(target, document)
        return web.Response(body=answer, status=status, content_type="application/x-amz-json-1.1")

    async def _initiate_srp(self, target: str, document: dict) -> web.Response:
        status, answer = await self._forward(target, document)
        if status != 200:
            return web.Response(body=answer, status=status, content_type=_JSON)
        result = json.loads(answer)
        params = result.get("ChallengeParameters") or {}
        username = params.get("USERNAME", "")
        password = self._password_of(self._pool_id, username)
        srp_a = str((document.get("AuthParameters") or {}).get("SRP_A", ""))
        if result.get("ChallengeName") != "PASSWORD_VERIFIER" or password is None:
            return _error("NotAuthorizedException", "Incorrect username or password.")
        try:
            challenge = SrpChallenge.start(
                self._pool_name, params["USER_ID_FOR_SRP"], password, srp_a
            )
        except (KeyError, ValueError):
            return _error("InvalidParameterException", "SRP_A is missing or not valid")
        now = time.monotonic()
        with self._lock:
            self._pending = {k: v for k, v in self._pending.items() if v.expires > now}
            self._pending[params["SECRET_BLOCK"]] = _Pending(
                self._pool_id, username, challenge, now + CHALLENGE_TTL_SECONDS
            )
        result["ChallengeParameters"] = {**params, **challenge.challenge_parameters}
        return web.json_response(result, content_type=_JSON)

    def _verify_password_claim(self, document: dict) -> web.Response | None:
        """Check the claim; on success, name the user by user name for moto. None when accepted."""
        responses = document.get("ChallengeResponses")
        if not isinstance(responses, dict):
            return _error("InvalidParameterException", "ChallengeResponses is required")
        secret_block = str(responses.get("PASSWORD_CLAIM_SECRET_BLOCK", ""))
        with self._lock:
            # One attempt per challenge, as Cognito's session is spent by an answer.
            pending = self._pending.pop(secret_block, None)
        if pending is None or pending.expires < time.monotonic():
            return _error("NotAuthorizedException", "Invalid session for the user.")
        claimed = str(responses.get("USERNAME", ""))
        if claimed not in (pending.username, pending.challenge.user_id):
            return _error("NotAuthorizedException", "Incorrect username or password.")
        try:
            valid = pending.challenge.verify(
                secret_block,
                str(responses.get("TIMESTAMP", "")),
                str(responses.get("PASSWORD_CLAIM_SIGNATURE", "")),
            )
        except ValueError:
            valid = False
        if not valid:
            return _error("NotAuthorizedException", "Incorrect username or password.")
        responses["USERNAME"] = pending.username
        return None

    async def _forward(self, target: str, document: Mapping) -> tuple[int, bytes]:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        async with self._session.post(
            self._moto,
            data=json.dumps(document),
            headers={"X-Amz-Target": target, "Content-Type": _JSON},
        ) as upstream:
            return upstream.status, await upstream.read()

    async def _close(self, app: web.Application) -> None:
        if self._session is not None:
            await self._session.close()


_JSON = "application/x-amz-json-1.1"


def _error(error_type: str, message: str, status: int = 400) -> web.Response:
    return web.json_response(
        {"__type": error_type, "message": message}, status=status, content_type=_JSON
    )
