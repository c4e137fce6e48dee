"""Who may talk to the local gateway: the hosts it serves and the web origins it trusts.

A page on any web site can make a browser send requests to ``localhost``, and a DNS-rebinding
page can even make them look same-origin. So every request must name a host this gateway serves
(``Host``), and any request a browser sends from a page (it carries ``Origin``) must come from a
trusted origin: the gateway's own UI, plus origins the developer allows (``--allow-origin``), such
as an app's own dev server. Clients outside a browser (Amplify in Node, boto3, ``websockets``)
send no ``Origin`` and are let through on the host check alone.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from urllib.parse import urlsplit

from aiohttp import web

from local.tls import LOOPBACK_NAMES

#: ``--allow-origin loopback``: any port of localhost, 127.0.0.1 or [::1], over http or https.
LOOPBACK_ORIGINS = "loopback"
CORS_HEADERS = {
    "Access-Control-Allow-Headers": (
        "authorization,content-type,x-amz-date,x-amz-security-token,x-amz-user-agent,"
        "x-amz-target,x-amz-content-sha256,cache-control"
    ),
    "Access-Control-Allow-Methods": "POST,OPTIONS",
    "Access-Control-Max-Age": "600",
    "Vary": "Origin",
}


def _host_name(host: str) -> str:
    """``example:8080`` → ``example``; ``[::1]:8080`` → ``::1``; lower case."""
    parsed = urlsplit(f"//{host}")
    try:
        return (parsed.hostname or "").lower()
    except ValueError:
        return ""


def _port_of(host: str) -> int | None:
    try:
        return urlsplit(f"//{host}").port
    except ValueError:
        return -1


class AccessPolicy:
    """The hosts and origins this gateway, listening on ``port``, accepts."""

    def __init__(self, port: int, extra_hosts: Iterable[str], origins: Iterable[str]) -> None:
        self.port = port
        self.hosts = frozenset(
            {*LOOPBACK_NAMES, *(_host_name(h) or h.lower() for h in extra_hosts if h)}
        )
        origins = list(origins)
        self.any_loopback_origin = LOOPBACK_ORIGINS in origins
        own = {
            f"{scheme}://{_bracket(host)}:{port}"
            for scheme in ("http", "https")
            for host in self.hosts
        }
        self.origins = frozenset(
            {*own, *(o.rstrip("/").lower() for o in origins if o != LOOPBACK_ORIGINS)}
        )

    def host_allowed(self, host: str | None) -> bool:
        if not host:
            return False
        port = _port_of(host)
        return _host_name(host) in self.hosts and port in (None, self.port)

    def origin_allowed(self, origin: str | None) -> bool:
        """True for no ``Origin`` (not a browser page) or a trusted one."""
        if origin is None:
            return True
        origin = origin.rstrip("/").lower()
        if origin in self.origins:
            return True
        parts = urlsplit(origin)
        return (
            self.any_loopback_origin
            and parts.scheme in ("http", "https")
            and _host_name(parts.netloc) in LOOPBACK_NAMES
        )

    def cors_headers(self, request: web.Request) -> dict[str, str]:
        origin = request.headers.get("Origin")
        if origin is None or not self.origin_allowed(origin):
            return {}
        return {"Access-Control-Allow-Origin": origin, **CORS_HEADERS}

    @web.middleware
    async def middleware(
        self,
        request: web.Request,
        handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
    ) -> web.StreamResponse:
        """Refuse a foreign ``Host`` on every route, and a foreign ``Origin`` on every route but
        the UI's own pages (a page's top-level navigation sends no ``Origin``)."""
        if not self.host_allowed(request.headers.get("Host")):
            return _refusal(
                421, f"This gateway does not serve the host {request.headers.get('Host')!r}"
            )
        if not self.origin_allowed(request.headers.get("Origin")):
            return _refusal(403, f"Requests from {request.headers['Origin']} are not allowed")
        response = await handler(request)
        if request.method in ("POST", "OPTIONS") and not response.prepared:
            response.headers.update(self.cors_headers(request))
        return response


def _bracket(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _refusal(status: int, message: str) -> web.Response:
    error = "ForbiddenException" if status == 403 else "BadRequestException"
    return web.json_response({"errors": [{"errorType": error, "message": message}]}, status=status)
