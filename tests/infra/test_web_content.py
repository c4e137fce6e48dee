"""What the hosted app serves: hashed names, content types, config.json, the CSP and the routing."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from components import web_content

OUTPUTS = {
    "region": "eu-west-1",
    "userPoolId": "eu-west-1_abc",
    "userPoolClientId": "client123",
    "eventsHttpEndpoint": "https://a.appsync-api.eu-west-1.amazonaws.com/event",
    "eventsRealtimeEndpoint": "wss://a.appsync-realtime-api.eu-west-1.amazonaws.com/event/realtime",
    "inboundNamespace": "chat",
    "outboundNamespace": "replies",
    "stack": "dev",
}


@pytest.mark.parametrize(
    ("key", "hashed"),
    [
        ("app-3f9a1c2b.js", True),
        ("index.3f9a1c2b0d.css", True),
        ("assets/index-Dx_4kPq9.js", True),  # Vite: base64url hashes, always under assets/
        ("fonts/inter-0a1b2c3d.woff2", True),
        ("index.html", False),
        ("favicon.ico", False),
        ("my-settings.js", False),  # a word, not a hash
        ("app-3f9a1c2.js", False),  # seven hex digits are too few to be a content hash
    ],
)
def test_content_hashed_names_are_recognised(key, hashed):
    assert web_content.is_content_hashed(key) is hashed


@pytest.mark.parametrize(
    ("name", "content_type"),
    [
        ("a.js", "text/javascript; charset=utf-8"),
        ("a.mjs", "text/javascript; charset=utf-8"),
        ("a.css", "text/css; charset=utf-8"),
        ("index.html", "text/html; charset=utf-8"),
        ("a.svg", "image/svg+xml"),
        ("a.woff2", "font/woff2"),
        ("a.png", "image/png"),
        ("a.webmanifest", "application/manifest+json"),
        ("LICENSE", "application/octet-stream"),
    ],
)
def test_each_file_gets_its_content_type(name, content_type):
    assert web_content.content_type(name) == content_type


def test_config_json_holds_the_outputs_and_how_to_sign_in():
    document = json.loads(web_content.web_config(OUTPUTS))
    assert document == {
        **OUTPUTS,
        "authFlow": "USER_SRP_AUTH",
        "modelProvider": "bedrock",
        "environment": "aws",
    }


def test_config_json_without_an_output_names_it():
    with pytest.raises(ValueError, match="userPoolClientId"):
        web_content.web_config({**OUTPUTS, "userPoolClientId": ""})


def test_csp_names_the_origins_of_the_endpoints():
    csp = web_content.content_security_policy(
        "eu-west-1", OUTPUTS["eventsHttpEndpoint"], OUTPUTS["eventsRealtimeEndpoint"]
    )
    assert (
        "connect-src 'self' https://cognito-idp.eu-west-1.amazonaws.com "
        "https://a.appsync-api.eu-west-1.amazonaws.com "
        "wss://a.appsync-realtime-api.eu-west-1.amazonaws.com;"
    ) in csp
    assert "'unsafe-inline'" not in csp and "*" not in csp


def test_an_endpoint_that_is_not_a_url_is_refused():
    with pytest.raises(ValueError, match="not an absolute URL"):
        web_content.origin("a.appsync-api.eu-west-1.amazonaws.com")


@pytest.mark.skipif(shutil.which("node") is None, reason="needs Node.js")
@pytest.mark.parametrize(
    ("uri", "rewritten"),
    [
        ("/", "/index.html"),
        ("/chat/c-123", "/index.html"),
        ("/settings/", "/index.html"),
        ("/config.json", "/config.json"),
        ("/assets/index-Dx_4kPq9.js", "/assets/index-Dx_4kPq9.js"),
        ("/favicon.ico", "/favicon.ico"),
    ],
)
def test_routing_function_sends_app_routes_to_index_html(uri, rewritten):
    # The function's own code, run by Node with the event shape CloudFront passes it.
    script = (
        web_content.SPA_ROUTING_FUNCTION
        + f"process.stdout.write(handler({{request: {{uri: {json.dumps(uri)}}}}}).uri);"
    )
    result = subprocess.run(["node", "-e", script], capture_output=True, text=True, check=True)
    assert result.stdout == rewritten
