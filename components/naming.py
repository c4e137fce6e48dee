"""Physical names that fit AWS's limits for every stack name the program accepts.

Resources without an explicit name get one from Pulumi: the logical name plus ``-`` and 7 random
hex characters (pulumi-terraform-bridge ``AutoName``: ``Randlen: 7``), which pulumi-aws applies
with a 255-character ceiling to every resource with a ``name`` input
(pulumi/pulumi-aws ``provider/autonaming.go``: ``maxLength := 255``) - it does not shorten a name
to the service's own limit, so a long one fails at create time. Logical names are therefore kept
short enough for the longest stack name :mod:`settings` accepts (``MAX_STACK_NAME_LENGTH``);
``tests/infra/test_name_limits.py`` checks every declared name against AWS's limits.

Some logical names were shortened for that. :func:`renamed` aliases each to its old name, so an
existing stack keeps the resource: Pulumi sees the same resource, and the provider reuses the
physical name it has in its state ("Reuse the value from prior state if available",
pulumi-terraform-bridge ``ComputeAutoNameDefault``; https://www.pulumi.com/docs/iac/concepts/options/aliases/).
"""

from __future__ import annotations

import pulumi

#: What Pulumi appends to a logical name to make a physical one: "-" and 7 hex characters.
AUTONAME_SUFFIX_LENGTH = 8


def stack_prefix(component_name: str) -> str:
    """``ai-gateway-<stack>`` from a component named ``ai-gateway-<stack>-<noun>``."""
    return component_name.rsplit("-", 1)[0]


def renamed(was: str, **options: object) -> pulumi.ResourceOptions:
    """Options for a resource whose logical name used to be ``was`` (and ``options``)."""
    return pulumi.ResourceOptions(aliases=[pulumi.Alias(name=was)], **options)  # type: ignore[arg-type]
