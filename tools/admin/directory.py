"""The user pool as the operator sees it: users, their tier groups, sign-in state and tokens.

Every call is a documented Cognito admin API (IAM-authorised):
https://docs.aws.amazon.com/cognito-user-identity-pools/latest/APIReference/API_Operations.html
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from gateway.tiers import TierConfig

#: Seconds per unit of ``TokenValidityUnits``; a missing unit is hours for ID and access tokens
#: (https://docs.aws.amazon.com/cognito-user-identity-pools/latest/APIReference/API_TokenValidityUnitsType.html).
_UNIT_SECONDS = {"seconds": 1, "minutes": 60, "hours": 3600, "days": 86_400}


class UnknownUser(LookupError):
    """No user of the pool has that username or sub."""


@dataclass(frozen=True)
class User:
    """One user of the pool."""

    username: str
    sub: str
    enabled: bool
    status: str
    groups: tuple[str, ...]

    def tier(self, tiers: TierConfig) -> str:
        """The tier the gateway gives this user (the same rule as the functions')."""
        return tiers.tier_for_groups(self.groups).name


@dataclass(frozen=True)
class TokenLifetimes:
    """How long the app client's access and ID tokens live, in seconds (None: not set)."""

    access_seconds: int | None
    id_seconds: int | None

    @property
    def longest(self) -> int | None:
        known = [s for s in (self.access_seconds, self.id_seconds) if s is not None]
        return max(known) if known else None


class Directory:
    """The Cognito admin calls the CLI makes, on one user pool."""

    def __init__(self, cognito: Any, user_pool_id: str) -> None:
        self._cognito = cognito
        self._pool = user_pool_id

    def users(self, tiers: TierConfig) -> list[User]:
        """Every user with their groups (one ``ListUsersInGroup`` walk per tier group)."""
        groups: dict[str, list[str]] = {}
        for tier in tiers.tiers:
            for raw in self._pages("list_users_in_group", "Users", GroupName=tier):
                groups.setdefault(raw["Username"], []).append(tier)
        return [
            _user(raw, tuple(groups.get(raw["Username"], ())))
            for raw in self._pages("list_users", "Users")
        ]

    def find(self, name: str) -> User:
        """A user by username, or by ``sub``; :class:`UnknownUser` when neither matches."""
        client = self._cognito
        try:
            raw = client.admin_get_user(UserPoolId=self._pool, Username=name)
            raw = {**raw, "Attributes": raw.get("UserAttributes", [])}
        except client.exceptions.UserNotFoundException:
            found = client.list_users(UserPoolId=self._pool, Filter=f'sub = "{_quoted(name)}"')
            if not found.get("Users"):
                raise UnknownUser(f"no user named or with sub {name!r}") from None
            raw = found["Users"][0]
        return _user(raw, self._groups_of(raw["Username"]))

    def move(self, user: User, tier: str, tiers: TierConfig) -> None:
        """Leave every tier group but ``tier``, and join it (other groups are left alone)."""
        if tier not in user.groups:
            self._cognito.admin_add_user_to_group(
                UserPoolId=self._pool, Username=user.username, GroupName=tier
            )
        for group in user.groups:
            if group in tiers.tiers and group != tier:
                self._cognito.admin_remove_user_from_group(
                    UserPoolId=self._pool, Username=user.username, GroupName=group
                )

    def disable(self, user: User) -> None:
        """No new sign-in, and every refresh token revoked
        (https://docs.aws.amazon.com/cognito-user-identity-pools/latest/APIReference/API_AdminDisableUser.html,
        https://docs.aws.amazon.com/cognito-user-identity-pools/latest/APIReference/API_AdminUserGlobalSignOut.html)."""
        self._cognito.admin_disable_user(UserPoolId=self._pool, Username=user.username)
        self._cognito.admin_user_global_sign_out(UserPoolId=self._pool, Username=user.username)

    def enable(self, user: User) -> None:
        self._cognito.admin_enable_user(UserPoolId=self._pool, Username=user.username)

    def token_lifetimes(self, client_id: str) -> TokenLifetimes:
        """The app client's token lifetimes (``DescribeUserPoolClient``)."""
        found = self._cognito.describe_user_pool_client(UserPoolId=self._pool, ClientId=client_id)
        described = found["UserPoolClient"]
        units = described.get("TokenValidityUnits") or {}

        def seconds(value_key: str, unit_key: str) -> int | None:
            value = described.get(value_key)
            if not value:
                return None
            return int(value) * _UNIT_SECONDS.get(units.get(unit_key, "hours"), 3600)

        return TokenLifetimes(
            seconds("AccessTokenValidity", "AccessToken"), seconds("IdTokenValidity", "IdToken")
        )

    def _groups_of(self, username: str) -> tuple[str, ...]:
        pages = self._pages("admin_list_groups_for_user", "Groups", Username=username)
        return tuple(g["GroupName"] for g in pages)

    def _pages(self, operation: str, key: str, **kwargs: Any) -> Iterator[dict[str, Any]]:
        token_name = "PaginationToken" if operation == "list_users" else "NextToken"
        request: dict[str, Any] = {"UserPoolId": self._pool, **kwargs}
        while True:
            page = getattr(self._cognito, operation)(**request)
            yield from page.get(key, [])
            token = page.get(token_name)
            if not token:
                return
            request[token_name] = token


def _user(raw: dict[str, Any], groups: tuple[str, ...]) -> User:
    attributes = {a["Name"]: a["Value"] for a in raw.get("Attributes", [])}
    return User(
        username=raw["Username"],
        sub=attributes.get("sub", ""),
        enabled=bool(raw.get("Enabled", True)),
        status=str(raw.get("UserStatus", "")),
        groups=tuple(sorted(groups)),
    )


def _quoted(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')
