"""The hosted chat app: a private S3 bucket behind a CloudFront distribution.

CloudFront reads the bucket through origin access control (SigV4 on every request) and the bucket
policy lets in only this distribution. Viewers get HTTPS only, compressed responses, a strict set
of security headers, and the app's routes; ``config.json`` is written from the stack's outputs.
What each file is served as is decided in :mod:`components.web_content`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi
import pulumi_aws as aws

from components import web_content
from components.naming import renamed, stack_prefix
from components.private_bucket import create_private_bucket, declare_tls_only_policy
from components.web_logging import AccessLogs

# AWS managed cache policies
# (https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/using-managed-cache-policies.html):
# CachingOptimized honours the object's Cache-Control (min 1 s, max 1 year) and caches gzip and
# Brotli variants; CachingDisabled never caches.
CACHING_OPTIMIZED = "658327ea-f89d-4fab-a63d-7e88639e58f6"
CACHING_DISABLED = "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"
#: With a custom certificate CloudFront applies this security policy: TLS 1.2 or later. With the
#: default *.cloudfront.net certificate CloudFront itself fixes the policy (TLSv1) whatever is
#: asked (https://docs.aws.amazon.com/cloudfront/latest/APIReference/API_ViewerCertificate.html).
MINIMUM_PROTOCOL_VERSION = "TLSv1.2_2021"
#: Two years, as hstspreload.org asks of a site that wants preloading.
HSTS_SECONDS = 63_072_000
_ORIGIN_ID = "site"


@dataclass
class WebArgs:
    """Inputs of :class:`WebComponent`."""

    region: str
    #: The Event API's ``https://.../event`` and ``wss://.../event/realtime`` endpoints.
    events_http_endpoint: pulumi.Input[str]
    events_realtime_endpoint: pulumi.Input[str]
    #: Values of config.json: :data:`web_content.CONFIG_OUTPUTS` and ``stack``.
    config: Mapping[str, pulumi.Input[str]]
    #: Prefix of the user pool's hosted sign-in domain, if it has one (federated sign-in).
    hosted_sign_in_domain: pulumi.Input[str] | None = None
    #: The built app; ``None`` or a missing directory uploads config.json only, with a warning.
    site_dir: Path | None = None
    domain: str = ""
    certificate_arn: str = ""
    access_logging: bool = False
    log_retention_days: int = 90
    #: Keep the buckets on ``pulumi destroy`` (production).
    retain: bool = True

    def __post_init__(self) -> None:
        if bool(self.domain) != bool(self.certificate_arn):
            raise ValueError("WebArgs: a custom domain needs a certificate, and only then")
        missing = set(web_content.CONFIG_OUTPUTS) - set(self.config)
        if missing:
            raise ValueError(f"WebArgs.config: missing {', '.join(sorted(missing))}")


class WebComponent(pulumi.ComponentResource):
    """The chat app's bucket, distribution, headers, routing, files and config.json."""

    bucket: aws.s3.Bucket
    distribution: aws.cloudfront.Distribution
    headers_policy: aws.cloudfront.ResponseHeadersPolicy
    files: dict[str, aws.s3.BucketObjectv2]
    config_object: aws.s3.BucketObjectv2
    access_logs: AccessLogs | None
    url: pulumi.Output[str]

    def __init__(
        self, name: str, args: WebArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("ai-gateway:index:Web", name, None, opts)
        self._name = name
        self.bucket = create_private_bucket(
            f"{name}-site",
            bucket_name=f"{stack_prefix(name)}-site",
            expire_days_by_prefix={},
            retain=args.retain,
            parent=self,
            declare_policy=False,
        )
        self.headers_policy = self._create_headers_policy(args)
        self.distribution = self._create_distribution(args)
        self._allow_only_this_distribution()
        self.files = self._upload_site(args.site_dir)
        self.config_object = self._upload_config(args.config)
        self.access_logs = (
            AccessLogs(
                f"{name}-access-logs",
                distribution=self.distribution,
                retention_days=args.log_retention_days,
                retain=args.retain,
                parent=self,
                prefix=stack_prefix(name),
            )
            if args.access_logging
            else None
        )
        host = args.domain or self.distribution.domain_name
        self.url = pulumi.Output.concat("https://", host, "/")
        self.register_outputs(
            {
                "url": self.url,
                "bucketName": self.bucket.bucket,
                "distributionId": self.distribution.id,
            }
        )

    def _child(self, **kwargs: Any) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(parent=self, **kwargs)

    def _create_headers_policy(self, args: WebArgs) -> aws.cloudfront.ResponseHeadersPolicy:
        csp = pulumi.Output.all(
            args.events_http_endpoint, args.events_realtime_endpoint, args.hosted_sign_in_domain
        ).apply(lambda endpoints: web_content.content_security_policy(args.region, *endpoints))
        # Header settings: https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/understanding-response-headers-policies.html
        return aws.cloudfront.ResponseHeadersPolicy(
            f"{self._name}-headers",
            comment="ai-gateway chat app: HSTS, CSP, no framing, no sniffing",
            security_headers_config={
                "strict_transport_security": {
                    "access_control_max_age_sec": HSTS_SECONDS,
                    "include_subdomains": True,
                    "override": True,
                },
                "content_type_options": {"override": True},
                "frame_options": {"frame_option": "DENY", "override": True},
                "referrer_policy": {"referrer_policy": "no-referrer", "override": True},
                "content_security_policy": {"content_security_policy": csp, "override": True},
            },
            opts=self._child(),
        )

    def _create_distribution(self, args: WebArgs) -> aws.cloudfront.Distribution:
        # OAC signs every origin request with SigV4; "always" also replaces any Authorization
        # header a viewer sends (https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/private-content-restricting-access-to-s3.html).
        access = aws.cloudfront.OriginAccessControl(
            f"{stack_prefix(self._name)}-oac",
            description="CloudFront reads the chat app's bucket",
            origin_access_control_origin_type="s3",
            signing_behavior="always",
            signing_protocol="sigv4",
            opts=renamed(f"{self._name}-origin-access", parent=self),
        )
        routing = aws.cloudfront.Function(
            f"{self._name}-routing",
            runtime="cloudfront-js-2.0",
            comment="Routes of the single-page app get index.html",
            code=web_content.SPA_ROUTING_FUNCTION,
            publish=True,
            opts=self._child(),
        )
        behaviour = {
            "target_origin_id": _ORIGIN_ID,
            "viewer_protocol_policy": "redirect-to-https",
            "allowed_methods": ["GET", "HEAD"],
            "cached_methods": ["GET", "HEAD"],
            "compress": True,
            "response_headers_policy_id": self.headers_policy.id,
        }
        if args.domain:
            certificate: dict[str, Any] = {
                "acm_certificate_arn": args.certificate_arn,
                "ssl_support_method": "sni-only",
                "minimum_protocol_version": MINIMUM_PROTOCOL_VERSION,
            }
        else:
            certificate = {"cloudfront_default_certificate": True}
        return aws.cloudfront.Distribution(
            f"{self._name}-distribution",
            enabled=True,
            comment="ai-gateway chat app",
            is_ipv6_enabled=True,
            http_version="http2and3",
            default_root_object="index.html",
            aliases=[args.domain] if args.domain else None,
            origins=[
                {
                    "origin_id": _ORIGIN_ID,
                    "domain_name": self.bucket.bucket_regional_domain_name,
                    "origin_access_control_id": access.id,
                }
            ],
            default_cache_behavior={
                **behaviour,
                "cache_policy_id": CACHING_OPTIMIZED,
                "function_associations": [
                    {"event_type": "viewer-request", "function_arn": routing.arn}
                ],
            },
            # config.json changes with the stack, not with a build: never cached at the edge.
            ordered_cache_behaviors=[
                {
                    **behaviour,
                    "path_pattern": f"/{web_content.CONFIG_KEY}",
                    "cache_policy_id": CACHING_DISABLED,
                }
            ],
            restrictions={"geo_restriction": {"restriction_type": "none"}},
            viewer_certificate=certificate,
            opts=self._child(),
        )

    def _allow_only_this_distribution(self) -> None:
        # The bucket policy CloudFront's OAC documentation prescribes: the CloudFront service
        # principal may read objects, only on behalf of this distribution (AWS:SourceArn).
        grant = pulumi.Output.all(self.bucket.arn, self.distribution.arn).apply(
            lambda arns: [
                {
                    "Sid": "AllowThisDistributionToRead",
                    "Effect": "Allow",
                    "Principal": {"Service": "cloudfront.amazonaws.com"},
                    "Action": "s3:GetObject",
                    "Resource": f"{arns[0]}/*",
                    "Condition": {"StringEquals": {"AWS:SourceArn": arns[1]}},
                }
            ]
        )
        declare_tls_only_policy(f"{self._name}-site", self.bucket, parent=self, grants=grant)

    def _upload_site(self, site_dir: Path | None) -> dict[str, aws.s3.BucketObjectv2]:
        if site_dir is None or not site_dir.is_dir():
            pulumi.log.warn(
                f"The chat app is not built: {site_dir} does not exist, so only config.json is "
                "uploaded. Build the app into that directory and run `pulumi up` again.",
                resource=self,
            )
            return {}
        return {
            file.key: aws.s3.BucketObjectv2(
                f"{self._name}-file-{file.key}",
                bucket=self.bucket.id,
                key=file.key,
                source=pulumi.FileAsset(str(file.path)),
                content_type=file.content_type,
                cache_control=file.cache_control,
                opts=self._child(),
            )
            for file in web_content.site_files(site_dir)
        }

    def _upload_config(self, config: Mapping[str, pulumi.Input[str]]) -> aws.s3.BucketObjectv2:
        return aws.s3.BucketObjectv2(
            f"{self._name}-config",
            bucket=self.bucket.id,
            key=web_content.CONFIG_KEY,
            content=pulumi.Output.all(**config).apply(web_content.web_config),
            content_type="application/json",
            cache_control=web_content.CONFIG_CACHE_CONTROL,
            opts=self._child(),
        )
