"""Token metering: the usage table and the tier config the functions meter against."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
from gateway.schema import USAGE_TABLE
from gateway.tiers import TierConfig

from components.tables import create_table

# SSM Standard parameters hold up to 4 KB; larger tier documents need the Advanced tier.
_STANDARD_PARAMETER_BYTES = 4096


def tier_config_value(tier_config: TierConfig) -> str:
    """The tier document exactly as the functions read it from the parameter."""
    return json.dumps(tier_config.to_document(), sort_keys=True)


@dataclass
class MeteringArgs:
    """Inputs of :class:`MeteringComponent`."""

    tier_config: TierConfig
    #: SSM parameter path of the tier document, e.g. ``/ai-gateway/dev/tier-config``.
    tier_config_parameter_name: str
    point_in_time_recovery: bool = True
    deletion_protection: bool = True

    def __post_init__(self) -> None:
        if not self.tier_config_parameter_name.startswith("/"):
            raise ValueError(
                "MeteringArgs.tier_config_parameter_name: must be an SSM path ('/...')"
            )


class MeteringComponent(pulumi.ComponentResource):
    """The per-user usage table and the tier config parameter.

    Tier limits and model allowlists reach the functions through one SSM String parameter that
    the chat function reads with Powertools parameters and caches for a few seconds. A tier change
    therefore updates only that parameter in place: no function code or configuration, no table,
    and it takes effect within the cache period.
    """

    usage_table: aws.dynamodb.Table
    tier_config_parameter: aws.ssm.Parameter

    def __init__(
        self, name: str, args: MeteringArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("ai-gateway:index:Metering", name, None, opts)
        self._name = name
        self.usage_table = create_table(
            f"{name}-usage",
            USAGE_TABLE,
            point_in_time_recovery=args.point_in_time_recovery,
            deletion_protection=args.deletion_protection,
            parent=self,
        )
        self.tier_config_parameter = self._create_tier_config_parameter(args)
        self.register_outputs(
            {
                "usageTableName": self.usage_table.name,
                "usageTableArn": self.usage_table.arn,
                "tierConfigParameterName": self.tier_config_parameter.name,
                "tierConfigParameterArn": self.tier_config_parameter.arn,
            }
        )

    def _create_tier_config_parameter(self, args: MeteringArgs) -> aws.ssm.Parameter:
        value = tier_config_value(args.tier_config)
        return aws.ssm.Parameter(
            f"{self._name}-tier-config",
            name=args.tier_config_parameter_name,
            type="String",
            tier="Standard" if len(value.encode()) <= _STANDARD_PARAMETER_BYTES else "Advanced",
            value=value,
            description="Gateway tiers: model allowlists and token limits (from the stack config)",
            opts=pulumi.ResourceOptions(parent=self),
        )
