"""Who may use the gateway: a Cognito user pool whose groups are the tiers, and the machine
clients (applications without a user) that call the OpenAI-compatible API."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from settings import (
    CHAT_SCOPE,
    MACHINE_ACCESS_TOKEN_MINUTES,
    RESOURCE_SERVER,
    FederatedProvider,
    MachineClient,
)

_ALLOWED_MFA = ("OFF", "OPTIONAL", "ON")

#: Scopes a user's access token carries: ``aws.cognito.signin.user.admin`` after SRP (or
#: password) sign-in through the user pool API, ``openid`` after hosted-UI / federated sign-in
#: with the web client's scopes
#: (https://docs.aws.amazon.com/cognito/latest/developerguide/amazon-cognito-user-pools-using-the-access-token.html).
USER_SCOPES = ("aws.cognito.signin.user.admin", "openid")


@dataclass
class IdentityArgs:
    """Inputs of :class:`IdentityComponent`; defaults are the secure choice."""

    #: Tier (Cognito group) name -> precedence; the lower number wins when a user is in several.
    tier_groups: Mapping[str, int]
    mfa: str = "ON"
    deletion_protection: bool = True
    self_sign_up: bool = False
    #: Where hosted-UI / federated sign-in may return to, and sign-out may land; an Output may
    #: carry URLs known only once other resources exist (the hosted app's URL).
    callback_urls: pulumi.Input[Sequence[str]] = ()
    #: ``None``: the callback URLs.
    logout_urls: pulumi.Input[Sequence[str]] | None = None
    federated_providers: Sequence[FederatedProvider] = field(default_factory=tuple)
    #: Applications that sign in with the client-credentials grant, each metered at its tier.
    machine_clients: Sequence[MachineClient] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        if not self.tier_groups:
            raise ValueError("IdentityArgs.tier_groups: at least one tier group is required")
        for client in self.machine_clients:
            if client.tier not in self.tier_groups:
                raise ValueError(
                    f"IdentityArgs.machine_clients: {client.name!r} has tier {client.tier!r}, "
                    "which is not one of the tier groups"
                )
        if self.mfa not in _ALLOWED_MFA:
            raise ValueError(f"IdentityArgs.mfa: one of {_ALLOWED_MFA}, got {self.mfa!r}")


class IdentityComponent(pulumi.ComponentResource):
    """A user pool with e-mail sign-in, a public SPA client and one group per tier.

    Federated identity providers (Google, OIDC, SAML) and the hosted sign-in domain they need are
    declared only when the stack configures some. Machine clients are confidential app clients
    (a secret, the client-credentials grant and nothing else) that get access tokens with the
    ``ai-gateway/chat`` scope of the gateway's resource server from the domain's
    ``/oauth2/token`` endpoint; the domain is declared for them too.
    """

    user_pool: aws.cognito.UserPool
    client: aws.cognito.UserPoolClient
    groups: dict[str, aws.cognito.UserGroup]
    providers: list[aws.cognito.IdentityProvider]
    user_pool_id: pulumi.Output[str]
    user_pool_arn: pulumi.Output[str]
    client_id: pulumi.Output[str]
    #: Prefix of the hosted sign-in domain (``<prefix>.auth.<region>.amazoncognito.com``), declared
    #: only with federated providers; ``None`` without.
    hosted_domain: pulumi.Output[str] | None
    resource_server: aws.cognito.ResourceServer | None
    #: Machine client name -> its app client.
    machine_clients: dict[str, aws.cognito.UserPoolClient]
    #: App client id -> tier, for every machine client: how the door meters a token without a
    #: user (its ``client_id`` claim names the client).
    machine_client_tiers: pulumi.Output[dict[str, str]]

    def __init__(
        self, name: str, args: IdentityArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("ai-gateway:index:Identity", name, None, opts)
        self._name = name
        self.user_pool = self._create_user_pool(args)
        self.groups = self._create_groups(args.tier_groups)
        self.providers = self._create_federated_providers(args.federated_providers)
        needs_domain = bool(self.providers or args.machine_clients)
        self.hosted_domain = self._create_domain().domain if needs_domain else None
        self.client = self._create_client(args)
        self.resource_server = None
        self.machine_clients = {}
        if args.machine_clients:
            self.resource_server = self._create_resource_server()
            self.machine_clients = {
                client.name: self._create_machine_client(client) for client in args.machine_clients
            }
        tiers = {client.name: client.tier for client in args.machine_clients}
        self.machine_client_tiers = pulumi.Output.all(
            *(self.machine_clients[name].id for name in sorted(tiers))
        ).apply(lambda ids: dict(zip(ids, (tiers[n] for n in sorted(tiers)), strict=True)))

        self.user_pool_id = self.user_pool.id
        self.user_pool_arn = self.user_pool.arn
        self.client_id = self.client.id
        self.register_outputs(
            {
                "userPoolId": self.user_pool_id,
                "userPoolArn": self.user_pool_arn,
                "clientId": self.client_id,
                "machineClientIds": {n: c.id for n, c in self.machine_clients.items()},
            }
        )

    def _create_user_pool(self, args: IdentityArgs) -> aws.cognito.UserPool:
        mfa_enabled = args.mfa != "OFF"
        return aws.cognito.UserPool(
            f"{self._name}-user-pool",
            username_attributes=["email"],
            auto_verified_attributes=["email"],
            username_configuration={"case_sensitive": False},
            password_policy={
                "minimum_length": 12,
                "require_lowercase": True,
                "require_uppercase": True,
                "require_numbers": True,
                "require_symbols": True,
                "temporary_password_validity_days": 3,
            },
            mfa_configuration=args.mfa,
            software_token_mfa_configuration={"enabled": True} if mfa_enabled else None,
            account_recovery_setting={
                "recovery_mechanisms": [{"name": "verified_email", "priority": 1}]
            },
            admin_create_user_config={"allow_admin_create_user_only": not args.self_sign_up},
            deletion_protection="ACTIVE" if args.deletion_protection else "INACTIVE",
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _create_groups(self, tier_groups: Mapping[str, int]) -> dict[str, aws.cognito.UserGroup]:
        return {
            tier: aws.cognito.UserGroup(
                f"{self._name}-group-{tier}",
                user_pool_id=self.user_pool.id,
                name=tier,
                precedence=precedence,
                description=f"Gateway tier '{tier}' (limits and models from the stack config)",
                opts=pulumi.ResourceOptions(parent=self),
            )
            for tier, precedence in sorted(tier_groups.items())
        }

    def _create_federated_providers(
        self, providers: Sequence[FederatedProvider]
    ) -> list[aws.cognito.IdentityProvider]:
        return [
            aws.cognito.IdentityProvider(
                f"{self._name}-idp-{provider.name.lower()}",
                user_pool_id=self.user_pool.id,
                provider_name=provider.name,
                provider_type=provider.kind,
                # Client secrets come from (secret) stack config; keep them secret in state.
                provider_details=pulumi.Output.secret(dict(provider.details)),
                attribute_mapping=dict(provider.attribute_mapping),
                opts=pulumi.ResourceOptions(parent=self),
            )
            for provider in providers
        ]

    def _create_domain(self) -> aws.cognito.UserPoolDomain:
        # Federated sign-in goes through the hosted UI; the prefix must be unique per region, so it
        # carries the account id.
        identity = aws.get_caller_identity_output(opts=pulumi.InvokeOutputOptions(parent=self))
        return aws.cognito.UserPoolDomain(
            f"{self._name}-domain",
            user_pool_id=self.user_pool.id,
            domain=identity.account_id.apply(lambda account: f"{self._name}-{account}"),
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _create_client(self, args: IdentityArgs) -> aws.cognito.UserPoolClient:
        # Hosted-UI (code flow) sign-in needs somewhere to return to; without callback URLs the
        # client offers SRP only.
        oauth: dict[str, object] = {}
        if isinstance(args.callback_urls, pulumi.Output) or args.callback_urls:
            oauth = {
                "allowed_oauth_flows_user_pool_client": True,
                "allowed_oauth_flows": ["code"],
                "allowed_oauth_scopes": ["openid", "email", "profile"],
                "callback_urls": _as_list(args.callback_urls),
                "logout_urls": _as_list(
                    args.callback_urls if args.logout_urls is None else args.logout_urls
                ),
            }
        # A browser SPA cannot keep a secret: no secret, SRP sign-in and refresh tokens only.
        return aws.cognito.UserPoolClient(
            f"{self._name}-web-client",
            user_pool_id=self.user_pool.id,
            generate_secret=False,
            explicit_auth_flows=["ALLOW_USER_SRP_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"],
            prevent_user_existence_errors="ENABLED",
            enable_token_revocation=True,
            supported_identity_providers=["COGNITO", *(p.name for p in args.federated_providers)],
            access_token_validity=MACHINE_ACCESS_TOKEN_MINUTES,
            id_token_validity=60,
            refresh_token_validity=30,
            token_validity_units={
                "access_token": "minutes",
                "id_token": "minutes",
                "refresh_token": "days",
            },
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(self.providers)),
            **oauth,
        )

    def _create_resource_server(self) -> aws.cognito.ResourceServer:
        return aws.cognito.ResourceServer(
            f"{self._name}-resource-server",
            user_pool_id=self.user_pool.id,
            identifier=RESOURCE_SERVER,
            name="ai-gateway OpenAI-compatible API",
            scopes=[
                {
                    "scope_name": CHAT_SCOPE.removeprefix(f"{RESOURCE_SERVER}/"),
                    "scope_description": "Chat through the gateway as a machine client",
                }
            ],
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _create_machine_client(self, client: MachineClient) -> aws.cognito.UserPoolClient:
        # Created only once the resource server exists (its scope is granted here).
        assert self.resource_server is not None
        # A confidential client that can only get a token for itself: the client-credentials
        # grant needs a client secret and takes only custom scopes
        # (https://docs.aws.amazon.com/cognito/latest/developerguide/federation-endpoints-oauth-grants.html).
        # No user sign-in flow: left unset, ExplicitAuthFlows would allow SRP and custom auth
        # (https://docs.aws.amazon.com/cognito-user-identity-pools/latest/APIReference/API_CreateUserPoolClient.html).
        return aws.cognito.UserPoolClient(
            f"{self._name}-machine-{client.name}",
            name=f"{self._name}-machine-{client.name}",
            user_pool_id=self.user_pool.id,
            generate_secret=True,
            allowed_oauth_flows_user_pool_client=True,
            allowed_oauth_flows=["client_credentials"],
            allowed_oauth_scopes=[CHAT_SCOPE],
            explicit_auth_flows=["ALLOW_REFRESH_TOKEN_AUTH"],
            supported_identity_providers=["COGNITO"],
            prevent_user_existence_errors="ENABLED",
            enable_token_revocation=True,
            access_token_validity=MACHINE_ACCESS_TOKEN_MINUTES,
            token_validity_units={"access_token": "minutes"},
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.resource_server]),
        )


def _as_list(urls: pulumi.Input[Sequence[str]]) -> pulumi.Input[list[str]]:
    if isinstance(urls, pulumi.Output):
        return urls.apply(list)
    return list(urls)  # type: ignore[arg-type]
