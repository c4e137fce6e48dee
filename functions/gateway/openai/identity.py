"""Who is calling the OpenAI-compatible API, from the claims its authorizer verified.

On AWS, API Gateway's Cognito user pool authorizer checks the bearer token before any code runs
and puts the token's claims in the request context (``requestContext.authorizer.claims``); the
Lambda Web Adapter forwards that context to the door's HTTP server as JSON in the
``x-amzn-request-context`` header (adapter docs, "Request & Lambda Context":
https://github.com/awslabs/aws-lambda-web-adapter, ``docs/request-context.md``: "API Gateway sends
metadata (requestId, requestTime, apiId, identity, authorizer) for each request. This is forwarded
in the ``x-amzn-request-context`` header as a JSON string."). ``make dev`` verifies the token
itself and hands the door a context of the same shape.

Two kinds of caller:

* **a user**: the token's ``sub`` and ``cognito:groups`` (the tier), exactly as on the chat
  channel, so both doors draw on one usage item;
* **a machine client** (client-credentials grant): the token carries no user, and names its app
  client in ``client_id``; ``MACHINE_CLIENT_TIERS`` maps that id to a tier
  (:mod:`gateway.openai.clients`). It is metered as one caller whose ``sub`` is the client id.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from gateway.access import Caller, signed_in_at

#: A ``sub`` the usage item may be keyed by: a Cognito subject (a UUID) or an app client id.
_SUB = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{0,127}")


def context_from_header(raw: str | None) -> Mapping[str, Any] | None:
    """API Gateway's request context from the adapter's header (``None`` if absent or not an
    object)."""
    if not raw:
        return None
    try:
        context = json.loads(raw)
    except ValueError:
        return None
    return context if isinstance(context, dict) else None


def claims_of(context: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    """The verified token's claims in a request context (REST API Cognito authorizers put them
    at ``authorizer.claims``)."""
    if not isinstance(context, Mapping):
        return None
    authorizer = context.get("authorizer")
    claims = authorizer.get("claims") if isinstance(authorizer, Mapping) else None
    return claims if isinstance(claims, Mapping) else None


def caller_from_claims(
    claims: Mapping[str, Any] | None, machine_tiers: Mapping[str, str]
) -> Caller | None:
    """The caller the claims name, or ``None`` when they name none this door accepts."""
    if claims is None:
        return None
    client_id = claims.get("client_id")
    if isinstance(client_id, str) and client_id in machine_tiers:
        # A machine client's app client allows only the client-credentials grant, so every token
        # it holds is a machine token: metered as the client, at its configured tier.
        if not _SUB.fullmatch(client_id):
            return None
        return Caller(sub=client_id, groups=(machine_tiers[client_id],), username=client_id)
    sub = claims.get("sub")
    if not isinstance(sub, str) or not _SUB.fullmatch(sub):
        return None
    if "username" not in claims and "cognito:username" not in claims:
        return None  # a client-credentials token of a client the stack does not map to a tier
    username = claims.get("username") or claims.get("cognito:username") or ""
    return Caller(
        sub=sub, groups=groups_of(claims), username=str(username), auth_time=signed_in_at(claims)
    )


def groups_of(claims: Mapping[str, Any]) -> tuple[str, ...]:
    """``cognito:groups`` as a tuple. A JWT carries a list; API Gateway's REST authorizer passes
    every claim as a string — a comma-separated list, or the bracketed, space-separated form
    (``[free pro]``) its JWT authorizers use — so each is read."""
    value = claims.get("cognito:groups")
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("[") and text.endswith("]"):
            parts = text[1:-1].replace(",", " ").split()
        else:
            parts = text.split(",")
        return tuple(p.strip() for p in parts if p.strip())
    if isinstance(value, list | tuple):
        return tuple(g for g in value if isinstance(g, str) and g)
    return ()
