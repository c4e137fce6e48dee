"""moto in server mode standing in for AWS, and the gateway's resources created in it.

Every resource is made from the same source of truth the Pulumi components use: table key schemas
from :mod:`gateway.schema`, the tier document from :meth:`TierConfig.to_document`, one Cognito
group per tier with the tier's precedence. The user-pool client also allows ``USER_PASSWORD_AUTH``
so scripts can sign in with plain boto3 (the deployed client allows only SRP and refresh).
"""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import boto3
from botocore.config import Config
from gateway.schema import PREPARED_RESPONSES_TABLE, USAGE_TABLE, TableSchema

from local.oauth import LocalMachineClient
from settings import CHAT_SCOPE, PROJECT, RESOURCE_SERVER, Settings

LOCAL_ACCOUNT_ID = "123456789012"  # moto's default account


@dataclass(frozen=True)
class LocalCredentials:
    """The key pair the local functions sign with, and the only one the Event API trusts as IAM.

    Made anew at each start and never written to the source: whoever could read a fixed key could
    publish as the gateway into any user's channel or subscribe to every prompt.
    """

    access_key_id: str
    secret_access_key: str

    @classmethod
    def generate(cls) -> LocalCredentials:
        alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
        key_id = "AKIA" + "".join(secrets.choice(alphabet) for _ in range(16))
        return cls(key_id, secrets.token_urlsafe(30))


@dataclass(frozen=True)
class DemoUser:
    """A confirmed user with a permanent password in one tier's group."""

    username: str
    password: str
    tier: str

    def to_output(self) -> dict[str, str]:
        return {"username": self.username, "password": self.password, "tier": self.tier}


@dataclass(frozen=True)
class LocalResources:
    """Names and ids of what :func:`bootstrap` created."""

    endpoint_url: str
    region: str
    user_pool_id: str
    user_pool_client_id: str
    usage_table: str
    prepared_responses_table: str
    tier_config_parameter: str
    analytics_stream: str
    analytics_bucket: str
    demo_users: tuple[DemoUser, ...] = field(default_factory=tuple)
    #: The stack's ``machineClients``, as app clients of the local pool (name -> client).
    machine_clients: dict[str, LocalMachineClient] = field(default_factory=dict)


class MotoServer:
    """moto's threaded server on loopback, on a free port."""

    def __init__(self) -> None:
        from moto.server import ThreadedMotoServer

        # moto logs every request at INFO through werkzeug; keep the console for the gateway.
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self.endpoint_url = ""

    def start(self) -> str:
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.endpoint_url = f"http://{host}:{port}"
        return self.endpoint_url

    def stop(self) -> None:
        if self.endpoint_url:
            self._server.stop()
            self.endpoint_url = ""


def tier_config_parameter_name(stack: str) -> str:
    """The SSM parameter that carries the tier document to the functions."""
    return f"/{PROJECT}/{stack}/tier-config"


def demo_password(tier: str) -> str:
    """A fixed, policy-satisfying password: the local pool is throwaway and lives in memory."""
    return f"Demo-{tier}-pass1"


def client(service: str, endpoint_url: str, region: str) -> Any:
    """A boto3 client for moto (which accepts any credentials), whatever the environment holds."""
    return boto3.client(
        service,
        endpoint_url=endpoint_url,
        region_name=region,
        aws_access_key_id="local-bootstrap",
        aws_secret_access_key="local-bootstrap",
        config=Config(retries={"max_attempts": 2}),
    )


def user_password(region: str) -> Callable[[str, str], str | None]:
    """Looks a user's password up in moto's in-process user pools (moto keeps it in clear).

    The local sign-in endpoint needs it to do the server's half of SRP, which moto skips. moto's
    backends are module state shared with the server thread (moto's docs: "Accessing backend
    state"), so this reads what the user pool holds now, users made after start included.
    """
    from moto.cognitoidp.models import cognitoidp_backends

    def lookup(pool_id: str, username: str) -> str | None:
        pool = cognitoidp_backends[LOCAL_ACCOUNT_ID][region].user_pools.get(pool_id)
        if pool is None:
            return None
        try:
            return pool._get_user(username).password
        except Exception:  # moto raises its own UserNotFound; any failure means "no such user"
            return None

    return lookup


def bootstrap(settings: Settings, endpoint_url: str) -> LocalResources:
    """Create the gateway's tables, tier parameter, user pool, demo users and analytics stream."""
    prefix = f"{PROJECT}-{settings.stack}"
    region = settings.region

    usage_table = f"{prefix}-usage"
    prepared_table = f"{prefix}-prepared-responses"
    dynamodb = client("dynamodb", endpoint_url, region)
    _create_table(dynamodb, usage_table, USAGE_TABLE)
    _create_table(dynamodb, prepared_table, PREPARED_RESPONSES_TABLE)

    parameter = tier_config_parameter_name(settings.stack)
    client("ssm", endpoint_url, region).put_parameter(
        Name=parameter,
        Type="String",
        Value=json.dumps(settings.tier_config.to_document(), sort_keys=True),
        Overwrite=True,
    )

    bucket = f"{prefix}-analytics"
    stream = f"{prefix}-turns"
    _create_analytics(
        client("s3", endpoint_url, region),
        client("firehose", endpoint_url, region),
        bucket,
        stream,
        region,
    )

    cognito = client("cognito-idp", endpoint_url, region)
    pool_id, client_id, users = _create_identity(cognito, settings, prefix)
    return LocalResources(
        endpoint_url=endpoint_url,
        region=region,
        user_pool_id=pool_id,
        user_pool_client_id=client_id,
        usage_table=usage_table,
        prepared_responses_table=prepared_table,
        tier_config_parameter=parameter,
        analytics_stream=stream,
        analytics_bucket=bucket,
        demo_users=users,
        machine_clients=_create_machine_clients(cognito, settings, pool_id, prefix),
    )


def _create_table(dynamodb: Any, name: str, schema: TableSchema) -> None:
    dynamodb.create_table(
        TableName=name,
        AttributeDefinitions=schema.attribute_definitions,
        KeySchema=schema.key_schema,
        BillingMode="PAY_PER_REQUEST",
    )
    dynamodb.update_time_to_live(
        TableName=name,
        TimeToLiveSpecification={"Enabled": True, "AttributeName": schema.ttl_attribute},
    )


def _create_analytics(s3: Any, firehose: Any, bucket: str, stream: str, region: str) -> None:
    if region == "us-east-1":
        s3.create_bucket(Bucket=bucket)
    else:
        s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": region})
    firehose.create_delivery_stream(
        DeliveryStreamName=stream,
        DeliveryStreamType="DirectPut",
        ExtendedS3DestinationConfiguration={
            "RoleARN": f"arn:aws:iam::{LOCAL_ACCOUNT_ID}:role/{stream}-delivery",
            "BucketARN": f"arn:aws:s3:::{bucket}",
            "Prefix": "turns/",
            "ErrorOutputPrefix": "errors/",
        },
    )


def _create_identity(
    cognito: Any, settings: Settings, prefix: str
) -> tuple[str, str, tuple[DemoUser, ...]]:
    pool_id = cognito.create_user_pool(
        PoolName=f"{prefix}-users",
        Policies={
            "PasswordPolicy": {
                "MinimumLength": 8,
                "RequireUppercase": True,
                "RequireLowercase": True,
                "RequireNumbers": True,
                "RequireSymbols": False,
            }
        },
        AutoVerifiedAttributes=["email"],
    )["UserPool"]["Id"]
    client_id = cognito.create_user_pool_client(
        UserPoolId=pool_id,
        ClientName=f"{prefix}-web",
        GenerateSecret=False,
        ExplicitAuthFlows=[
            "ALLOW_USER_SRP_AUTH",
            "ALLOW_USER_PASSWORD_AUTH",
            "ALLOW_REFRESH_TOKEN_AUTH",
        ],
        # The deployed app client's lifetimes (components/identity.py), which the admin CLI
        # reports when a tier change waits for the next token.
        AccessTokenValidity=60,
        IdTokenValidity=60,
        TokenValidityUnits={"AccessToken": "minutes", "IdToken": "minutes"},
    )["UserPoolClient"]["ClientId"]

    users: list[DemoUser] = []
    for tier in settings.tier_config.tiers.values():
        cognito.create_group(
            UserPoolId=pool_id,
            GroupName=tier.name,
            Description=f"Tier {tier.name}",
            Precedence=tier.precedence,
        )
        user = DemoUser(
            username=f"{tier.name}-user", password=demo_password(tier.name), tier=tier.name
        )
        cognito.admin_create_user(
            UserPoolId=pool_id,
            Username=user.username,
            TemporaryPassword=user.password,
            MessageAction="SUPPRESS",
            UserAttributes=[
                {"Name": "email", "Value": f"{user.username}@example.com"},
                {"Name": "email_verified", "Value": "true"},
            ],
        )
        cognito.admin_set_user_password(
            UserPoolId=pool_id, Username=user.username, Password=user.password, Permanent=True
        )
        cognito.admin_add_user_to_group(
            UserPoolId=pool_id, Username=user.username, GroupName=tier.name
        )
        users.append(user)
    return pool_id, client_id, tuple(users)


def _create_machine_clients(
    cognito: Any, settings: Settings, pool_id: str, prefix: str
) -> dict[str, LocalMachineClient]:
    """The stack's machine clients as the stack declares them: the gateway's resource server with
    its one scope, and per client a confidential app client allowed only the client-credentials
    grant and that scope (``components/identity.py``)."""
    machines = settings.open_ai.machine_clients
    if not machines:
        return {}
    cognito.create_resource_server(
        UserPoolId=pool_id,
        Identifier=RESOURCE_SERVER,
        Name="ai-gateway OpenAI-compatible API",
        Scopes=[
            {
                "ScopeName": CHAT_SCOPE.removeprefix(f"{RESOURCE_SERVER}/"),
                "ScopeDescription": "Chat through the gateway as a machine client",
            }
        ],
    )
    created = {}
    for machine in machines:
        app = cognito.create_user_pool_client(
            UserPoolId=pool_id,
            ClientName=f"{prefix}-machine-{machine.name}",
            GenerateSecret=True,
            AllowedOAuthFlowsUserPoolClient=True,
            AllowedOAuthFlows=["client_credentials"],
            AllowedOAuthScopes=[CHAT_SCOPE],
        )["UserPoolClient"]
        created[machine.name] = LocalMachineClient(
            name=machine.name,
            tier=machine.tier,
            client_id=app["ClientId"],
            client_secret=app["ClientSecret"],
            scopes=(CHAT_SCOPE,),
        )
    return created
