"""The gateway's building blocks: one ``pulumi.ComponentResource`` per concern.

Components import the function code's data model (``gateway.*``: table schemas, tier model,
environment contract) rather than restating it; ``pip install -e .`` makes ``gateway`` importable.
"""

from components.admin_audit import AdminAuditArgs, AdminAuditComponent
from components.analytics import AnalyticsArgs, AnalyticsComponent
from components.cache import CacheArgs, CacheComponent
from components.events_api import EventsApiArgs, EventsApiComponent, EventsEndpoint
from components.functions import (
    FunctionEnvironment,
    GatewayFunctionsArgs,
    GatewayFunctionsComponent,
)
from components.identity import IdentityArgs, IdentityComponent
from components.metering import MeteringArgs, MeteringComponent
from components.observability import ObservabilityArgs, ObservabilityComponent
from components.openai_api import OpenAiApiArgs, OpenAiApiComponent
from components.saved_queries import SavedQueriesArgs, SavedQueriesComponent
from components.web import WebArgs, WebComponent

__all__ = [
    "AdminAuditArgs",
    "AdminAuditComponent",
    "AnalyticsArgs",
    "AnalyticsComponent",
    "CacheArgs",
    "CacheComponent",
    "EventsApiArgs",
    "EventsApiComponent",
    "EventsEndpoint",
    "FunctionEnvironment",
    "GatewayFunctionsArgs",
    "GatewayFunctionsComponent",
    "IdentityArgs",
    "IdentityComponent",
    "MeteringArgs",
    "MeteringComponent",
    "ObservabilityArgs",
    "ObservabilityComponent",
    "OpenAiApiArgs",
    "OpenAiApiComponent",
    "SavedQueriesArgs",
    "SavedQueriesComponent",
    "WebArgs",
    "WebComponent",
]
