"""What the functions run: their code archive from ``functions/``, the Powertools layer, and the
environment each one gets.

The archive is assembled by the program itself, so a fresh clone deploys with no build step. It
lists files in a fixed, sorted order with paths relative to ``functions/``, so every machine
produces the same archive and an unchanged tree never redeploys code.

Powertools (and its pydantic and X-Ray SDK dependencies) comes from the AWS-managed layer rather
than the archive: the layer of exactly the version pinned in ``functions/requirements.txt`` is
resolved from the public SSM parameter AWS publishes per version, so the tests, the local runtime
and AWS all run the same Powertools, and the archive stays a few kilobytes of our own code.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import pulumi
from gateway.environment import FunctionEnvironment
from gateway.metrics import METRICS_NAMESPACE

#: Files and folders never shipped to Lambda.
_EXCLUDED_PARTS = frozenset({"__pycache__", "tests", "test"})
_POWERTOOLS_PIN = re.compile(
    r"^aws-lambda-powertools(?:\[[^\]]*\])?==(?P<version>[0-9][0-9.]*)\s*$"
)

LAMBDA_RUNTIME = "python3.13"
LAMBDA_ARCHITECTURE = "arm64"

#: The environment fields each function's code reads (see ``gateway.environment``).
CHAT_ENVIRONMENT = (
    "usage_table",
    "prepared_responses_table",
    "tier_config_parameter",
    "tier_config_cache_seconds",
    "events_http_endpoint",
    "events_origin_secret",
    "inbound_namespace",
    "outbound_namespace",
    "analytics_stream",
    "stream_flush_ms",
    "metering_fail_open",
    "max_messages",
    "max_message_chars",
    "message_preview_chars",
)
SUBSCRIBE_ENVIRONMENT = ("outbound_namespace",)


def code_files(functions_dir: Path) -> list[Path]:
    """Every ``.py`` file the functions need, sorted, relative to ``functions_dir``."""
    files = []
    for path in functions_dir.rglob("*.py"):
        relative = path.relative_to(functions_dir)
        if _EXCLUDED_PARTS.intersection(relative.parts) or relative.name.startswith("test_"):
            continue
        files.append(relative)
    return sorted(files, key=lambda p: p.as_posix())


def code_archive(functions_dir: Path) -> pulumi.AssetArchive:
    """The functions' deployment package: ``chat.py``, ``subscribe.py`` and ``gateway/…``."""
    return pulumi.AssetArchive(
        {
            relative.as_posix(): pulumi.FileAsset(str(functions_dir / relative))
            for relative in code_files(functions_dir)
        }
    )


def powertools_version(requirements: Path) -> str:
    """The Powertools version pinned (``==``) in the functions' requirements file."""
    for line in requirements.read_text().splitlines():
        match = _POWERTOOLS_PIN.match(line.strip())
        if match:
            return match["version"]
    raise ValueError(f"{requirements}: no 'aws-lambda-powertools==<version>' pin")


def powertools_layer_parameter(
    version: str, *, runtime: str = LAMBDA_RUNTIME, architecture: str = LAMBDA_ARCHITECTURE
) -> str:
    """The public SSM parameter whose value is the managed layer ARN of ``version``."""
    return f"/aws/service/powertools/python/{architecture}/{runtime}/{version}"


def environment_variables(
    environment: FunctionEnvironment, fields: Sequence[str], service: str
) -> dict:
    """A function's environment: Powertools' service and metrics namespace, and the ``fields``
    of ``environment`` its code reads (as ``gateway.environment`` names them)."""
    return {
        "POWERTOOLS_SERVICE_NAME": service,
        "POWERTOOLS_METRICS_NAMESPACE": METRICS_NAMESPACE,
        **environment.variables(*fields),
    }
