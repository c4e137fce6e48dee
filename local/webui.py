"""Serves the web chat UI, its ``config.json`` and a same-origin door to the local user pool.

The UI is the bundle built into ``web/dist/`` (docs/web-ui.md); everything it needs to know about
a gateway comes from ``config.json`` (the §4 stack outputs plus the tier document), so the same
files work against a deployed stack (see :mod:`local.webconfig`). Locally, sign-in requests go
through ``/cognito-idp/`` to moto, which only forwards the user-facing Cognito operations.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

WEB_ROOT = Path(__file__).resolve().parent.parent / "web" / "dist"

#: Cognito operations a signed-out browser may call (no admin APIs through the proxy).
USER_OPERATIONS = frozenset(
    {"InitiateAuth", "RespondToAuthChallenge", "GetUser", "GlobalSignOut", "RevokeToken"}
)
_TARGET_PREFIX = "AWSCognitoIdentityProviderService."


class WebUi:
    """Routes for ``/``, its assets, ``/config.json`` and ``/cognito-idp/``."""

    def __init__(self, config: Callable[[str], dict[str, Any]], cognito_endpoint: str) -> None:
        self._config = config
        self._cognito_endpoint = cognito_endpoint.rstrip("/") + "/"
        self._session: aiohttp.ClientSession | None = None

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/", self.index)
        app.router.add_get("/config.json", self.config)
        app.router.add_post("/cognito-idp/", self.cognito)
        app.router.add_static("/assets/", WEB_ROOT / "assets", show_index=False)
        app.on_cleanup.append(self._close)

    async def index(self, request: web.Request) -> web.FileResponse:
        return web.FileResponse(WEB_ROOT / "index.html", headers={"Cache-Control": "no-cache"})

    async def config(self, request: web.Request) -> web.Response:
        return web.json_response(self._config(request.host), headers={"Cache-Control": "no-store"})

    async def cognito(self, request: web.Request) -> web.Response:
        target = request.headers.get("X-Amz-Target", "")
        operation = target.removeprefix(_TARGET_PREFIX)
        if not target.startswith(_TARGET_PREFIX) or operation not in USER_OPERATIONS:
            return web.json_response(
                {
                    "__type": "NotAuthorizedException",
                    "message": f"{operation or 'This operation'} is not available to browsers",
                },
                status=400,
            )
        if self._session is None:
            self._session = aiohttp.ClientSession()
        async with self._session.post(
            self._cognito_endpoint,
            data=await request.read(),
            headers={
                "X-Amz-Target": target,
                "Content-Type": request.headers.get("Content-Type", "application/x-amz-json-1.1"),
            },
        ) as upstream:
            return web.Response(
                body=await upstream.read(),
                status=upstream.status,
                content_type="application/x-amz-json-1.1",
            )

    async def _close(self, app: web.Application) -> None:
        if self._session is not None:
            await self._session.close()
