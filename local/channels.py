"""Channel paths and channel namespaces, with the rules AppSync Events applies to them.

A channel is ``/<namespace>/<segment>...``: up to five segments ("A channel namespace is made up of
a maximum of five segments": https://docs.aws.amazon.com/appsync/latest/eventapi/channel-namespaces.html)
of letters, digits and inner hyphens, up to 50 characters each. Subscriptions may end in ``/*`` to
match every channel below; publishes name one channel exactly.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from local.auth import AuthMode

# fullmatch, not match with "$": "$" also matches before a trailing newline, so "abc\n" would pass.
_SEGMENT = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,48}[A-Za-z0-9])?")
MAX_SEGMENTS = 5


class InvalidChannel(ValueError):
    """A channel path breaks the Event API's naming rules."""


@dataclass(frozen=True)
class Channel:
    """A parsed channel path; ``wildcard`` when it ends in ``/*``."""

    path: str
    segments: tuple[str, ...]
    wildcard: bool = False

    @property
    def namespace(self) -> str:
        return self.segments[0]

    def matches(self, published: Channel) -> bool:
        """Whether a subscription on this channel receives events published to ``published``."""
        if not self.wildcard:
            return self.segments == published.segments
        prefix = self.segments
        return len(published.segments) > len(prefix) and published.segments[: len(prefix)] == prefix

    def to_event_info(self) -> dict[str, object]:
        """``info.channel`` as handlers receive it."""
        segments = [*self.segments, "*"] if self.wildcard else list(self.segments)
        return {"path": self.path, "segments": segments}


def parse_channel(path: object, *, allow_wildcard: bool) -> Channel:
    """Parse and validate ``path``; raises :class:`InvalidChannel` naming the problem."""
    if not isinstance(path, str) or not path.startswith("/"):
        raise InvalidChannel("A channel is a path starting with '/', e.g. /namespace/channel")
    parts = path[1:].split("/")
    wildcard = parts[-1] == "*"
    if wildcard:
        if not allow_wildcard:
            raise InvalidChannel("Wildcards are only allowed when subscribing")
        parts = parts[:-1]
    if not parts or parts == [""]:
        raise InvalidChannel("A channel needs a namespace and at least one segment")
    if len(parts) + (1 if wildcard else 0) > MAX_SEGMENTS:
        raise InvalidChannel(f"A channel has at most {MAX_SEGMENTS} segments")
    for part in parts:
        if not _SEGMENT.fullmatch(part):
            raise InvalidChannel(
                f"Invalid channel segment '{part}': 1-50 letters, digits and inner hyphens"
            )
    if len(parts) < 2 and not wildcard:
        raise InvalidChannel("A channel needs a namespace and at least one segment")
    return Channel(path=path, segments=tuple(parts), wildcard=wildcard)


@dataclass(frozen=True)
class Namespace:
    """A channel namespace: who may publish and subscribe, and which handlers run."""

    name: str
    publish_auth: frozenset[AuthMode]
    subscribe_auth: frozenset[AuthMode]
    on_publish: str | None = None  # handler name, invoked in EVENT mode (asynchronously)
    on_subscribe: str | None = None  # handler name, invoked in REQUEST_RESPONSE mode


def gateway_namespaces(inbound: str, outbound: str) -> Mapping[str, Namespace]:
    """The gateway's two namespaces, with the auth modes its Event API declares.

    Users publish turns (Cognito) to ``inbound``, where only the gateway could subscribe (IAM);
    the gateway publishes answers (IAM) to ``outbound``, where users subscribe (Cognito).
    """
    cognito, iam = frozenset({AuthMode.COGNITO}), frozenset({AuthMode.IAM})
    return {
        inbound: Namespace(inbound, publish_auth=cognito, subscribe_auth=iam, on_publish="chat"),
        outbound: Namespace(
            outbound, publish_auth=iam, subscribe_auth=cognito, on_subscribe="subscribe"
        ),
    }
