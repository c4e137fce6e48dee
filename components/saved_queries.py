"""Saved CloudWatch Logs Insights queries: the operators' questions, one click away in the console.

The query texts live in :mod:`components.log_queries` (the function tests read them too); the
Athena named queries are the analytics component's (``components.analytics_schema``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.log_queries import LOG_QUERIES, query_definition_name


@dataclass
class SavedQueriesArgs:
    """Inputs of :class:`SavedQueriesComponent`."""

    #: The project and stack: queries are saved as ``<project>/<stack>/<query>``.
    project: str
    stack: str
    #: The log groups of the functions that run turns (the chat function's, and the OpenAI
    #: door's where the stack has one): each query reads all of them.
    turn_log_groups: Sequence[pulumi.Input[str]]

    def __post_init__(self) -> None:
        if not self.turn_log_groups:
            raise ValueError("SavedQueriesArgs.turn_log_groups: name at least one log group")


class SavedQueriesComponent(pulumi.ComponentResource):
    """One Logs Insights query definition per entry of ``LOG_QUERIES``, scoped to the log groups
    of the functions that run turns, in a folder of the stack's own."""

    definitions: dict[str, aws.cloudwatch.QueryDefinition]

    def __init__(
        self, name: str, args: SavedQueriesArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("ai-gateway:index:SavedQueries", name, None, opts)
        self.definitions = {
            key: aws.cloudwatch.QueryDefinition(
                f"{name}-{key}",
                name=query_definition_name(args.project, args.stack, key),
                query_string=f"# {saved.description}\n{saved.query}",
                log_group_names=list(args.turn_log_groups),
                opts=pulumi.ResourceOptions(parent=self),
            )
            for key, saved in LOG_QUERIES.items()
        }
        ids = {key: definition.id for key, definition in self.definitions.items()}
        self.register_outputs({"queryDefinitionIds": ids})
