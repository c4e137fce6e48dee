"""What the hosted chat app serves: its files with their types and cache lifetimes, the
``config.json`` the app reads at start, the Content-Security-Policy, and the page routing.

Pure functions, no Pulumi resources, so the rules are tested exactly; ``components.web`` declares
the resources from them.
"""

from __future__ import annotations

import json
import mimetypes
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import site_config

#: A year, immutable: a content-hashed name changes whenever its bytes do, so a browser or edge
#: cache never needs to ask again (https://developer.mozilla.org/docs/Web/HTTP/Headers/Cache-Control#immutable).
HASHED_CACHE_CONTROL = "public, max-age=31536000, immutable"
#: Everything else (index.html, favicon...) is revalidated on every use; ETags keep that cheap.
REVALIDATE_CACHE_CONTROL = "no-cache"
#: config.json can change on any `pulumi up` (a new client id, a new endpoint): never reuse it.
CONFIG_CACHE_CONTROL = "no-cache, no-store, must-revalidate"
CONFIG_KEY = "config.json"

#: Names the bundler gives content-hashed files: ``app-3f9a1c2b.js``, ``index.3f9a1c2b.css``.
_HEX_HASHED = re.compile(r"[-.][0-9a-f]{8,}\.[A-Za-z0-9]+$")
#: Vite (Rollup) writes every hashed chunk and asset, and only those, to ``assets/``; its hashes
#: are base64url, so the directory is the reliable sign
#: (https://vite.dev/config/build-options.html#build-assetsdir).
_HASHED_DIRECTORY = "assets/"

# Types that differ between Python versions' tables or are missing from them. JavaScript is
# text/javascript (RFC 9239, https://www.rfc-editor.org/rfc/rfc9239).
_CONTENT_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".html": "text/html; charset=utf-8",
    ".json": "application/json",
    ".map": "application/json",
    ".svg": "image/svg+xml",
    ".woff2": "font/woff2",
    ".woff": "font/woff",
    ".ttf": "font/ttf",
    ".txt": "text/plain; charset=utf-8",
    ".webmanifest": "application/manifest+json",
}
# Python's built-in table only (a fresh MimeTypes ignores the machine's /etc/mime.types), so the
# same file gets the same type wherever `pulumi up` runs.
_BUILT_IN_TYPES = mimetypes.MimeTypes()

#: Stack outputs the app reads from config.json - the same names the local gateway serves, so one
#: build of the app runs against `make dev` and a deployed stack alike (see site_config).
CONFIG_OUTPUTS = site_config.CONFIG_OUTPUTS


@dataclass(frozen=True)
class SiteFile:
    """One file of the built app, as it is uploaded: key, local path and response headers."""

    key: str
    path: Path
    content_type: str
    cache_control: str


def content_type(name: str) -> str:
    suffix = Path(name).suffix.lower()
    if suffix in _CONTENT_TYPES:
        return _CONTENT_TYPES[suffix]
    guessed, _ = _BUILT_IN_TYPES.guess_type(name, strict=True)
    return guessed or "application/octet-stream"


def is_content_hashed(key: str) -> bool:
    """Whether ``key`` names a file whose name changes with its content."""
    return key.startswith(_HASHED_DIRECTORY) or bool(_HEX_HASHED.search(key))


def site_files(site_dir: Path) -> list[SiteFile]:
    """Every file under ``site_dir`` in key order, hidden files and any config.json left out
    (config.json is generated for the stack, never taken from a build)."""
    files = []
    for path in sorted(p for p in site_dir.rglob("*") if p.is_file()):
        key = path.relative_to(site_dir).as_posix()
        if key == CONFIG_KEY or any(part.startswith(".") for part in key.split("/")):
            continue
        hashed = is_content_hashed(key)
        files.append(
            SiteFile(
                key=key,
                path=path,
                content_type=content_type(key),
                cache_control=HASHED_CACHE_CONTROL if hashed else REVALIDATE_CACHE_CONTROL,
            )
        )
    return files


def web_config(outputs: Mapping[str, Any]) -> str:
    """``config.json`` for a deployed stack: the outputs the app needs plus how it signs in, and
    no tier data (the app asks the gateway for its tier)."""
    document = site_config.config_document(outputs, stack=outputs.get("stack", ""))
    return json.dumps(document, indent=2, sort_keys=True) + "\n"


def cognito_origin(region: str) -> str:
    """Where the browser signs in: Cognito's user-pool API of the stack's region
    (https://docs.aws.amazon.com/general/latest/gr/cognito_identity.html)."""
    return f"https://cognito-idp.{region}.amazonaws.com"


def origin(url: str) -> str:
    """``scheme://host[:port]`` of ``url`` - what a CSP source names."""
    parts = urlsplit(url)
    if not parts.scheme or not parts.netloc:
        raise ValueError(f"{url!r} is not an absolute URL")
    return f"{parts.scheme}://{parts.netloc}"


def hosted_sign_in_origin(region: str, prefix: str) -> str:
    """The user pool's hosted sign-in (OAuth 2.0) domain, where federated sign-in exchanges its
    code for tokens (https://docs.aws.amazon.com/cognito/latest/developerguide/cognito-user-pools-assign-domain-prefix.html)."""
    return f"https://{prefix}.auth.{region}.amazoncognito.com"


def content_security_policy(
    region: str, events_http: str, events_realtime: str, hosted_domain: str | None = None
) -> str:
    """A CSP allowing the app's own files and connections to this stack's endpoints only.

    Scripts, styles, fonts and images come from the site itself; the page may connect to its own
    origin (config.json), the stack's Cognito endpoint (and its hosted sign-in domain, when
    federated sign-in has one), the Event API's HTTP endpoint (publish, ``https://``) and its
    real-time endpoint (subscribe, ``wss://``). No inline code, no framing, no plugins.
    """
    sign_in = [hosted_sign_in_origin(region, hosted_domain)] if hosted_domain else []
    directives = {
        "default-src": "'none'",
        "script-src": "'self'",
        "style-src": "'self'",
        "img-src": "'self'",
        "font-src": "'self'",
        "manifest-src": "'self'",
        "connect-src": " ".join(
            [
                "'self'",
                cognito_origin(region),
                *sign_in,
                origin(events_http),
                origin(events_realtime),
            ]
        ),
        "base-uri": "'none'",
        "form-action": "'self'",
        "frame-ancestors": "'none'",
        "object-src": "'none'",
    }
    return "; ".join(f"{name} {value}" for name, value in directives.items())


#: Viewer-request CloudFront Function: any path whose last segment has no file extension is a
#: route of the single-page app and gets index.html; files keep their own path, so a missing
#: asset is an error rather than an HTML page served as script. Pattern from AWS's
#: aws-samples/amazon-cloudfront-functions `url-rewrite-single-page-apps`; runtime
#: cloudfront-js-2.0 (https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/functions-javascript-runtime-20.html).
SPA_ROUTING_FUNCTION = """\
function handler(event) {
  var request = event.request;
  var last = request.uri.split("/").pop();
  if (last.indexOf(".") === -1) {
    request.uri = "/index.html";
  }
  return request;
}
"""
