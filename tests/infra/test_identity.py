"""IdentityComponent: the user pool, its SPA client and one group per tier."""

from __future__ import annotations

from infra_support import component

from devtools.declare import declare_stack

USER_POOL = "aws:cognito/userPool:UserPool"
CLIENT = "aws:cognito/userPoolClient:UserPoolClient"
GROUP = "aws:cognito/userGroup:UserGroup"
IDP = "aws:cognito/identityProvider:IdentityProvider"
DOMAIN = "aws:cognito/userPoolDomain:UserPoolDomain"


def test_users_sign_in_with_their_email_address(stack):
    pool = stack.one(USER_POOL).inputs
    assert pool["usernameAttributes"] == ["email"]
    assert pool["autoVerifiedAttributes"] == ["email"]


def test_passwords_need_twelve_characters_of_every_class(stack):
    policy = stack.one(USER_POOL).inputs["passwordPolicy"]
    assert policy["minimumLength"] >= 12
    for rule in ("requireLowercase", "requireUppercase", "requireNumbers", "requireSymbols"):
        assert policy[rule] is True, rule


def test_prod_requires_totp_mfa_and_protects_the_pool_from_deletion(prod):
    pool = prod.one(USER_POOL).inputs
    assert pool["mfaConfiguration"] == "ON"
    assert pool["softwareTokenMfaConfiguration"] == {"enabled": True}
    assert pool["deletionProtection"] == "ACTIVE"


def test_dev_makes_mfa_optional_and_the_pool_deletable(dev):
    pool = dev.one(USER_POOL).inputs
    assert pool["mfaConfiguration"] == "OPTIONAL"
    assert pool["deletionProtection"] == "INACTIVE"


def test_mfa_off_declares_no_totp_configuration():
    pool = declare_stack("dev", {"mfa": "OFF"}).one(USER_POOL).inputs
    assert pool["mfaConfiguration"] == "OFF"
    assert "softwareTokenMfaConfiguration" not in pool


def test_only_operators_create_accounts_unless_self_sign_up_is_on(dev):
    assert dev.one(USER_POOL).inputs["adminCreateUserConfig"]["allowAdminCreateUserOnly"] is True
    opened = declare_stack("dev", {"selfSignUp": True}).one(USER_POOL).inputs
    assert opened["adminCreateUserConfig"]["allowAdminCreateUserOnly"] is False


def test_web_client_is_public_with_srp_and_refresh_only(stack):
    client = stack.one(CLIENT).inputs
    assert client["generateSecret"] is False
    assert sorted(client["explicitAuthFlows"]) == [
        "ALLOW_REFRESH_TOKEN_AUTH",
        "ALLOW_USER_SRP_AUTH",
    ]
    assert client["preventUserExistenceErrors"] == "ENABLED"
    assert client["enableTokenRevocation"] is True
    assert client["supportedIdentityProviders"] == ["COGNITO"]


def test_web_client_returns_to_the_configured_callback_urls_and_the_hosted_app(dev):
    client = dev.one(CLIENT).inputs
    assert client["callbackUrls"] == [*dev.config["ai-gateway:callbackUrls"], dev.outputs["webUrl"]]
    assert client["logoutUrls"] == client["callbackUrls"]
    assert client["allowedOauthFlows"] == ["code"]


def test_without_the_hosted_app_the_client_returns_to_the_configured_urls_only():
    stack = declare_stack("dev", {"web": False})
    client = stack.one(CLIENT).inputs
    assert client["callbackUrls"] == stack.config["ai-gateway:callbackUrls"]
    assert "webUrl" not in stack.outputs


def test_each_tier_is_a_group_and_the_higher_tier_wins(prod):
    groups = {g.inputs["name"]: g.inputs["precedence"] for g in prod.of_type(GROUP)}
    assert set(groups) == set(prod.config["ai-gateway:tiers"])
    # Cognito ranks the lowest precedence first: enterprise beats pro beats free.
    assert groups["enterprise"] < groups["pro"] < groups["free"]


def test_a_tier_with_explicit_precedence_keeps_it(dev):
    tiers = dict(dev.config["ai-gateway:tiers"])
    tiers["pro"] = {**tiers["pro"], "precedence": 3}
    groups = declare_stack("dev", {"tiers": tiers}).of_type(GROUP)
    assert {g.inputs["name"]: g.inputs["precedence"] for g in groups}["pro"] == 3


def test_no_federated_provider_or_hosted_domain_unless_configured(stack):
    assert stack.of_type(IDP) == []
    assert stack.of_type(DOMAIN) == []


def test_configured_google_sign_in_adds_provider_domain_and_client_support():
    # GIVEN a stack that configures Google sign-in
    google = {"google": {"clientId": "client-123", "clientSecret": "s3cret"}}
    stack = declare_stack("dev", {"identityProviders": google})
    # THEN the provider, the hosted domain and the client all know about it
    provider = stack.one(IDP).inputs
    assert provider["providerName"] == "Google"
    assert provider["providerType"] == "Google"
    assert provider["providerDetails"]["client_id"] == "client-123"
    assert stack.one(DOMAIN).inputs["domain"].startswith("ai-gateway-dev-")
    assert stack.one(CLIENT).inputs["supportedIdentityProviders"] == ["COGNITO", "Google"]


def test_identity_children_are_parented_to_the_identity_component(dev):
    identity = component(dev, "Identity")
    for resource in [dev.one(USER_POOL), dev.one(CLIENT), *dev.of_type(GROUP)]:
        assert resource.parent == identity.urn
