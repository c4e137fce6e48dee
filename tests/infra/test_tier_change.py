"""A tier change is config only: it updates the tier parameter (and, for models, the model policy).

Two declarations that differ only in a tier's limits or models must give every other resource
identical inputs, tags included - so `pulumi up` changes no code, table, user pool or bucket.
"""

from __future__ import annotations

import json

from infra_support import comparable

from devtools.declare import DeclaredResource, DeclaredStack, declare_stack

PARAMETER = "aws:ssm/parameter:Parameter"
OBJECT = "aws:s3/bucketObjectv2:BucketObjectv2"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
UNTOUCHABLE = (
    "aws:dynamodb/table:Table",
    "aws:cognito/userPool:UserPool",
    "aws:cognito/userPoolClient:UserPoolClient",
    "aws:cognito/userGroup:UserGroup",
    "aws:s3/bucket:Bucket",
    "aws:lambda/function:Function",
    # the hosted app: its config.json carries no tier data, so a tier change leaves the site alone
    OBJECT,
    "aws:cloudfront/distribution:Distribution",
)


def _changed(before: DeclaredStack, after: DeclaredStack) -> dict[str, str]:
    """URN -> type of every resource whose inputs (or tags) differ, appear or disappear."""
    old = {r.urn: r for r in before.resources}
    new = {r.urn: r for r in after.resources}
    changed = {urn: new[urn].type for urn in new.keys() - old.keys()}
    changed.update({urn: old[urn].type for urn in old.keys() - new.keys()})
    for urn in old.keys() & new.keys():
        if _signature(old[urn]) != _signature(new[urn]):
            changed[urn] = new[urn].type
    return changed


def _signature(resource: DeclaredResource) -> tuple:
    """What `pulumi up` would diff: the inputs (code by content) and the tags AWS ends up with."""
    return comparable(resource.inputs), resource.outputs.get("tagsAll")


def _tier_document(stack: DeclaredStack) -> dict:
    return json.loads(stack.one(PARAMETER).inputs["value"])


def test_a_limit_change_changes_only_the_tier_parameter_with_the_new_value(dev):
    # GIVEN `pulumi config set --path 'tiers.pro.dailyOutputTokens' 500000`
    after = declare_stack("dev", {"tiers.pro.dailyOutputTokens": 500000})
    # THEN only the tier parameter changes ...
    assert set(_changed(dev, after).values()) == {PARAMETER}
    # ... and it carries the new value as written
    assert _tier_document(after)["tiers"]["pro"]["dailyOutputTokens"] == 500000
    assert _tier_document(dev)["tiers"]["pro"]["dailyOutputTokens"] == 400000


def test_every_limit_of_every_tier_can_change_without_touching_anything_else(dev):
    overrides = {
        f"tiers.{tier}.{key}": value * 2
        for tier, settings in dev.config["ai-gateway:tiers"].items()
        for key, value in settings.items()
        if key.endswith("Tokens") or key == "maxOutputTokensPerTurn"
    }
    after = declare_stack("dev", overrides)
    assert set(_changed(dev, after).values()) == {PARAMETER}


def test_a_model_change_changes_only_the_tier_parameter_and_the_model_policy(dev):
    # GIVEN the free tier also allows Nova Pro and Nova Pro's US inference profile
    models = [
        *dev.config["ai-gateway:tiers"]["free"]["models"],
        "amazon.nova-pro-v1:0",
        "us.amazon.nova-pro-v1:0",
    ]
    after = declare_stack("dev", {"tiers.free.models": models})
    changed = _changed(dev, after)
    # THEN exactly the tier parameter and the model-access policies of the two functions that
    # run turns (the chat function and the OpenAI door) change
    assert sorted(changed.values()) == [ROLE_POLICY, ROLE_POLICY, PARAMETER]
    policy_urns = sorted(urn for urn, t in changed.items() if t == ROLE_POLICY)
    assert [u.rsplit("::", 1)[1].removeprefix("ai-gateway-dev-") for u in policy_urns] == [
        "functions-chat-model-access",
        "openai-model-access",
    ]
    # ... the parameter lists the models as written, and the policies cover the new profile
    assert _tier_document(after)["tiers"]["free"]["models"] == models
    for policy_urn in policy_urns:
        policy = after.by_urn(policy_urn).inputs["policy"]
        assert "inference-profile/us.amazon.nova-pro-v1:0" in policy


def test_changing_a_default_model_within_the_allowlist_changes_only_the_parameter(dev):
    after = declare_stack("dev", {"tiers.free.defaultModel": "amazon.nova-lite-v1:0"})
    assert set(_changed(dev, after).values()) == {PARAMETER}


def test_no_tier_change_touches_tables_user_pool_buckets_or_function_code(dev):
    for overrides in (
        {"tiers.pro.monthlyInputTokens": 9_000_000},
        {"tiers.pro.models": ["amazon.nova-lite-v1:0", "amazon.nova-pro-v1:0"]},
        {"tiers.free.cache": False},
    ):
        changed = set(_changed(dev, declare_stack("dev", overrides)).values())
        assert not changed & set(UNTOUCHABLE), overrides


def test_the_hosted_apps_config_carries_no_tier_data(dev):
    (config,) = [o for o in dev.of_type(OBJECT) if o.inputs["key"] == "config.json"]
    document = json.loads(config.inputs["content"])
    tier_words = {"tier", "tiers", "tierConfig", "models", "defaultTier", "limits"}
    assert not tier_words & set(document)
    for tier in dev.config["ai-gateway:tiers"].values():
        assert not any(model in config.inputs["content"] for model in tier["models"])


def test_redeclaring_the_same_config_changes_nothing(dev):
    # The comparison itself must be able to see "no change": archives, names and ARNs are stable.
    again = declare_stack("dev", {"tiers.pro.dailyOutputTokens": 400000})
    assert _changed(dev, again) == {}


def test_a_non_tier_change_is_visible_to_the_comparison(dev):
    # Guards the comparison from passing vacuously: a retention change touches the log groups.
    after = declare_stack("dev", {"logRetentionDays": 14})
    assert "aws:cloudwatch/logGroup:LogGroup" in set(_changed(dev, after).values())
