"""The committed chat UI in web/dist is what its sources and lockfile build, and fits a strict CSP.

These need the npm packages of web/package-lock.json (``make test`` installs them with ``npm ci``).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

WEB = Path(__file__).resolve().parents[2] / "web"
DIST = WEB / "dist"

needs_node_modules = pytest.mark.skipif(
    shutil.which("node") is None or not (WEB / "node_modules" / ".installed").exists(),
    reason="the web UI's npm packages are not installed (run `make web-deps` or `make test`)",
)


def files_under(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


@needs_node_modules
def test_rebuilding_from_the_lockfile_reproduces_the_committed_bundle_byte_for_byte(tmp_path):
    subprocess.run(["node", "build.mjs", str(tmp_path / "dist")], cwd=WEB, check=True)

    rebuilt, committed = files_under(tmp_path / "dist"), files_under(DIST)
    assert sorted(rebuilt) == sorted(committed), "run `make web` and commit web/dist"
    changed = [name for name in rebuilt if rebuilt[name] != committed[name]]
    assert changed == [], f"web/dist is stale in {changed}: run `make web` and commit it"


@needs_node_modules
def test_the_ui_modules_pass_their_node_tests():
    result = subprocess.run(
        ["node", "--test", "test/"], cwd=WEB, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_index_names_the_hashed_assets_from_the_site_root_and_nothing_inline_or_remote():
    html = (DIST / "index.html").read_text()
    links = re.findall(r'(?:src|href)="([^"#]+)"', html)
    # Root-relative, so the page the hosting serves on any path (/a/b) still finds them.
    assert all(link.startswith("/assets/") for link in links), links
    assert len(links) == 3, links
    for asset in links:
        assert re.fullmatch(r"/assets/(main|style|favicon)-[A-Z0-9]{8}\.(js|css|svg)", asset)
        assert (DIST / asset.lstrip("/")).is_file(), asset
    # A data: favicon is refused by the hosting's CSP (img-src 'self').
    assert "data:" not in html
    # A strict CSP (script-src/style-src 'self') refuses inline code and third-party hosts.
    assert not re.search(r"<script(?![^>]*\bsrc=)", html), "inline <script>"
    assert "<style" not in html and " style=" not in html, "inline style"
    assert not re.search(r'(?:src|href)="(?:https?:)?//', html), "a remote asset"
    assert not re.search(r"\son[a-z]+=", html), "an inline event handler"


def test_the_bundle_needs_no_eval():
    bundle = next((DIST / "assets").glob("main-*.js")).read_text()
    # 'unsafe-eval' is not in the hosting's CSP: eval and the Function constructor would be refused.
    assert not re.search(r"\beval\(", bundle)
    assert not re.search(r"\bnew Function\(|[^.\w]Function\(\s*['\"]", bundle)
