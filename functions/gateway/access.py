"""Who is calling and which channels they own.

A user owns exactly one channel per namespace, ``/<namespace>/<sub>``, where ``sub`` is the
Cognito subject of the caller as AppSync authenticated it. Identity always comes from the
AppSync event's ``identity``, never from a payload.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

# AppSync channel segments are letters, digits and dashes (≤ 50); Cognito subs are UUIDs.
# Matched with ``fullmatch``: ``$`` would also accept a trailing newline.
_SUB = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{0,49}")


@dataclass(frozen=True)
class Caller:
    """An authenticated end user: their Cognito ``sub`` and group names."""

    sub: str
    groups: tuple[str, ...] = ()
    username: str = ""
    #: When the user signed in for the token this request carries (its ``auth_time`` claim, else
    #: ``iat``), in epoch seconds; None when the token says neither. Checked against the
    #: account's block (:mod:`gateway.blocks`).
    auth_time: int | None = None


def caller_from_identity(identity: Any) -> Caller | None:
    """The end user behind an AppSync identity, or ``None`` when there is none we accept.

    Only user-pool identities (with a ``sub``) are end users. IAM identities, API keys (no
    identity) and Lambda-authorizer contexts own no channel, and neither does a ``sub`` that
    could not be a channel segment, a bare ``{"sub": …}`` that is no AppSync identity, or one
    whose token claims name another subject.
    """
    if not isinstance(identity, Mapping):
        return None
    sub = identity.get("sub")
    if not isinstance(sub, str) or not _SUB.fullmatch(sub):
        return None
    # IAM identities never carry a sub; refuse anything that looks like a mix of both.
    if "accountId" in identity or "userArn" in identity:
        return None
    # A user-pool (or OIDC) identity as AppSync sends it names its user beyond the bare sub…
    if not any(identity.get(key) for key in ("username", "issuer", "claims")):
        return None
    # …and its token's claims, when present, are about that same user.
    claims = identity.get("claims")
    if claims is not None and (not isinstance(claims, Mapping) or claims.get("sub", sub) != sub):
        return None
    return Caller(
        sub=sub,
        groups=_groups(identity),
        username=str(identity.get("username") or ""),
        auth_time=signed_in_at(claims if isinstance(claims, Mapping) else None),
    )


def signed_in_at(claims: Mapping[str, Any] | None) -> int | None:
    """When the token's user signed in: ``auth_time``, else ``iat`` (epoch seconds).

    AppSync hands a Cognito user-pool identity its token's ``claims`` with numbers as JSON
    numbers (``"auth_time": 1664354661``, an identity as AppSync sends it:
    https://advancedweb.hu/what-is-the-identity-in-the-appsync-resolver-context/; the identity
    object of an Event API handler: https://docs.aws.amazon.com/appsync/latest/eventapi/context-reference.html).
    API Gateway's REST Cognito authorizer passes every claim as a string, ``auth_time`` as its
    digits but ``iat``/``exp`` as dates
    (https://note.kiriukun.com/entry/20191106-get-cognito-userpool-claims-in-lambda), so
    ``auth_time`` comes first and only digits are read. ``auth_time`` stays the sign-in time
    across refreshes, which is what a block needs: a refresh token is revoked with the block
    (``AdminUserGlobalSignOut``), so no token minted after it can carry an older sign-in.
    """
    if claims is None:
        return None
    for name in ("auth_time", "iat"):
        value = claims.get(name)
        if isinstance(value, bool):
            continue
        if isinstance(value, int | float) and value > 0:
            return int(value)
        if isinstance(value, str) and value.strip().isdigit():
            return int(value.strip())
    return None


def _groups(identity: Mapping[str, Any]) -> tuple[str, ...]:
    groups = identity.get("groups")
    if groups is None:
        claims = identity.get("claims")
        groups = claims.get("cognito:groups") if isinstance(claims, Mapping) else None
    if isinstance(groups, str):
        groups = groups.split(",") if groups else []
    if not isinstance(groups, Sequence):
        return ()
    return tuple(g for g in groups if isinstance(g, str) and g)


def owns_channel(caller: Caller, namespace: str, path: Any, segments: Any | None = None) -> bool:
    """True only when ``path`` is exactly ``/<namespace>/<caller.sub>``.

    Wildcards, extra or empty segments, other namespaces and other users' subs are all refused;
    when AppSync also sent the parsed ``segments`` they must say the same thing.
    """
    if not isinstance(path, str) or path != f"/{namespace}/{caller.sub}":
        return False
    if segments is None:
        return True
    return isinstance(segments, Sequence) and list(segments) == [namespace, caller.sub]
