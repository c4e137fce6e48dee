"""Every stack saves the operators' queries: the Logs Insights query definitions over the log
groups of the functions that run turns, and the Athena named queries in the stack's workgroup
and database; the policy pack expects exactly these."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from infra_support import component

from components import analytics_schema
from components.log_queries import LOG_QUERIES

QUERY_DEFINITION = "aws:cloudwatch/queryDefinition:QueryDefinition"
NAMED_QUERY = "aws:athena/namedQuery:NamedQuery"
FUNCTION = "aws:lambda/function:Function"
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
WORKGROUP = "aws:athena/workgroup:Workgroup"
POLICY_CONFIG = Path(__file__).resolve().parents[2] / "policy" / "config.json"


def _definitions(stack):
    return {r.outputs["name"]: r for r in stack.of_type(QUERY_DEFINITION)}


@pytest.mark.parametrize("stack_name", ["dev", "prod"])
def test_every_log_query_is_saved_in_the_stacks_folder(request, stack_name: str):
    stack = request.getfixturevalue(stack_name)
    names = set(_definitions(stack))
    assert names == {f"ai-gateway/{stack_name}/{key}" for key in LOG_QUERIES}


def test_each_saved_query_reads_exactly_the_log_groups_of_the_functions_that_run_turns(stack):
    turn_functions = [
        f.outputs["name"]
        for f in stack.of_type(FUNCTION)
        if f.outputs["name"].endswith(("-chat", "-openai"))
    ]
    assert len(turn_functions) == 2  # the chat function and the OpenAI door
    expected = {f"/aws/lambda/{name}" for name in turn_functions}
    declared_groups = {g.outputs["name"] for g in stack.of_type(LOG_GROUP)}
    assert expected <= declared_groups
    for name, definition in _definitions(stack).items():
        assert set(definition.inputs["logGroupNames"]) == expected, name


def test_each_saved_query_carries_its_text_under_a_comment_saying_what_it_answers(stack):
    for definition in _definitions(stack).values():
        key = definition.outputs["name"].rsplit("/", 1)[-1]
        saved = LOG_QUERIES[key]
        assert definition.inputs["queryString"] == f"# {saved.description}\n{saved.query}"
        # PutQueryDefinition's queryString holds at most 10,000 characters (botocore's model).
        assert len(definition.inputs["queryString"]) <= 10_000


def test_without_the_openai_door_the_queries_read_the_chat_function_alone():
    from devtools.declare import declare_stack

    stack = declare_stack("dev", {"openAi": False})
    for definition in _definitions(stack).values():
        (group,) = definition.inputs["logGroupNames"]
        assert group.endswith("-chat")


def test_every_named_query_is_in_the_stacks_workgroup_and_database(stack):
    analytics = component(stack, "Analytics").urn
    children = stack.children_of(analytics)
    (workgroup,) = [r for r in children if r.type == WORKGROUP]
    database = next(r for r in children if r.type == "aws:glue/catalogDatabase:CatalogDatabase")
    queries = {r.inputs["name"]: r for r in children if r.type == NAMED_QUERY}
    assert set(queries) == set(analytics_schema.named_queries(database.outputs["name"]))
    for query in queries.values():
        assert query.inputs["workgroup"] == workgroup.outputs["name"]
        assert query.inputs["database"] == database.outputs["name"]


def test_the_policy_pack_expects_the_queries_the_program_declares():
    expected = json.loads(POLICY_CONFIG.read_text())["saved-queries-declared"]
    assert expected["logsInsightsQueries"] == list(LOG_QUERIES)
    assert expected["athenaNamedQueries"] == list(analytics_schema.named_queries("db"))
