"""The ai-gateway policy pack's policies, grouped by what they guard.

``policy/__main__.py`` assembles them into the pack; tests and ``policy/report.py`` run that pack
through pulumi-policy's analyzer (see ``policy/offline.py``).
"""

from . import (
    cdn,
    compute,
    events,
    iam,
    identity,
    models,
    operations,
    rest_api,
    saved_queries,
    snapstart,
    storage,
)

PACK_NAME = "ai-gateway"

POLICIES = [
    *storage.POLICIES,
    *compute.POLICIES,
    *iam.POLICIES,
    *identity.POLICIES,
    *events.POLICIES,
    *rest_api.POLICIES,
    *cdn.POLICIES,
    *models.POLICIES,
    *operations.POLICIES,
    *saved_queries.POLICIES,
    *snapstart.POLICIES,
]

__all__ = ["PACK_NAME", "POLICIES"]
