"""The analytics record the chat function writes matches the Glue table the program declares."""

from dataclasses import fields

from gateway.schema import TURN_COLUMNS
from gateway.telemetry import TurnRecord, record_timestamp


def test_the_turn_record_has_exactly_the_glue_tables_columns_in_order():
    # GIVEN the record written to Firehose and the columns of the table Firehose converts it with
    # THEN they agree name by name (Firehose drops keys the table lacks without a word)
    assert [f.name for f in fields(TurnRecord)] == [name for name, _ in TURN_COLUMNS]


def test_record_timestamps_use_the_format_the_table_parses():
    # 2026-11-23T12:00:00.123Z as Glue's timestamp text
    assert record_timestamp(1795435200.123) == "2026-11-23 12:00:00.123"
