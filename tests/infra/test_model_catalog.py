"""The model catalog keeps every stack on models Bedrock will still serve.

``test_every_configured_model_is_active_today`` reads the real clock, so it starts failing on the
day a configured model's Bedrock EOL date passes (or its Legacy date, which warns first); the
other tests move an injected clock across those dates.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import pytest

from devtools.declare import load_stack_config
from model_catalog import ACTIVE, EOL, LEGACY, CatalogError, load_catalog
from settings import SettingsError, load_settings

CATALOG = load_catalog()
CLAUDE_3_5_HAIKU = "us.anthropic.claude-3-5-haiku-20241022-v1:0"
CLAUDE_SONNET_4 = "us.anthropic.claude-sonnet-4-20250514-v1:0"


def _settings(stack: str, today: date, **tier_changes):
    config = load_stack_config(stack)
    tiers = json.loads(json.dumps(config["ai-gateway:tiers"]))
    for path, value in tier_changes.items():
        tier, key = path.split(".")
        tiers[tier][key] = value

    def get(key: str):
        return tiers if key == "tiers" else config.get(f"ai-gateway:{key}")

    return load_settings(stack, config["aws:region"], get, today=today)


def _configured_models(stack: str) -> set[str]:
    tiers = load_stack_config(stack)["ai-gateway:tiers"]
    found = set()
    for tier in tiers.values():
        found.update(tier["models"])
        found.update(tier.get(k) for k in ("defaultModel", "fallbackModel") if tier.get(k))
    return found


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_every_configured_model_is_active_today(stack):
    today = datetime.now(UTC).date()
    for model_id in sorted(_configured_models(stack)):
        model = CATALOG.find(model_id)
        assert model is not None, f"{model_id} is not in model-catalog.json"
        assert model.state_on(today) == ACTIVE, model.describe(today)
    assert _settings(stack, today).warnings == ()


def test_an_eol_model_is_refused_from_its_eol_date_on():
    # GIVEN the dev pro tier lists Claude 3.5 Haiku, EOL on Bedrock since 2026-06-19
    haiku = CATALOG.find(CLAUDE_3_5_HAIKU)
    assert haiku is not None and haiku.eol_on == date(2026, 6, 19)
    pro = load_stack_config("dev")["ai-gateway:tiers"]["pro"]
    models = [*pro["models"], CLAUDE_3_5_HAIKU]
    # WHEN the settings are loaded the day before, the model is only warned about (Legacy)
    before = _settings("dev", haiku.eol_on - timedelta(days=1), **{"pro.models": models})
    assert any(CLAUDE_3_5_HAIKU in w and "Legacy" in w for w in before.warnings)
    # THEN on its EOL date the stack is refused, naming the key and the date
    with pytest.raises(SettingsError, match=r"^ai-gateway:tiers\.pro\.models\[3\]: .*2026-06-19"):
        _settings("dev", haiku.eol_on, **{"pro.models": models})


def test_claude_sonnet_4_is_refused_today():
    prod = load_stack_config("prod")["ai-gateway:tiers"]["enterprise"]
    with pytest.raises(SettingsError, match="Claude Sonnet 4 reached end of life"):
        _settings(
            "prod", date(2026, 11, 27), **{"enterprise.models": [*prod["models"], CLAUDE_SONNET_4]}
        )


def test_a_legacy_fallback_model_is_warned_about():
    sonnet = CATALOG.find(CLAUDE_SONNET_4)
    assert sonnet is not None and sonnet.legacy_on is not None
    enterprise = load_stack_config("prod")["ai-gateway:tiers"]["enterprise"]
    settings = _settings(
        "prod",
        sonnet.legacy_on,
        **{
            "enterprise.models": [*enterprise["models"], CLAUDE_SONNET_4],
            "enterprise.fallbackModel": CLAUDE_SONNET_4,
        },
    )
    assert "ai-gateway:tiers.enterprise.fallbackModel" in " ".join(settings.warnings)


def test_recorded_dates_move_the_state_on():
    sonnet = CATALOG.find(CLAUDE_SONNET_4)
    assert sonnet.state_on(sonnet.legacy_on - timedelta(days=1)) == sonnet.state
    assert sonnet.state_on(sonnet.legacy_on) == LEGACY
    assert sonnet.state_on(sonnet.eol_on) == EOL


def test_every_id_form_finds_its_model():
    for model in CATALOG:
        for model_id in model.ids:
            assert CATALOG.find(model_id) is model
        assert model.input_per_1k > 0 and model.output_per_1k > model.input_per_1k
        assert model.source.startswith("https://docs.aws.amazon.com/bedrock/")


def _write_catalog(tmp_path, **entry_changes):
    document = json.loads((load_catalog.__globals__["CATALOG_FILE"]).read_text())
    document["models"][0].update(entry_changes)
    path = tmp_path / "model-catalog.json"
    path.write_text(json.dumps(document))
    return path


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"lifecycle": {"state": "Deprecated"}}, "state must be one of"),
        ({"lifecycle": {"state": "Legacy", "eolOn": None}}, "needs its eolOn"),
        ({"source": "http://example.com"}, "https:// page"),
        ({"price": {"inputPer1k": 1}}, "malformed entry"),
        ({"inferenceProfileIds": ["amazon.nova-lite-v1:0"]}, "listed twice"),
    ],
)
def test_a_malformed_catalog_is_refused(tmp_path, changes, message):
    with pytest.raises(CatalogError, match=message):
        load_catalog(_write_catalog(tmp_path, **changes))


def test_a_configured_model_without_a_price_is_refused_at_load_naming_the_model():
    from dataclasses import replace

    from model_catalog import ModelCatalog

    config = load_stack_config("dev")
    unpriced = ModelCatalog(
        checked_on=CATALOG.checked_on,
        models=tuple(
            replace(m, input_per_1k=None, output_per_1k=None)
            if m.foundation_model_id == "amazon.nova-lite-v1:0"
            else m
            for m in CATALOG
        ),
    )

    def get(key: str):
        return config.get(f"ai-gateway:{key}")

    with pytest.raises(SettingsError, match=r"'amazon.nova-lite-v1:0' has no price"):
        load_settings("dev", config["aws:region"], get, catalog=unpriced, today=date(2026, 12, 1))


def test_every_price_names_its_page_and_the_day_it_was_read():
    for model in CATALOG:
        assert model.price_source and model.price_source.startswith("https://"), model.name
        assert model.price_read_on is not None, model.name


def test_the_functions_read_each_configured_models_price_from_the_tier_document():
    settings = _settings("dev", date(2026, 12, 1))
    document = settings.tier_config.to_document()
    for model_id in settings.tier_config.all_models():
        found = CATALOG.find(model_id)
        assert found is not None
        assert document["prices"][model_id] == {
            "inputPer1k": found.input_per_1k,
            "outputPer1k": found.output_per_1k,
        }
