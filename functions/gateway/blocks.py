"""An operator's block of one account, as the gateway enforces it on every turn.

Blocking a user in Cognito (``AdminDisableUser`` + ``AdminUserGlobalSignOut``) stops new sign-ins
and refreshes, but an access or ID token already issued stays valid until it expires ("Other
requests might be valid until your user's token expires":
https://docs.aws.amazon.com/cognito-user-identity-pools/latest/APIReference/API_AdminUserGlobalSignOut.html),
and AppSync and API Gateway check tokens without asking Cognito. So the block also writes
``tokensValidAfter`` (epoch seconds) on the user's usage item, the item a turn's admission
already writes under a condition: a turn whose token's sign-in time is not after it is refused
(``account_blocked``), by the same read and conditional write, adding no request to a turn.

Unblocking re-enables the user in Cognito and leaves the mark: tokens from before the block stay
refused, and a new sign-in (which only an enabled user can make) is after it.
"""

from __future__ import annotations

from dataclasses import dataclass

#: The usage item's attribute holding the block's time (epoch seconds).
TOKENS_VALID_AFTER = "tokensValidAfter"


@dataclass(frozen=True)
class Blocked:
    """A turn refused because its token was issued before the account's block at
    ``valid_after``."""

    valid_after: int


def blocked(tokens_valid_after: int, auth_time: int | None) -> Blocked | None:
    """The block a token signed in at ``auth_time`` falls under, if any.

    Whole seconds on both sides, so a token signed in during the block's own second is refused
    (the safe side). A token that names no sign-in time is refused once any block exists.
    """
    if not tokens_valid_after:
        return None
    if auth_time is None or auth_time <= tokens_valid_after:
        return Blocked(tokens_valid_after)
    return None
