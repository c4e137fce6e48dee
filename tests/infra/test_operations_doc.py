"""docs/operations.md has a runbook entry for every alarm the stacks declare, and each entry sends
the operator to a saved query and a dashboard widget that exist."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from components.analytics_schema import named_queries
from components.log_queries import LOG_QUERIES

DOC = Path(__file__).resolve().parents[2] / "docs" / "operations.md"
ALARMS = ("aws:cloudwatch/metricAlarm:MetricAlarm", "aws:cloudwatch/compositeAlarm:CompositeAlarm")


def _sections(text: str, heading: str) -> dict[str, str]:
    """The ``### `` subsections of the ``## heading`` section: title -> body."""
    part = text.split(f"\n## {heading}\n", 1)[1].split("\n## ", 1)[0]
    chunks = re.split(r"^### (.+)$", part, flags=re.M)[1:]
    return dict(zip(chunks[::2], chunks[1::2], strict=True))


def _alarm_entries() -> dict[str, str]:
    """Runbook entries by the alarm's logical name, as each heading names it in backquotes."""
    entries = {}
    for title, body in _sections(DOC.read_text(), "Alarms").items():
        (name,) = re.findall(r"`([^`]+)`", title)
        entries[name] = body
    return entries


def _dashboard_titles(stack) -> set[str]:
    dashboard = stack.one("aws:cloudwatch/dashboard:Dashboard")
    body = json.loads(dashboard.inputs["dashboardBody"])
    return {widget["properties"]["title"] for widget in body["widgets"]}


@pytest.mark.parametrize("stack_name", ["dev", "prod"])
def test_every_alarm_a_stack_declares_has_a_runbook_entry(request, stack_name: str):
    stack = request.getfixturevalue(stack_name)
    declared = {
        r.name.replace(f"ai-gateway-{stack_name}-", "ai-gateway-<stack>-", 1)
        for r in stack.resources
        if r.type in ALARMS
    }
    assert declared, "the stack declares no alarm"
    missing = declared - set(_alarm_entries())
    assert not missing, f"add a runbook entry to docs/operations.md for {sorted(missing)}"


def test_every_runbook_entry_is_an_alarm_a_stack_declares(dev, prod):
    declared = {
        r.name.replace(f"ai-gateway-{name}-", "ai-gateway-<stack>-", 1)
        for name, stack in (("dev", dev), ("prod", prod))
        for r in stack.resources
        if r.type in ALARMS
    }
    assert set(_alarm_entries()) <= declared


def test_each_entry_says_what_it_means_how_to_confirm_it_and_what_to_do():
    for name, body in _alarm_entries().items():
        for part in ("**Means.**", "**Confirm.**", "**Do.**"):
            assert part in body, f"{name}: no {part}"


def _italics(text: str) -> set[str]:
    """What ``*text*`` marks (widget titles), bold ``**text**`` left out."""
    marked = re.findall(r"(?<!\*)\*([^*]+)\*(?!\*)", re.sub(r"\*\*[^*]+\*\*", "", text))
    return {" ".join(title.split()) for title in marked}  # a title may wrap across lines


def test_each_entry_confirms_with_a_dashboard_widget_that_exists(prod):
    titles = _dashboard_titles(prod)
    for name, body in _alarm_entries().items():
        confirm = body.split("**Confirm.**", 1)[1].split("**Do.**", 1)[0]
        assert _italics(confirm) & titles, f"{name}: name a dashboard widget by its title"


def test_the_runbook_lists_every_dashboard_widget_by_its_title(prod):
    where = DOC.read_text().split("\n## Where to look\n", 1)[1]
    dashboard = where.split("**Saved Logs Insights queries.**", 1)[0]
    assert _italics(dashboard) == _dashboard_titles(prod)


def test_the_runbook_lists_every_saved_query():
    named = set(re.findall(r"`([a-z0-9]+(?:-[a-z0-9]+)+)`", DOC.read_text()))
    assert set(LOG_QUERIES) <= named, "list every saved Logs Insights query"
    assert set(named_queries("db")) <= named, "list every Athena named query"
