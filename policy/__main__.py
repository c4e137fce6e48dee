"""The ai-gateway policy pack: guard rails every stack must pass (``pulumi preview --policy-pack
policy``). The policies live in ``gateway_policies``; this file only assembles them."""

from gateway_policies import PACK_NAME, POLICIES
from pulumi_policy import EnforcementLevel, PolicyPack

PolicyPack(
    name=PACK_NAME,
    description="Guard rails for the ai-gateway: encryption, private buckets, least-privilege "
    "IAM, supported runtimes, protected production data, approved models, tags, alarms and "
    "a private, HTTPS-only CDN for the chat app.",
    enforcement_level=EnforcementLevel.MANDATORY,
    policies=POLICIES,
)
