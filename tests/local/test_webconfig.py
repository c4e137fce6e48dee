"""Packaging the chat UI for a deployed stack (``python -m local.webconfig``)."""

from __future__ import annotations

import json

import pytest

from local.webconfig import main, web_config

OUTPUTS = {
    "region": "us-east-1",
    "userPoolId": "us-east-1_AbCdEf123",
    "userPoolClientId": "4example",
    "eventsHttpEndpoint": "https://abc.appsync-api.us-east-1.amazonaws.com/event",
    "eventsRealtimeEndpoint": "wss://abc.appsync-realtime-api.us-east-1.amazonaws.com/event/realtime",
    "inboundNamespace": "chat",
    "outboundNamespace": "replies",
    "usageTableName": "not-for-browsers",
}


def test_the_site_config_carries_the_outputs_and_srp_and_no_tier_data(tmp_path):
    outputs = tmp_path / "outputs.json"
    outputs.write_text(json.dumps(OUTPUTS))

    assert (
        main(["--stack", "prod", "--outputs", str(outputs), "--out", str(tmp_path / "site")]) == 0
    )

    site = tmp_path / "site"
    config = json.loads((site / "config.json").read_text())
    assert config["authFlow"] == "USER_SRP_AUTH"
    assert config["eventsRealtimeEndpoint"] == OUTPUTS["eventsRealtimeEndpoint"]
    assert config["stack"] == "prod"
    # The page asks the gateway for its tier, so a tier change never needs a new site.
    assert not {"tierConfig", "tiers", "models", "defaultTier", "limits"} & set(config)
    assert "amazon.nova" not in json.dumps(config)
    assert "usageTableName" not in config
    assert "demoUsers" not in config
    assert (site / "index.html").is_file()
    assert sorted(p.suffix for p in (site / "assets").iterdir() if p.suffix != ".txt") == [
        ".css",
        ".js",
        ".svg",  # the favicon
    ]


def test_outputs_missing_an_endpoint_are_refused():
    incomplete = {k: v for k, v in OUTPUTS.items() if k != "eventsRealtimeEndpoint"}
    with pytest.raises(ValueError, match="eventsRealtimeEndpoint"):
        web_config("dev", incomplete)


def test_the_packaged_site_and_the_hosted_app_get_the_same_config():
    from components.web_content import web_config as hosted_config

    packaged = web_config("prod", OUTPUTS)
    assert packaged == json.loads(hosted_config({**OUTPUTS, "stack": "prod"}))
