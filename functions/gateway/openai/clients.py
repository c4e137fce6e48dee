"""Machine clients: applications that call the OpenAI-compatible API with a client-credentials
token, each metered as one caller at the tier the stack config gives it.

The tier of each machine client reaches the door function in its environment, as
``MACHINE_CLIENT_TIERS``: a JSON object of Cognito app client id to tier name. An access token
from the client-credentials grant names its app client in the ``client_id`` claim and carries no
user (https://docs.aws.amazon.com/cognito/latest/developerguide/amazon-cognito-user-pools-using-the-access-token.html);
the app client ids exist only once the stack has created the clients, which is why the mapping
travels with the function rather than in the tier document the stack writes before them.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping

MACHINE_CLIENT_TIERS = "MACHINE_CLIENT_TIERS"


class MachineClientConfigError(ValueError):
    """``MACHINE_CLIENT_TIERS`` is not a JSON object of client id to tier name."""


def encode_machine_client_tiers(tiers: Mapping[str, str]) -> str:
    """The environment value for ``tiers`` (client id -> tier), in a stable order."""
    return json.dumps(dict(sorted(tiers.items())), separators=(",", ":"))


def machine_client_tiers(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """Client id -> tier of every machine client; empty when the stack declares none."""
    raw = (os.environ if environ is None else environ).get(MACHINE_CLIENT_TIERS, "")
    if not raw.strip():
        return {}
    try:
        tiers = json.loads(raw)
    except ValueError:
        raise MachineClientConfigError(f"{MACHINE_CLIENT_TIERS} is not JSON") from None
    if not isinstance(tiers, dict) or not all(
        isinstance(k, str) and k and isinstance(v, str) and v for k, v in tiers.items()
    ):
        raise MachineClientConfigError(
            f"{MACHINE_CLIENT_TIERS} must be a JSON object of client id to tier name"
        )
    return tiers
