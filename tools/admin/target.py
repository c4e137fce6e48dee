"""Which gateway the CLI administers: the stack outputs it reads and the AWS clients it makes.

A deployed stack's outputs come from ``pulumi stack output --json --stack STACK`` (or a file
holding that JSON); ``make dev`` writes the same names to ``.local/outputs.json``, plus the moto
endpoint every client is pointed at and the file the audit lines go to.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3

REPO_ROOT = Path(__file__).resolve().parents[2]
LOCAL_OUTPUTS = REPO_ROOT / ".local" / "outputs.json"

#: Outputs every command needs.
_REQUIRED = (
    "region",
    "userPoolId",
    "userPoolClientId",
    "usageTableName",
    "tierConfigParameterName",
)


class TargetError(Exception):
    """The outputs could not be read or lack what the CLI needs."""


@dataclass(frozen=True)
class Target:
    """A gateway's outputs, and the AWS clients that reach it."""

    outputs: Mapping[str, Any]

    @property
    def local(self) -> bool:
        return bool(self.outputs.get("awsEndpointUrl"))

    @property
    def region(self) -> str:
        return str(self.outputs["region"])

    @property
    def user_pool_id(self) -> str:
        return str(self.outputs["userPoolId"])

    @property
    def user_pool_client_id(self) -> str:
        return str(self.outputs["userPoolClientId"])

    @property
    def usage_table(self) -> str:
        return str(self.outputs["usageTableName"])

    @property
    def tier_config_parameter(self) -> str:
        return str(self.outputs["tierConfigParameterName"])

    def output(self, name: str) -> str | None:
        value = self.outputs.get(name)
        return str(value) if value else None

    def client(self, service: str) -> Any:
        if self.local:
            # moto accepts any key; fixed test keys keep a developer's real ones out of it.
            return boto3.client(
                service,
                region_name=self.region,
                endpoint_url=self.outputs["awsEndpointUrl"],
                aws_access_key_id="testing",
                aws_secret_access_key="testing",
            )
        return boto3.client(service, region_name=self.region)


def load_target(*, local: bool, outputs_file: Path | None, stack: str | None) -> Target:
    """The target the options name: ``--local``, ``--outputs FILE`` or ``--stack STACK``."""
    if local or (outputs_file is None and stack is None):
        path = outputs_file or LOCAL_OUTPUTS
        if not path.exists():
            raise TargetError(f"{path} does not exist: start the local gateway with `make dev`")
        return _checked(_read_json(path.read_text(), str(path)))
    if outputs_file is not None:
        return _checked(_read_json(outputs_file.read_text(), str(outputs_file)))
    assert stack is not None
    try:
        done = subprocess.run(
            ["pulumi", "stack", "output", "--json", "--stack", stack],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
    except FileNotFoundError as err:
        raise TargetError("the pulumi CLI is not installed; pass --outputs FILE instead") from err
    if done.returncode != 0:
        raise TargetError(f"pulumi stack output failed: {done.stderr.strip()[:400]}")
    return _checked(_read_json(done.stdout, f"stack {stack}"))


def _read_json(text: str, where: str) -> dict[str, Any]:
    try:
        document = json.loads(text)
    except ValueError as err:
        raise TargetError(f"{where} is not JSON: {err}") from err
    if not isinstance(document, dict):
        raise TargetError(f"{where} is not a JSON object of stack outputs")
    return document


def _checked(outputs: dict[str, Any]) -> Target:
    missing = [name for name in _REQUIRED if not outputs.get(name)]
    if missing:
        raise TargetError(f"the stack outputs lack {', '.join(missing)}")
    return Target(outputs)
