"""Serves the web chat UI and its ``config.json``.

The UI is static files: the built bundle under ``web/dist/`` when it has been built, otherwise the
files under ``local/web/``. Everything it needs to know about a gateway comes from ``config.json``
(the stack outputs plus the tier document), so the same files work against a deployed stack (see
:mod:`local.webconfig`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiohttp import web

from local.stack import REPO_ROOT

LEGACY_WEB_ROOT = Path(__file__).resolve().parent / "web"
BUILT_WEB_ROOT = REPO_ROOT / "web" / "dist"


def web_root() -> Path:
    """Where the UI's files are: the built bundle if there is one, else the plain files."""
    return BUILT_WEB_ROOT if (BUILT_WEB_ROOT / "index.html").is_file() else LEGACY_WEB_ROOT


#: Kept for callers that package the site (:mod:`local.webconfig`).
WEB_ROOT = web_root()


class WebUi:
    """Routes for ``/``, its assets and ``/config.json``."""

    def __init__(self, config: Callable[[web.Request, Path], dict[str, Any]]) -> None:
        self._config = config
        self.root = web_root()

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/", self.index)
        app.router.add_get("/config.json", self.config)
        app.router.add_get("/{name:[^/]+}", self.asset)
        for directory in sorted(p for p in self.root.iterdir() if p.is_dir()):
            app.router.add_static(f"/{directory.name}/", directory, show_index=False)

    async def index(self, request: web.Request) -> web.FileResponse:
        return web.FileResponse(self.root / "index.html", headers={"Cache-Control": "no-cache"})

    async def asset(self, request: web.Request) -> web.FileResponse:
        path = self.root / request.match_info["name"]
        if not path.is_file() or path.name.startswith("."):
            raise web.HTTPNotFound()
        return web.FileResponse(path, headers={"Cache-Control": "no-cache"})

    async def config(self, request: web.Request) -> web.Response:
        return web.json_response(
            self._config(request, self.root), headers={"Cache-Control": "no-store"}
        )
