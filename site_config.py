"""``config.json`` of the chat app: the one builder behind every copy of it.

The hosted app (``components.web``), a packaged site (``python -m local.webconfig``) and the local
gateway (``make dev``) all serve this document, so one build of the app runs against each. It
never carries tier data: the page asks the gateway for its tier, models and usage over the chat
channel (the ``usage`` request in docs/wire.md), so a tier change leaves the hosted site untouched.

Standard library only, and outside ``components`` (whose package imports Pulumi), so the local
gateway imports it without loading the Pulumi program.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

#: Stack outputs the app needs; other outputs (table names, ARNs) never reach the browser.
CONFIG_OUTPUTS = (
    "region",
    "userPoolId",
    "userPoolClientId",
    "eventsHttpEndpoint",
    "eventsRealtimeEndpoint",
    "inboundNamespace",
    "outboundNamespace",
)

#: What a caller may set besides the outputs, with the deployed stack's values as defaults. A
#: closed list, so tier data (or anything else) cannot slip in through a caller.
CONFIG_OPTIONS: dict[str, Any] = {
    # A deployed app client allows SRP only (no plain passwords over the wire).
    "authFlow": "USER_SRP_AUTH",
    "modelProvider": "bedrock",
    "environment": "aws",
    "stack": "",
    # The local gateway's same-origin Cognito front and its demo users.
    "userPoolEndpoint": None,
    "cognitoEndpoint": None,
    "demoUsers": None,
}


def config_document(outputs: Mapping[str, Any], **options: Any) -> dict[str, Any]:
    """``config.json`` as a dict: the UI's outputs, then ``options`` over their defaults."""
    missing = [name for name in CONFIG_OUTPUTS if not outputs.get(name)]
    if missing:
        raise ValueError(f"config.json needs the stack outputs {', '.join(missing)}")
    unknown = sorted(set(options) - set(CONFIG_OPTIONS))
    if unknown:
        raise ValueError(f"config.json has no key {', '.join(unknown)}")
    chosen = {**CONFIG_OPTIONS, **options}
    return {
        **{name: outputs[name] for name in CONFIG_OUTPUTS},
        **{key: value for key, value in chosen.items() if value is not None},
    }
