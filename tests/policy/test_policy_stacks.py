"""The real stacks under the pack: every resource ``__main__.py`` declares for dev and prod (Pulumi
mocks), analyzed by pulumi-policy's analyzer with ``policy/config.json``, as CI's preview does."""

from __future__ import annotations

import pytest

from policy.offline import PackResult, PolicyConfigError, analyze_stack, load_config_file

# Declaring a stack imports pulumi_aws, whose deprecated aliases warn on import.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

NARROW_CATALOG = ["amazon.nova-micro-v1:0", "amazon.nova-lite-v1:0", "amazon.nova-pro-v1:0"]
# Active on Bedrock and known to model-catalog.json (so the program declares it), but not in the
# organisation's approved list in policy/config.json.
UNAPPROVED = "us.amazon.nova-pro-v1:0"


def _listing(result: PackResult) -> str:
    return "\n".join(
        f"  [{v.enforcement_level}] {v.policy} {v.resource_name}: {v.message}"
        for v in result.violations
    )


def _culprits(result: PackResult, policy: str) -> set[str | None]:
    return {v.resource_name for v in result.of_policy(policy)}


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_stack_passes_the_pack_with_no_mandatory_violation(stack: str):
    result = analyze_stack(stack)
    assert result.resource_count > 30
    assert not result.mandatory, f"{stack} violates the pack:\n{_listing(result)}"


def test_prod_without_point_in_time_recovery_is_blocked_on_every_table():
    result = analyze_stack("prod", {"pointInTimeRecovery": False})
    found = result.of_policy("prod-data-protected")
    assert {v.resource_type for v in found} == {"aws:dynamodb/table:Table"}
    assert len(_culprits(result, "prod-data-protected")) == 2  # usage and prepared responses
    assert all(v.mandatory and "pointInTimeRecovery" in v.message for v in found)


def test_prod_without_deletion_protection_is_blocked_on_pool_tables_and_bucket():
    result = analyze_stack("prod", {"deletionProtection": False})
    types = {v.resource_type for v in result.of_policy("prod-data-protected")}
    assert types == {
        "aws:cognito/userPool:UserPool",
        "aws:dynamodb/table:Table",
        "aws:s3/bucket:Bucket",
    }


def test_prod_with_optional_mfa_is_blocked():
    result = analyze_stack("prod", {"mfa": "OPTIONAL"})
    assert [v.resource_type for v in result.of_policy("cognito-mfa-in-prod")] == [
        "aws:cognito/userPool:UserPool"
    ]


def test_prod_without_waf_is_blocked():
    result = analyze_stack("prod", {"waf": False})
    assert [v.resource_type for v in result.of_policy("prod-event-api-waf")] == [
        "aws:appsync/api:Api"
    ]


def test_prod_without_web_access_logs_is_blocked():
    result = analyze_stack("prod", {"webLogging": False})
    assert [v.resource_type for v in result.of_policy("prod-cloudfront-access-logs")] == [
        "aws:cloudfront/distribution:Distribution"
    ]


def test_a_custom_domain_passes_the_cdn_policies():
    certificate = (
        "arn:aws:acm:us-east-1:123456789012:certificate/0f0e0d0c-1b1a-2c2b-3d3c-4e4d4c4b4a49"
    )
    result = analyze_stack(
        "prod", {"webDomain": "chat.example.com", "webCertificateArn": certificate}
    )
    assert not result.mandatory, _listing(result)


def test_a_tier_model_outside_the_catalog_is_blocked_in_tier_config_and_iam():
    models = ["amazon.nova-lite-v1:0", "amazon.nova-pro-v1:0", UNAPPROVED]
    result = analyze_stack("dev", {"tiers.pro.models": models})
    found = result.of_policy("models-in-catalog")
    assert {v.resource_type for v in found} == {
        "aws:ssm/parameter:Parameter",  # what the functions enforce
        "aws:iam/rolePolicy:RolePolicy",  # what the chat role may invoke
    }
    assert all(UNAPPROVED in v.message for v in found)


def test_the_approved_catalog_comes_from_the_policy_config():
    config = {**load_config_file(), "models-in-catalog": {"approvedModels": NARROW_CATALOG}}
    result = analyze_stack("prod", config=config)
    messages = " ".join(v.message for v in result.of_policy("models-in-catalog"))
    assert "us.anthropic.claude-haiku-4-5-20251001-v1:0" in messages
    assert "amazon.nova-pro-v1:0" not in messages


def test_config_can_downgrade_a_policy_to_advisory():
    config = {
        "models-in-catalog": {"enforcementLevel": "advisory", "approvedModels": NARROW_CATALOG}
    }
    result = analyze_stack("prod", config=config)
    assert result.of_policy("models-in-catalog")
    assert {v.enforcement_level for v in result.of_policy("models-in-catalog")} == {"advisory"}
    assert not result.mandatory


def test_config_all_disabled_silences_the_pack():
    config = {"all": "disabled", "models-in-catalog": {"approvedModels": NARROW_CATALOG}}
    assert not analyze_stack("prod", config=config).violations


def test_required_tags_come_from_the_policy_config():
    result = analyze_stack("dev", config={"required-tags": {"requiredTags": ["owner"]}})
    found = result.of_policy("required-tags")
    assert len(found) > 10 and all("owner" in v.message for v in found)


def test_config_naming_an_unknown_policy_is_rejected():
    with pytest.raises(PolicyConfigError, match="no-such-policy"):
        analyze_stack("dev", config={"no-such-policy": "mandatory"})


def test_config_not_matching_a_policy_schema_is_rejected():
    with pytest.raises(PolicyConfigError, match="models-in-catalog: approvedModels"):
        analyze_stack("dev", config={"models-in-catalog": {"approvedModels": "amazon.nova"}})


def test_config_with_a_bad_enforcement_level_is_rejected():
    with pytest.raises(PolicyConfigError, match="blocking"):
        analyze_stack("dev", config={"s3-tls-only": "blocking"})


def test_prod_with_machine_clients_and_a_custom_domain_passes_the_pack():
    # Machine clients hold a secret (cognito-public-client exempts them, cognito-machine-client
    # checks them) and the door's stage still sits behind the web ACL.
    result = analyze_stack(
        "prod",
        {
            "machineClients": {"reporting-bot": {"tier": "pro"}},
            "openAiDomain": "api.example.com",
            "openAiCertificateArn": (
                "arn:aws:acm:us-east-1:123456789012:certificate/0f0e0d0c-1b1a-2c2b-3d3c-4e4d4c4b4a49"
            ),
        },
    )
    assert not result.mandatory, _listing(result)


def test_prod_without_waf_is_blocked_on_the_event_api_and_the_openai_stage():
    result = analyze_stack("prod", {"waf": False})
    assert {v.resource_type for v in result.of_policy("prod-rest-api-waf")} == {
        "aws:apigateway/stage:Stage"
    }
    assert result.of_policy("prod-event-api-waf")
