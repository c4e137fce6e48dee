"""Serves the web chat UI and its ``config.json``.

The UI is the bundle built into ``web/dist/`` (docs/web-ui.md). Everything it needs to know about
a gateway comes from ``config.json`` (the stack outputs plus the tier document), so the same files
work against a deployed stack (see :mod:`local.webconfig`). Sign-in requests go to the gateway's
own ``/cognito-idp/`` route (:mod:`local.cognito`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiohttp import web

from local.stack import REPO_ROOT

#: The built chat UI (``make web`` rebuilds it; the bundle is committed).
WEB_ROOT = REPO_ROOT / "web" / "dist"


class WebUi:
    """Routes for ``/``, its assets and ``/config.json``."""

    def __init__(self, config: Callable[[web.Request, Path], dict[str, Any]]) -> None:
        self._config = config
        self.root = WEB_ROOT

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/", self.index)
        app.router.add_get("/config.json", self.config)
        app.router.add_static("/assets/", self.root / "assets", show_index=False)

    async def index(self, request: web.Request) -> web.FileResponse:
        return web.FileResponse(self.root / "index.html", headers={"Cache-Control": "no-cache"})

    async def config(self, request: web.Request) -> web.Response:
        return web.json_response(
            self._config(request, self.root), headers={"Cache-Control": "no-store"}
        )
