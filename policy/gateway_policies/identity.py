"""Sign-in: strong passwords, MFA in production, user-facing clients that hold no secret and
whose refresh tokens can be revoked, and machine clients that can do nothing but the
client-credentials grant."""

from __future__ import annotations

from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
)

from ._props import PRODUCTION_ONLY, as_list, get, is_production

USER_POOL = "aws:cognito/userPool:UserPool"
USER_POOL_CLIENT = "aws:cognito/userPoolClient:UserPoolClient"

_CHARACTER_CLASSES = ("requireLowercase", "requireUppercase", "requireNumbers", "requireSymbols")


def _cognito_password_policy(args: ResourceValidationArgs, report_violation: ReportViolation):
    if args.resource_type != USER_POOL:
        return
    config = args.get_config()
    policy = get(args.props, "passwordPolicy", default={})
    minimum = config.get("minimumLength", 12)
    length = get(policy, "minimumLength")
    if not isinstance(length, int | float) or length < minimum:
        report_violation(
            f"passwordPolicy.minimumLength is {length!r}; it must be at least {minimum:g}."
        )
    for key in _CHARACTER_CLASSES:
        if config.get(key) and get(policy, key) is not True:
            report_violation(f"Set passwordPolicy.{key} = true.")
    longest = config.get("maxTemporaryPasswordValidityDays", 7)
    validity = get(policy, "temporaryPasswordValidityDays")
    if isinstance(validity, int | float) and validity > longest:
        report_violation(
            f"passwordPolicy.temporaryPasswordValidityDays is {validity:g}; at most {longest:g}."
        )


cognito_password_policy = ResourceValidationPolicy(
    name="cognito-password-policy",
    description="Cognito user pools require passwords of a minimum length and the configured "
    "character classes; temporary passwords expire quickly.",
    enforcement_level=EnforcementLevel.MANDATORY,
    config_schema=PolicyConfigSchema(
        properties={
            "minimumLength": {
                "type": "integer",
                "minimum": 8,
                "description": "Shortest password a user may choose.",
                "default": 12,
            },
            "requireLowercase": {"type": "boolean", "default": True},
            "requireUppercase": {"type": "boolean", "default": True},
            "requireNumbers": {"type": "boolean", "default": True},
            "requireSymbols": {"type": "boolean", "default": False},
            "maxTemporaryPasswordValidityDays": {
                "type": "integer",
                "minimum": 1,
                "description": "Longest an admin-issued temporary password may stay valid.",
                "default": 7,
            },
        }
    ),
    validate=_cognito_password_policy,
)


def _cognito_mfa_in_prod(args: ResourceValidationArgs, report_violation: ReportViolation):
    if args.resource_type != USER_POOL or not is_production(args, args.get_config()):
        return
    if get(args.props, "mfaConfiguration") != "ON":
        report_violation(
            f"mfaConfiguration is {get(args.props, 'mfaConfiguration')!r}; a production user "
            "pool requires MFA ('ON')."
        )
    if get(args.props, "softwareTokenMfaConfiguration", "enabled") is not True:
        report_violation("Enable softwareTokenMfaConfiguration (TOTP authenticator apps).")


cognito_mfa_in_prod = ResourceValidationPolicy(
    name="cognito-mfa-in-prod",
    description="In production, Cognito user pools require MFA for every user, with TOTP "
    "authenticator apps enabled.",
    enforcement_level=EnforcementLevel.MANDATORY,
    config_schema=PRODUCTION_ONLY,
    validate=_cognito_mfa_in_prod,
)


def is_machine_client(props: object) -> bool:
    """A client whose only OAuth flow is the client-credentials grant: an application, not a
    user, holds its tokens. Cognito requires such a client to have a secret
    (https://docs.aws.amazon.com/cognito/latest/developerguide/federation-endpoints-oauth-grants.html)."""
    return as_list(get(props, "allowedOauthFlows", default=[])) == ["client_credentials"]


def _cognito_public_client(args: ResourceValidationArgs, report_violation: ReportViolation):
    if args.resource_type != USER_POOL_CLIENT:
        return
    if get(args.props, "generateSecret") is True and not is_machine_client(args.props):
        report_violation(
            "generateSecret is true: the web and CLI clients run where a secret cannot be kept; "
            "use a public client (PKCE/SRP)."
        )
    if get(args.props, "enableTokenRevocation") is not True:
        report_violation(
            "Set enableTokenRevocation = true so signing out or disabling a user revokes its "
            "refresh tokens."
        )
    if get(args.props, "preventUserExistenceErrors") != "ENABLED":
        report_violation(
            "Set preventUserExistenceErrors = 'ENABLED' so sign-in errors do not reveal which "
            "usernames exist."
        )


cognito_public_client = ResourceValidationPolicy(
    name="cognito-public-client",
    description="Cognito app clients users sign in with are public clients: no client secret, "
    "refresh-token revocation on, and no user-existence errors. Machine clients (only the "
    "client-credentials grant) may hold a secret.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_cognito_public_client,
)


def _cognito_machine_client(args: ResourceValidationArgs, report_violation: ReportViolation):
    if args.resource_type != USER_POOL_CLIENT:
        return
    flows = as_list(get(args.props, "allowedOauthFlows", default=[]))
    if "client_credentials" not in flows:
        return
    if flows != ["client_credentials"]:
        others = sorted(f for f in flows if f != "client_credentials")
        report_violation(
            f"A client-credentials client also allows {', '.join(others)}: users could sign in "
            "with a client whose secret an application holds. Give machines their own client."
        )
    user_flows = sorted(
        f
        for f in as_list(get(args.props, "explicitAuthFlows", default=None) or ["(default)"])
        if f != "ALLOW_REFRESH_TOKEN_AUTH"
    )
    if user_flows:
        report_violation(
            f"explicitAuthFlows allows {', '.join(user_flows)}; a machine client needs no user "
            "sign-in flow (unset, Cognito allows SRP and custom auth): set it to "
            "['ALLOW_REFRESH_TOKEN_AUTH']."
        )
    if get(args.props, "callbackUrls"):
        report_violation("A machine client has no use for callbackUrls; remove them.")


cognito_machine_client = ResourceValidationPolicy(
    name="cognito-machine-client",
    description="A Cognito app client with the client-credentials grant has no other OAuth "
    "flow, no user sign-in flow and no callback URLs: its secret lets an application act "
    "only as itself.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_cognito_machine_client,
)

POLICIES = [
    cognito_password_policy,
    cognito_mfa_in_prod,
    cognito_public_client,
    cognito_machine_client,
]
