"""Prepared responses: answers operators store for common prompts, served without a model call."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
from gateway.schema import PREPARED_RESPONSES_TABLE

from components.tables import create_table


@dataclass
class CacheArgs:
    """Inputs of :class:`CacheComponent`."""

    point_in_time_recovery: bool = True
    deletion_protection: bool = True


class CacheComponent(pulumi.ComponentResource):
    """The prepared-responses table (keyed by model scope and normalised-prompt hash, with TTL).

    Entries are written by operators through the cache CLI, never from model output.
    """

    table: aws.dynamodb.Table

    def __init__(
        self, name: str, args: CacheArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("ai-gateway:index:Cache", name, None, opts)
        self.table = create_table(
            f"{name}-prepared-responses",
            PREPARED_RESPONSES_TABLE,
            point_in_time_recovery=args.point_in_time_recovery,
            deletion_protection=args.deletion_protection,
            parent=self,
        )
        self.register_outputs({"tableName": self.table.name, "tableArn": self.table.arn})
