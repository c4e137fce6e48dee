"""``make preflight STACK=<name>``: check the operator's AWS account before ``pulumi up``.

Runs every check in ``preflight_checks`` in parallel with short AWS timeouts, prints one
PASS/WARN/FAIL line per check (each failure with its fix) within 15 seconds, and exits 1 when
anything failed. Uses the operator's usual AWS credentials; reads nothing but the stack file.

    .venv/bin/python tools/preflight.py --stack prod
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

import boto3
import yaml
from botocore.config import Config

from components.function_code import powertools_version
from model_catalog import load_catalog
from settings import PROJECT, Settings, SettingsError, load_settings
from tools.preflight_checks import CHECKS, FAIL, Context, Result, version_tuple
from tools.preflight_checks import run_command as _run_command

ROOT = Path(__file__).resolve().parent.parent

#: Every AWS call gives up quickly and retries once, so the whole run fits in the budget.
AWS_CONFIG = Config(connect_timeout=2, read_timeout=4, retries={"max_attempts": 2})
BUDGET_SECONDS = 13.0


def production_stacks() -> set[str]:
    """Stacks the policy pack treats as production (``policy/config.json``)."""
    config = json.loads((ROOT / "policy" / "config.json").read_text())
    return set(config.get("prod-alarms-notify", {}).get("productionEnvironments", ["prod"]))


def required_pulumi_version() -> tuple[int, int, int]:
    """The lower bound of ``requiredPulumiVersion`` in ``Pulumi.yaml``."""
    declared = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())["requiredPulumiVersion"]
    found = version_tuple(declared)
    if found is None:
        raise ValueError(f"Pulumi.yaml: requiredPulumiVersion {declared!r} names no version")
    return found


def load_stack(stack: str) -> Settings:
    """The stack's validated settings, from ``Pulumi.<stack>.yaml`` over the project defaults."""
    path = ROOT / f"Pulumi.{stack}.yaml"
    if not path.is_file():
        raise SettingsError(f"no stack file {path.name}")
    config = (yaml.safe_load(path.read_text()) or {}).get("config") or {}
    return load_settings(stack, config.get("aws:region"), lambda k: config.get(f"{PROJECT}:{k}"))


def build_context(
    stack: str,
    *,
    client: Callable[[str], Any] | None = None,
    run: Callable[[list[str]], str] = _run_command,
) -> Context:
    settings = load_stack(stack)
    if client is None:
        session = boto3.session.Session(region_name=settings.region)

        def client(service: str) -> Any:
            return session.client(service, config=AWS_CONFIG)

    return Context(
        settings=settings,
        catalog=load_catalog(),
        today=datetime.now(UTC).date(),
        client=client,
        powertools_version=powertools_version(ROOT / "functions" / "requirements.txt"),
        required_pulumi=required_pulumi_version(),
        production=stack in production_stacks(),
        run=run,
    )


def _results_of(check: Callable[[Context], Iterable[Result]], ctx: Context) -> list[Result]:
    return list(check(ctx))


def run_checks(ctx: Context, budget: float = BUDGET_SECONDS) -> list[Result]:
    """Every check's results, in check order; a check still running at ``budget`` fails."""
    pool = ThreadPoolExecutor(max_workers=len(CHECKS))
    futures = [pool.submit(_results_of, check, ctx) for check in CHECKS]
    wait(futures, timeout=budget)
    results: list[Result] = []
    for check, future in zip(CHECKS, futures, strict=True):
        name = check.__name__.replace("_", " ")
        if not future.done():
            results.append(Result(FAIL, name, f"no answer within {budget:.0f} s", "check network"))
        elif future.exception() is not None:
            error = future.exception()
            results.append(
                Result(FAIL, name, f"{type(error).__name__}: {error}", "fix the lines above first")
            )
        else:
            results.extend(future.result())
    pool.shutdown(wait=False, cancel_futures=True)
    return results


def print_table(results: Sequence[Result], out: TextIO) -> None:
    width = max(len(r.check) for r in results)
    for r in results:
        out.write(f"{r.status}  {r.check.ljust(width)}  {r.detail}\n")
        if r.fix and r.status != "PASS":
            out.write(f"{'':6}{'':{width}}  fix: {r.fix}\n")
    failed = sum(r.status == FAIL for r in results)
    out.write(f"\n{failed} failed of {len(results)} checks\n")


def main(argv: list[str] | None = None, out: TextIO = sys.stdout) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stack", default="dev", help="stack name (Pulumi.<stack>.yaml)")
    args = parser.parse_args(argv)
    started = time.monotonic()
    try:
        ctx = build_context(args.stack)
    except SettingsError as err:
        print_table([Result(FAIL, "stack config", str(err), f"edit Pulumi.{args.stack}.yaml")], out)
        return 1
    results = run_checks(ctx)
    print_table(results, out)
    out.write(f"preflight of {args.stack} took {time.monotonic() - started:.1f} s\n")
    return 1 if any(r.status == FAIL for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
