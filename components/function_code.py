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
import zipfile
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
#: What the OpenAI door's turns read: the chat function's, less the Event API's endpoint and
#: namespaces (its answers go back over HTTP, not through a channel).
OPENAI_ENVIRONMENT = tuple(
    f
    for f in CHAT_ENVIRONMENT
    if f not in ("events_http_endpoint", "inbound_namespace", "outbound_namespace")
)

#: The OpenAI door's handler: the script the Lambda Web Adapter's wrapper executes.
DOOR_SCRIPT = "openai_door.sh"
#: A fixed time for every archive entry (zip's earliest), so equal sources zip to equal bytes.
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)


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


def door_archive(functions_dir: Path, build_dir: Path) -> pulumi.FileArchive:
    """The OpenAI door's deployment package: the functions' sources and :data:`DOOR_SCRIPT`,
    executable.

    The adapter's wrapper runs the handler with ``exec -- "${LAMBDA_TASK_ROOT}/${_HANDLER}"``
    (layer/bootstrap of https://github.com/awslabs/aws-lambda-web-adapter), so the script must
    keep its execute bit, and Pulumi drops file modes when it zips an ``AssetArchive`` or a
    directory (pulumi/pulumi#3593). The zip is therefore written here, with explicit modes, a
    fixed entry time and sorted entries, and handed over as an existing ``.zip``, which Pulumi
    uploads as it is; unchanged sources give the same bytes, so nothing redeploys.
    """
    entries = [(p.as_posix(), 0o644) for p in code_files(functions_dir)]
    entries.append((DOOR_SCRIPT, 0o755))
    build_dir.mkdir(parents=True, exist_ok=True)
    target = build_dir / "openai-door.zip"
    staging = target.with_suffix(".zip.tmp")
    with zipfile.ZipFile(staging, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, mode in sorted(entries):
            info = zipfile.ZipInfo(name, date_time=_ZIP_TIME)
            info.external_attr = (0o100000 | mode) << 16  # a regular file with ``mode``
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, (functions_dir / name).read_bytes())
    if target.exists() and target.read_bytes() == staging.read_bytes():
        staging.unlink()
    else:
        staging.replace(target)
    return pulumi.FileArchive(str(target))


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
