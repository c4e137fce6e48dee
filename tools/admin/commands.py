"""The CLI's commands: each reads what it needs, changes at most one user, audits the change and
returns what to print (rows for a table, or a message)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from gateway.metering import limits_view, usd
from gateway.tiers import TierConfig
from gateway.windows import iso_utc

from tools.admin.audit import AuditLine, AuditLog
from tools.admin.directory import Directory, TokenLifetimes, User
from tools.admin.turns import TurnHistory, ranked
from tools.admin.usage_items import UsageItems


class AdminError(Exception):
    """A request the CLI refuses before changing anything (unknown tier, declined reset...)."""


@dataclass
class Admin:
    """What the commands work on; built once per run by :mod:`tools.admin.__main__`."""

    tiers: TierConfig
    directory: Directory
    usage: UsageItems
    history: Callable[[], TurnHistory]
    audit: AuditLog
    user_pool_client_id: str
    clock: Callable[[], float] = time.time
    confirm: Callable[[str], bool] = field(default=lambda prompt: False)

    # -- reading -------------------------------------------------------------------------------

    def users(self, tier: str | None) -> list[dict[str, Any]]:
        if tier is not None:
            self._check_tier(tier)
        now = int(self.clock())
        items = {item.sub: item for item in self.usage.all()}
        rows = []
        for user in sorted(self.directory.users(self.tiers), key=lambda u: u.username):
            user_tier = user.tier(self.tiers)
            if tier is not None and user_tier != tier:
                continue
            item = items.get(user.sub)
            settled = item.snapshot.settled(now) if item else {}
            rows.append(
                {
                    "username": user.username,
                    "sub": user.sub,
                    "tier": user_tier,
                    "status": _status(user),
                    "todayTokens": settled.get("dailyInputTokens", 0)
                    + settled.get("dailyOutputTokens", 0),
                    "monthTokens": settled.get("monthlyInputTokens", 0)
                    + settled.get("monthlyOutputTokens", 0),
                    "todayUsd": usd(settled.get("dailyUsd", 0)),
                    "monthUsd": usd(settled.get("monthlyUsd", 0)),
                }
            )
        return rows

    def usage_of(self, name: str, recent: int = 10) -> dict[str, Any]:
        user = self.directory.find(name)
        item = self.usage.get(user.sub)
        now = int(self.clock())
        tier = self.tiers.tier_for_groups(user.groups)
        view = limits_view(tier, item.snapshot.committed(now))
        return {
            "username": user.username,
            "sub": user.sub,
            "tier": tier.name,
            "status": _status(user),
            "windows": [{"window": w, **v} for w, v in view.items()],
            "liveReservations": len(item.snapshot.live_reservations(now)),
            "recentTurns": self.history().recent(user.sub, recent),
        }

    def top(self, by: str, days: int, limit: int) -> list[dict[str, Any]]:
        if days < 1:
            raise AdminError("--days must be at least 1")
        totals = ranked(self.history().totals(days), by, limit)
        names = {u.sub: u.username for u in self.directory.users(self.tiers)}
        return [
            {
                "username": names.get(t.user_id, "-"),
                "sub": t.user_id,
                "turns": t.turns,
                "tokens": t.tokens,
                "usd": t.cost_usd,
            }
            for t in totals
        ]

    # -- changes -------------------------------------------------------------------------------

    def set_tier(self, name: str, tier: str) -> str:
        self._check_tier(tier)
        user = self.directory.find(name)
        before = user.tier(self.tiers)
        self.directory.move(user, tier, self.tiers)
        after = self.directory.find(user.username)
        self._audit(
            "set-tier",
            user,
            {"tier": before, "groups": list(user.groups)},
            {"tier": after.tier(self.tiers), "groups": list(after.groups)},
        )
        lifetimes = self.directory.token_lifetimes(self.user_pool_client_id)
        return (
            f"{user.username}: tier {before} -> {tier}.\n"
            f"It takes effect at the user's next sign-in or token refresh: the tier is read from "
            f"the token's groups. {_lifetime_note(lifetimes)}"
        )

    def block(self, name: str) -> str:
        user = self.directory.find(name)
        now = int(self.clock())
        self.directory.disable(user)
        self.usage.block(user.sub, now)
        self._audit(
            "block", user, {"enabled": user.enabled}, {"enabled": False, "tokensValidAfter": now}
        )
        return (
            f"{user.username}: disabled and signed out everywhere; every turn with a token "
            f"issued before {iso_utc(now)} is refused (account_blocked)."
        )

    def unblock(self, name: str) -> str:
        user = self.directory.find(name)
        item = self.usage.get(user.sub)
        self.directory.enable(user)
        self._audit("unblock", user, {"enabled": user.enabled}, {"enabled": True})
        kept = item.snapshot.tokens_valid_after
        note = (
            f" Tokens issued before {iso_utc(kept)} stay refused: the user signs in again."
            if kept
            else ""
        )
        return f"{user.username}: enabled.{note}"

    def reset(self, name: str, window: str, *, yes: bool) -> str:
        user = self.directory.find(name)
        item = self.usage.get(user.sub)
        now = int(self.clock())
        before = item.snapshot.settled(now)
        if not yes and not self.confirm(
            f"Clear the {window} usage of {user.username} ({_brief(before)})? [y/N] "
        ):
            raise AdminError("reset cancelled; nothing changed")
        removed = self.usage.reset(item, window)
        after = self.usage.get(user.sub).snapshot.settled(now)
        self._audit("reset", user, {"window": window, **before}, {"window": window, **after})
        return f"{user.username}: {window} usage cleared ({len(removed)} counters removed)."

    # -- helpers ---------------------------------------------------------------------------

    def _check_tier(self, tier: str) -> None:
        if tier not in self.tiers.tiers:
            raise AdminError(
                f"unknown tier {tier!r}; the stack's tiers: {', '.join(sorted(self.tiers.tiers))}"
            )

    def _audit(
        self, action: str, user: User, before: dict[str, Any], after: dict[str, Any]
    ) -> None:
        self.audit.write(
            AuditLine(
                who=self.audit.who,
                action=action,
                target={"username": user.username, "sub": user.sub},
                before=before,
                after=after,
                at=self.clock(),
            )
        )


def _status(user: User) -> str:
    if not user.enabled:
        return "blocked"
    return user.status.lower() or "enabled"


def _brief(settled: dict[str, int]) -> str:
    return json.dumps(
        {
            "today": settled["dailyInputTokens"] + settled["dailyOutputTokens"],
            "month": settled["monthlyInputTokens"] + settled["monthlyOutputTokens"],
        }
    )


def _lifetime_note(lifetimes: TokenLifetimes) -> str:
    longest = lifetimes.longest
    if longest is None:
        return "The app client sets no token lifetime, so Cognito's default applies."
    return (
        f"The stack's access and ID tokens live up to {_duration(longest)}, so a signed-in "
        f"user keeps the old tier for at most that long (or until the app refreshes sooner)."
    )


def _duration(seconds: int) -> str:
    if seconds % 3600 == 0:
        hours = seconds // 3600
        return f"{hours} hour{'s' if hours != 1 else ''}"
    if seconds % 60 == 0:
        return f"{seconds // 60} minutes"
    return f"{seconds} seconds"
