"""WebComponent: the chat app in a private bucket behind CloudFront, as each stack declares it."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

import pytest
from infra_support import as_list, component, statements

from components.web import CACHING_DISABLED, CACHING_OPTIMIZED
from components.web_content import CONFIG_OUTPUTS
from devtools.declare import declare_stack
from local.webconfig import UI_OUTPUTS
from settings import SettingsError

BUCKET = "aws:s3/bucket:Bucket"
PUBLIC_ACCESS = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
BUCKET_POLICY = "aws:s3/bucketPolicy:BucketPolicy"
OBJECT = "aws:s3/bucketObjectv2:BucketObjectv2"
DISTRIBUTION = "aws:cloudfront/distribution:Distribution"
OAC = "aws:cloudfront/originAccessControl:OriginAccessControl"
HEADERS = "aws:cloudfront/responseHeadersPolicy:ResponseHeadersPolicy"
FUNCTION = "aws:cloudfront/function:Function"
LOG_SOURCE = "aws:cloudwatch/logDeliverySource:LogDeliverySource"
LOG_DESTINATION = "aws:cloudwatch/logDeliveryDestination:LogDeliveryDestination"
LOG_DELIVERY = "aws:cloudwatch/logDelivery:LogDelivery"
ROOT = Path(__file__).resolve().parents[2]
CERTIFICATE = "arn:aws:acm:us-east-1:123456789012:certificate/0f0e0d0c-1b1a-2c2b-3d3c-4e4d4c4b4a49"


def _site_bucket(stack):
    return stack.named(f"ai-gateway-{stack.stack}-site")


def _objects(stack) -> dict[str, dict]:
    return {o.inputs["key"]: o.inputs for o in stack.of_type(OBJECT)}


def _csp(stack) -> dict[str, list[str]]:
    headers = stack.one(HEADERS).inputs["securityHeadersConfig"]
    value = headers["contentSecurityPolicy"]["contentSecurityPolicy"]
    directives = [d.split() for d in value.split(";")]
    return {d[0]: d[1:] for d in directives}


def test_web_url_is_the_distributions_https_address(stack):
    domain = stack.one(DISTRIBUTION).outputs["domainName"]
    assert stack.outputs["webUrl"] == f"https://{domain}/"


def test_every_bucket_blocks_public_access(stack):
    blocks = {b.inputs["bucket"]: b.inputs for b in stack.of_type(PUBLIC_ACCESS)}
    for bucket in stack.of_type(BUCKET):
        block = blocks[bucket.outputs["bucket"]]
        for flag in ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls"):
            assert block[flag] is True, (bucket.name, flag)
        assert block["restrictPublicBuckets"] is True, bucket.name


def test_bucket_policies_allow_only_service_principals_bound_to_a_source(stack):
    for policy in stack.of_type(BUCKET_POLICY):
        for statement in statements(policy):
            if statement["Effect"] != "Allow":
                continue
            assert set(statement["Principal"]) == {"Service"}, policy.name
            conditions = {k.lower() for op in statement["Condition"].values() for k in op}
            assert "aws:sourcearn" in conditions, (policy.name, statement.get("Sid"))


def test_only_this_distribution_may_read_the_site_bucket(stack):
    bucket = _site_bucket(stack)
    (policy,) = [p for p in stack.of_type(BUCKET_POLICY) if p.inputs["bucket"] == bucket.id]
    (grant,) = [s for s in statements(policy) if s["Effect"] == "Allow"]
    assert grant["Principal"] == {"Service": "cloudfront.amazonaws.com"}
    assert grant["Action"] == "s3:GetObject"
    assert grant["Resource"] == f"{bucket.outputs['arn']}/*"
    distribution_arn = stack.one(DISTRIBUTION).outputs["arn"]
    assert grant["Condition"] == {"StringEquals": {"AWS:SourceArn": distribution_arn}}
    # ... and nothing reaches it without TLS
    (deny,) = [s for s in statements(policy) if s["Effect"] == "Deny"]
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_cloudfront_reaches_the_bucket_through_origin_access_control(stack):
    oac = stack.one(OAC).inputs
    assert (oac["originAccessControlOriginType"], oac["signingBehavior"]) == ("s3", "always")
    assert oac["signingProtocol"] == "sigv4"
    (origin,) = stack.one(DISTRIBUTION).inputs["origins"]
    assert origin["domainName"] == _site_bucket(stack).outputs["bucketRegionalDomainName"]
    assert origin["originAccessControlId"] == stack.one(OAC).id
    assert "s3OriginConfig" not in origin and "customOriginConfig" not in origin


def test_viewers_get_https_only_and_compressed_responses(stack):
    distribution = stack.one(DISTRIBUTION).inputs
    behaviours = [distribution["defaultCacheBehavior"], *distribution["orderedCacheBehaviors"]]
    for behaviour in behaviours:
        assert behaviour["viewerProtocolPolicy"] == "redirect-to-https"
        assert behaviour["compress"] is True
        assert behaviour["allowedMethods"] == ["GET", "HEAD"]
        assert behaviour["responseHeadersPolicyId"] == stack.one(HEADERS).id


def test_the_default_name_uses_cloudfronts_certificate(stack):
    distribution = stack.one(DISTRIBUTION).inputs
    assert distribution["viewerCertificate"] == {"cloudfrontDefaultCertificate": True}
    assert "aliases" not in distribution


def test_a_custom_domain_uses_its_certificate_with_tls_1_2_or_later():
    stack = declare_stack(
        "dev", {"webDomain": "chat.example.com", "webCertificateArn": CERTIFICATE}
    )
    distribution = stack.one(DISTRIBUTION).inputs
    assert distribution["aliases"] == ["chat.example.com"]
    assert distribution["viewerCertificate"] == {
        "acmCertificateArn": CERTIFICATE,
        "sslSupportMethod": "sni-only",
        "minimumProtocolVersion": "TLSv1.2_2021",
    }
    assert stack.outputs["webUrl"] == "https://chat.example.com/"
    client = stack.one("aws:cognito/userPoolClient:UserPoolClient").inputs
    assert "https://chat.example.com/" in client["callbackUrls"]


@pytest.mark.parametrize(
    ("overrides", "key"),
    [
        ({"webDomain": "chat.example.com"}, "ai-gateway:webCertificateArn"),
        ({"webCertificateArn": CERTIFICATE}, "ai-gateway:webDomain"),
        (
            {
                "webDomain": "chat.example.com",
                "webCertificateArn": CERTIFICATE.replace("us-east-1", "eu-west-1"),
            },
            "ai-gateway:webCertificateArn",
        ),
        ({"webDomain": "not a domain", "webCertificateArn": CERTIFICATE}, "ai-gateway:webDomain"),
        ({"webLogging": "sometimes"}, "ai-gateway:webLogging"),
    ],
    ids=[
        "domain-without-certificate",
        "certificate-without-domain",
        "certificate-region",
        "bad-domain",
        "logging-not-bool",
    ],
)
def test_a_bad_web_setting_is_refused_naming_its_key(overrides, key):
    with pytest.raises(SettingsError, match=key):
        declare_stack("dev", overrides)


def test_security_headers_are_on_every_response(stack):
    headers = stack.one(HEADERS).inputs["securityHeadersConfig"]
    hsts = headers["strictTransportSecurity"]
    assert hsts["accessControlMaxAgeSec"] >= 31_536_000 and hsts["includeSubdomains"] is True
    assert headers["contentTypeOptions"]["override"] is True
    assert headers["frameOptions"]["frameOption"] == "DENY"
    assert headers["referrerPolicy"]["referrerPolicy"] == "no-referrer"
    assert _csp(stack)["frame-ancestors"] == ["'none'"]


def test_csp_allows_only_the_site_and_the_stacks_own_endpoints(stack):
    csp = _csp(stack)
    dns = stack.one("aws:appsync/api:Api").outputs["dns"]
    region = stack.config["aws:region"]
    assert sorted(csp["connect-src"]) == sorted(
        [
            "'self'",
            f"https://cognito-idp.{region}.amazonaws.com",
            f"https://{dns['HTTP']}",
            f"wss://{dns['REALTIME']}",
        ]
    )
    assert csp["default-src"] == ["'none'"]
    for directive, sources in csp.items():
        if directive != "connect-src":
            assert set(sources) <= {"'self'", "'none'"}, directive


def test_csp_follows_the_stacks_region():
    stack = declare_stack("dev", {"aws:region": "eu-west-1"})
    assert "https://cognito-idp.eu-west-1.amazonaws.com" in _csp(stack)["connect-src"]


def test_app_routes_get_index_html_from_a_viewer_request_function(stack):
    default = stack.one(DISTRIBUTION).inputs["defaultCacheBehavior"]
    (association,) = default["functionAssociations"]
    assert association["eventType"] == "viewer-request"
    assert association["functionArn"] == stack.one(FUNCTION).outputs["arn"]
    assert stack.one(FUNCTION).inputs["runtime"] == "cloudfront-js-2.0"
    assert stack.one(DISTRIBUTION).inputs["defaultRootObject"] == "index.html"


def test_config_json_is_the_stacks_outputs_under_the_local_gateways_names(stack):
    config = _objects(stack)["config.json"]
    document = json.loads(config["content"])
    # the names the local gateway serves, so one build of the app runs against both
    assert set(CONFIG_OUTPUTS) == set(UI_OUTPUTS)
    for name in CONFIG_OUTPUTS:
        assert document[name] == stack.outputs[name], name
    assert document["authFlow"] == "USER_SRP_AUTH"
    assert document["stack"] == stack.stack
    assert config["contentType"] == "application/json"
    assert "no-store" in config["cacheControl"]


def test_config_json_is_never_cached_at_the_edge(stack):
    (behaviour,) = stack.one(DISTRIBUTION).inputs["orderedCacheBehaviors"]
    assert behaviour["pathPattern"] == "/config.json"
    assert behaviour["cachePolicyId"] == CACHING_DISABLED
    default = stack.one(DISTRIBUTION).inputs["defaultCacheBehavior"]
    assert default["cachePolicyId"] == CACHING_OPTIMIZED


@pytest.fixture(scope="module")
def built_site(tmp_path_factory) -> str:
    site = tmp_path_factory.mktemp("dist")
    (site / "assets").mkdir()
    (site / "fonts").mkdir()
    (site / "index.html").write_text("<!doctype html><script src='/app-3f9a1c2b.js'></script>")
    (site / "app-3f9a1c2b.js").write_text("console.log('app')")
    (site / "assets" / "index-Dx_4kPq9.css").write_text("body{}")
    (site / "fonts" / "inter-0a1b2c3d.woff2").write_bytes(b"wOF2")
    (site / "favicon.ico").write_bytes(b"\x00\x00\x01\x00")
    (site / "config.json").write_text('{"stale": true}')  # a build must not override the stack's
    (site / ".DS_Store").write_bytes(b"junk")
    return str(site)


def test_built_files_are_uploaded_with_their_type_and_cache_lifetime(built_site):
    objects = _objects(declare_stack("dev", {"webSiteDir": built_site}))
    assert set(objects) == {
        "index.html",
        "app-3f9a1c2b.js",
        "assets/index-Dx_4kPq9.css",
        "fonts/inter-0a1b2c3d.woff2",
        "favicon.ico",
        "config.json",
    }
    immutable = "public, max-age=31536000, immutable"
    expected = {
        "index.html": ("text/html; charset=utf-8", "no-cache"),
        "app-3f9a1c2b.js": ("text/javascript; charset=utf-8", immutable),
        "assets/index-Dx_4kPq9.css": ("text/css; charset=utf-8", immutable),
        "fonts/inter-0a1b2c3d.woff2": ("font/woff2", immutable),
        "favicon.ico": ("image/vnd.microsoft.icon", "no-cache"),
    }
    for key, (content_type, cache_control) in expected.items():
        assert (objects[key]["contentType"], objects[key]["cacheControl"]) == (
            content_type,
            cache_control,
        ), key
    assert "stale" not in objects["config.json"]["content"]


def test_a_missing_build_uploads_only_config_json_and_warns(caplog):
    with caplog.at_level(logging.WARNING):
        stack = declare_stack("dev", {"webSiteDir": "no/such/build"})
    assert set(_objects(stack)) == {"config.json"}
    assert any("no/such/build does not exist" in r.getMessage() for r in caplog.records)


def test_prod_delivers_access_logs_to_a_private_bucket_of_the_stack(prod):
    distribution = prod.one(DISTRIBUTION)
    source = prod.one(LOG_SOURCE).inputs
    assert (source["logType"], source["resourceArn"]) == (
        "ACCESS_LOGS",
        distribution.outputs["arn"],
    )
    logs_bucket = prod.named("ai-gateway-prod-access-logs")
    destination = prod.one(LOG_DESTINATION)
    config = destination.inputs["deliveryDestinationConfiguration"]
    assert config["destinationResourceArn"] == logs_bucket.outputs["arn"]
    delivery = prod.one(LOG_DELIVERY).inputs
    assert delivery["deliverySourceName"] == prod.one(LOG_SOURCE).outputs["name"]
    assert delivery["deliveryDestinationArn"] == destination.outputs["arn"]
    # CloudFront's log delivery is managed from us-east-1, whatever the stack's region
    for resource in (prod.one(LOG_SOURCE), destination, prod.one(LOG_DELIVERY)):
        assert resource.inputs["region"] == "us-east-1"


def test_log_delivery_may_write_only_this_accounts_logs(prod):
    bucket = prod.named("ai-gateway-prod-access-logs")
    (policy,) = [p for p in prod.of_type(BUCKET_POLICY) if p.inputs["bucket"] == bucket.id]
    writes = [s for s in statements(policy) if "s3:PutObject" in as_list(s["Action"])]
    (write,) = writes
    assert write["Principal"] == {"Service": "delivery.logs.amazonaws.com"}
    assert write["Resource"] == f"{bucket.outputs['arn']}/AWSLogs/123456789012/*"
    assert write["Condition"]["StringEquals"]["aws:SourceAccount"] == "123456789012"


def test_dev_declares_no_access_logging(dev):
    assert dev.of_type(LOG_SOURCE) == [] and dev.of_type(LOG_DELIVERY) == []


def test_prod_keeps_the_app_buckets_and_dev_can_drop_them(dev, prod):
    assert _site_bucket(prod).inputs["forceDestroy"] is False
    assert _site_bucket(dev).inputs["forceDestroy"] is True


def test_web_off_declares_no_app():
    stack = declare_stack("dev", {"web": False})
    assert stack.of_type("ai-gateway:index:Web") == []
    assert not [r for r in stack.resources if r.type.startswith("aws:cloudfront/")]


def test_web_children_are_parented_to_the_web_component(prod):
    web = component(prod, "Web")
    for type_ in (DISTRIBUTION, OAC, HEADERS, FUNCTION, OBJECT, LOG_SOURCE, LOG_DELIVERY):
        assert all(r.parent == web.urn for r in prod.of_type(type_)), type_


def test_federated_sign_in_adds_only_the_hosted_sign_in_domain_to_the_csp():
    google = {"google": {"clientId": "client-123", "clientSecret": "s3cret"}}
    stack = declare_stack("dev", {"identityProviders": google})
    prefix = stack.one("aws:cognito/userPoolDomain:UserPoolDomain").inputs["domain"]
    connect = _csp(stack)["connect-src"]
    assert f"https://{prefix}.auth.us-east-1.amazoncognito.com" in connect
    assert len(connect) == 5  # 'self', Cognito, hosted sign-in, Event API https and wss


@pytest.mark.parametrize(
    ("module", "component", "method"),
    [
        pytest.param("components.web", "WebComponent", "_upload_site", id="the-app"),
        pytest.param("components.events_api", "EventsApiComponent", "__init__", id="the-event-api"),
        pytest.param("components.metering", "MeteringComponent", "__init__", id="metering"),
    ],
)
def test_a_failure_while_declaring_is_reported_instead_of_waited_on(module, component, method):
    # The app client waits for the app's URL; if declaring anything after the user pool fails,
    # the program must still settle that wait so the error surfaces (Pulumi would otherwise wait
    # forever).
    script = (
        f"import {module} as target\n"
        "def fail(self, *args, **kwargs): raise OSError('cannot declare it')\n"
        f"target.{component}.{method} = fail\n"
        "from devtools.declare import declare_stack\n"
        "try:\n"
        "    declare_stack('dev')\n"
        "except OSError as err:\n"
        "    print('reported:', err)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert "reported: cannot declare it" in result.stdout, result.stderr[-2000:]
