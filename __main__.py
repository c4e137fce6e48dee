"""ai-gateway: one governed door from signed-in users to foundation models, on AWS.

Reads and validates the stack's config, composes the components and exports the endpoints
clients need. Every difference between dev and prod comes from the stack files.
"""

from collections.abc import Callable, Sequence
from pathlib import Path

import pulumi
import pulumi_aws as aws

from components import (
    AdminAuditArgs,
    AdminAuditComponent,
    AnalyticsArgs,
    AnalyticsComponent,
    CacheArgs,
    CacheComponent,
    EventsApiArgs,
    EventsApiComponent,
    EventsEndpoint,
    GatewayFunctionsArgs,
    GatewayFunctionsComponent,
    IdentityArgs,
    IdentityComponent,
    MeteringArgs,
    MeteringComponent,
    ObservabilityArgs,
    ObservabilityComponent,
    OpenAiApiArgs,
    OpenAiApiComponent,
    SavedQueriesArgs,
    SavedQueriesComponent,
    WebArgs,
    WebComponent,
)
from components.function_code import code_archive, door_archive, powertools_version
from components.functions import TurnResources, model_access
from components.waf import chat_body_limit
from settings import PROJECT, config_reader, load_settings

PROJECT_DIR = Path(__file__).resolve().parent
FUNCTIONS_DIR = PROJECT_DIR / "functions"

# 1. Config, validated before anything is declared.
settings = load_settings(
    pulumi.get_stack(),
    pulumi.Config("aws").get("region"),
    config_reader(pulumi.Config(PROJECT).get),
)
for warning in settings.warnings:
    pulumi.log.warn(warning)
tiers = settings.tier_config
name = settings.resource_prefix
chat_function_name = settings.chat_function_name
subscribe_function_name = f"{name}-subscribe"
# The OpenAI-compatible door's REST API and function share one name; its stage is `api`.
openai_name = f"{name}-openai"
OPENAI_STAGE = "api"

# 2. One provider for every resource: the region and the default tags.
provider = aws.Provider("aws", region=settings.region, default_tags={"tags": settings.tags})
opts = pulumi.ResourceOptions(providers=[provider])

# 3. The components.
# Sign-in may return to the hosted chat app, whose URL exists only once its distribution does; the
# user pool comes first (the Event API needs it), so its app client gets those URLs when known.
sign_in_urls: pulumi.Input[Sequence[str]]
resolve_sign_in_urls: Callable[[pulumi.Output[list[str]]], None]
if settings.web.enabled:
    sign_in_urls, resolve_sign_in_urls = pulumi.deferred_output()
else:
    sign_in_urls = settings.callback_urls
sign_in_urls_settled = False
try:
    identity = IdentityComponent(
        f"{name}-identity",
        IdentityArgs(
            tier_groups={tier.name: tier.precedence for tier in tiers.tiers.values()},
            mfa=settings.mfa,
            deletion_protection=settings.deletion_protection,
            self_sign_up=settings.self_sign_up,
            callback_urls=sign_in_urls,
            federated_providers=settings.federated_providers,
            machine_clients=settings.open_ai.machine_clients,
        ),
        opts,
    )
    metering = MeteringComponent(
        f"{name}-metering",
        MeteringArgs(
            tier_config=tiers,
            tier_config_parameter_name=f"/{PROJECT}/{settings.stack}/tier-config",
            point_in_time_recovery=settings.point_in_time_recovery,
            deletion_protection=settings.deletion_protection,
        ),
        opts,
    )
    cache = CacheComponent(
        f"{name}-cache",
        CacheArgs(
            point_in_time_recovery=settings.point_in_time_recovery,
            deletion_protection=settings.deletion_protection,
        ),
        opts,
    )
    analytics = AnalyticsComponent(
        f"{name}-analytics",
        AnalyticsArgs(
            database_name=name.replace("-", "_"),
            retention_days=settings.analytics_retention_days,
            retain_data=settings.deletion_protection,
            log_retention_days=settings.log_retention_days,
        ),
        opts,
    )
    admin_audit = AdminAuditComponent(
        f"{name}-admin-audit",
        AdminAuditArgs(
            log_group_name=f"/{PROJECT}/{name}/admin-audit",
            retention_days=settings.log_retention_days,
        ),
        opts,
    )
    observability = ObservabilityComponent(
        f"{name}-observability",
        ObservabilityArgs(
            function_names={"chat": chat_function_name, "subscribe": subscribe_function_name},
            dashboard_name=name,
            region=settings.region,
            log_retention_days=settings.log_retention_days,
            alarm_email=settings.alarm_email,
            openai_api_name=openai_name if settings.open_ai.enabled else "",
            openai_stage_name=OPENAI_STAGE,
            openai_function_name=openai_name if settings.open_ai.enabled else "",
        ),
        opts,
    )

    # What both functions that run turns (the chat function and the OpenAI door) need.
    turn_resources = TurnResources(
        environment=settings.function_environment(),
        usage_table=metering.usage_table,
        prepared_responses_table=cache.table,
        tier_config_parameter=metering.tier_config_parameter,
        analytics_stream=analytics.stream,
        **model_access(tiers),
        region=settings.region,
    )

    def gateway_functions(events: EventsEndpoint) -> GatewayFunctionsComponent:
        """The channel handlers, built once the Event API they publish to exists."""
        return GatewayFunctionsComponent(
            f"{name}-functions",
            GatewayFunctionsArgs(
                chat_function_name=chat_function_name,
                subscribe_function_name=subscribe_function_name,
                chat_log_group=observability.log_groups["chat"],
                subscribe_log_group=observability.log_groups["subscribe"],
                code=code_archive(FUNCTIONS_DIR),
                powertools_version=powertools_version(FUNCTIONS_DIR / "requirements.txt"),
                events=events,
                turn=turn_resources,
                chat_memory_mb=settings.chat_memory_mb,
                chat_snap_start=settings.chat_snap_start,
                chat_reserved_concurrency=settings.chat_reserved_concurrency,
            ),
            opts,
        )

    events = EventsApiComponent(
        f"{name}-events",
        EventsApiArgs(
            api_name=name,
            user_pool_id=identity.user_pool_id,
            region=settings.region,
            inbound_namespace=settings.inbound_namespace,
            outbound_namespace=settings.outbound_namespace,
            handlers=gateway_functions,
            log_retention_days=settings.log_retention_days,
            waf=settings.waf,
            waf_max_body_bytes=chat_body_limit(settings.max_message_chars),
        ),
        opts,
    )

    # 4. The chat app, behind CloudFront, configured for this stack.
    if settings.web.enabled:
        web = WebComponent(
            f"{name}-web",
            WebArgs(
                region=settings.region,
                events_http_endpoint=events.endpoint.http_endpoint,
                events_realtime_endpoint=events.endpoint.realtime_endpoint,
                # The hosted sign-in domain serves the app only with federated providers (a
                # domain that exists for machine clients' tokens has nothing for browsers).
                hosted_sign_in_domain=identity.hosted_domain
                if settings.federated_providers
                else None,
                config={
                    "region": settings.region,
                    "userPoolId": identity.user_pool_id,
                    "userPoolClientId": identity.client_id,
                    "eventsHttpEndpoint": events.endpoint.http_endpoint,
                    "eventsRealtimeEndpoint": events.endpoint.realtime_endpoint,
                    "inboundNamespace": settings.inbound_namespace,
                    "outboundNamespace": settings.outbound_namespace,
                    "stack": settings.stack,
                },
                site_dir=PROJECT_DIR / settings.web.site_dir,
                domain=settings.web.domain,
                certificate_arn=settings.web.certificate_arn,
                access_logging=settings.web.access_logging,
                log_retention_days=settings.log_retention_days,
                retain=settings.deletion_protection,
            ),
            opts,
        )
        resolve_sign_in_urls(web.url.apply(lambda url: [*settings.callback_urls, url]))
        sign_in_urls_settled = True
        pulumi.export("webUrl", web.url)
except BaseException:
    # The app client waits on the deferred sign-in URLs; one never resolved keeps Pulumi waiting
    # instead of reporting the error (pulumi/pulumi#18559). Settle it, then fail.
    if settings.web.enabled and not sign_in_urls_settled:
        resolve_sign_in_urls(pulumi.Output.from_input(list(settings.callback_urls)))
    raise

# 5. The OpenAI-compatible door (docs/openai.md): the same tiers, tables and models as the chat
# function, and in production the Event API's web ACL.
if settings.open_ai.enabled:
    gateway = events.handlers
    assert isinstance(gateway, GatewayFunctionsComponent)
    open_ai = OpenAiApiComponent(
        f"{name}-openai",
        OpenAiApiArgs(
            api_name=openai_name,
            function_name=openai_name,
            stage_name=OPENAI_STAGE,
            code=door_archive(FUNCTIONS_DIR, PROJECT_DIR / ".local" / "build"),
            powertools_layer=gateway.powertools_layer,
            user_pool_arn=identity.user_pool_arn,
            turn=turn_resources,
            machine_client_tiers=identity.machine_client_tiers,
            throttle_rate=settings.open_ai.throttle_rate,
            throttle_burst=settings.open_ai.throttle_burst,
            domain=settings.open_ai.domain,
            certificate_arn=settings.open_ai.certificate_arn,
            web_acl_arn=events.web_acl.arn if events.web_acl is not None else None,
            log_retention_days=settings.log_retention_days,
            memory_mb=settings.chat_memory_mb,
        ),
        opts,
    )
    pulumi.export("openAiBaseUrl", open_ai.base_url)
    if identity.machine_clients and identity.hosted_domain is not None:
        # Machine clients' client-credentials grant:
        # https://docs.aws.amazon.com/cognito/latest/developerguide/token-endpoint.html
        pulumi.export(
            "openAiTokenUrl",
            identity.hosted_domain.apply(
                lambda prefix: (
                    f"https://{prefix}.auth.{settings.region}.amazoncognito.com/oauth2/token"
                )
            ),
        )
        pulumi.export(
            "machineClientIds", {n: c.id for n, c in sorted(identity.machine_clients.items())}
        )

# 6. The operators' saved Logs Insights queries (docs/operations.md), over every function that
# runs turns; the Athena named queries are the analytics component's.
turn_log_groups = [observability.log_groups["chat"].name]
if settings.open_ai.enabled:
    turn_log_groups.append(open_ai.log_group.name)
SavedQueriesComponent(
    f"{name}-queries",
    SavedQueriesArgs(project=PROJECT, stack=settings.stack, turn_log_groups=turn_log_groups),
    opts,
)

# 7. Stack outputs (the contract clients and the local runtime share).
pulumi.export("region", settings.region)
pulumi.export("userPoolId", identity.user_pool_id)
pulumi.export("userPoolClientId", identity.client_id)
pulumi.export("eventsHttpEndpoint", events.endpoint.http_endpoint)
pulumi.export("eventsRealtimeEndpoint", events.endpoint.realtime_endpoint)
pulumi.export("inboundNamespace", settings.inbound_namespace)
pulumi.export("outboundNamespace", settings.outbound_namespace)
pulumi.export("usageTableName", metering.usage_table.name)
pulumi.export("preparedResponsesTableName", cache.table.name)
pulumi.export("tierConfigParameterName", metering.tier_config_parameter.name)
pulumi.export("analyticsBucketName", analytics.bucket.bucket)
pulumi.export("analyticsWorkgroupName", analytics.workgroup.name)
pulumi.export("analyticsDatabaseName", analytics.database.name)
pulumi.export("adminAuditLogGroupName", admin_audit.log_group.name)
pulumi.export("dashboardName", observability.dashboard.dashboard_name)
