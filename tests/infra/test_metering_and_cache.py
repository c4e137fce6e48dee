"""MeteringComponent and CacheComponent: the two tables and the tier config parameter."""

from __future__ import annotations

import json

import pytest
from gateway import schema
from infra_support import TABLE, component

from devtools.declare import DeclaredStack

PARAMETER = "aws:ssm/parameter:Parameter"


def _table(stack: DeclaredStack, noun: str):
    owner = component(stack, noun)
    (table,) = [t for t in stack.of_type(TABLE) if t.parent == owner.urn]
    return table


TABLES = [("Metering", schema.USAGE_TABLE), ("Cache", schema.PREPARED_RESPONSES_TABLE)]


@pytest.mark.parametrize(("noun", "key_schema"), TABLES)
def test_table_is_keyed_exactly_as_the_function_code_reads_it(stack, noun, key_schema):
    table = _table(stack, noun).inputs
    assert table["hashKey"] == key_schema.partition_key
    assert table.get("rangeKey") == key_schema.sort_key
    declared = sorted((a["name"], a["type"]) for a in table["attributes"])
    expected = sorted(
        (a["AttributeName"], a["AttributeType"]) for a in key_schema.attribute_definitions
    )
    assert declared == expected


@pytest.mark.parametrize(("noun", "key_schema"), TABLES)
def test_table_is_on_demand_encrypted_and_expires_items(stack, noun, key_schema):
    table = _table(stack, noun).inputs
    assert table["billingMode"] == "PAY_PER_REQUEST"
    assert table["serverSideEncryption"] == {"enabled": True}
    assert table["ttl"] == {"attributeName": key_schema.ttl_attribute, "enabled": True}


@pytest.mark.parametrize("noun", ["Metering", "Cache"])
def test_prod_tables_have_point_in_time_recovery_and_deletion_protection(prod, noun):
    table = _table(prod, noun).inputs
    assert table["pointInTimeRecovery"] == {"enabled": True}
    assert table["deletionProtectionEnabled"] is True


@pytest.mark.parametrize("noun", ["Metering", "Cache"])
def test_dev_tables_are_disposable(dev, noun):
    table = _table(dev, noun).inputs
    assert table["pointInTimeRecovery"] == {"enabled": False}
    assert table["deletionProtectionEnabled"] is False


def test_tier_config_parameter_holds_the_stack_tiers_as_written(stack):
    parameter = stack.named(f"ai-gateway-{stack.stack}-metering-tier-config").inputs
    assert parameter["name"] == f"/ai-gateway/{stack.stack}/tier-config"
    assert parameter["type"] == "String"
    document = json.loads(parameter["value"])
    assert document["defaultTier"] == stack.config["ai-gateway:defaultTier"]
    for tier, written in stack.config["ai-gateway:tiers"].items():
        published = document["tiers"][tier]
        assert {k: published[k] for k in written} == written


def test_tier_config_parameter_belongs_to_metering(dev):
    assert dev.one(PARAMETER).parent == component(dev, "Metering").urn


def test_usage_table_name_is_exported(stack):
    assert stack.outputs["usageTableName"] == _table(stack, "Metering").outputs["name"]
    assert stack.outputs["preparedResponsesTableName"] == _table(stack, "Cache").outputs["name"]
