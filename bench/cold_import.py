"""Cold import of the chat handler module against the reference handler module, each in fresh
Python processes, alternated run by run so drift on a shared machine hits both alike."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

_PROBE = (
    "import importlib, json, time; t = time.perf_counter(); importlib.import_module({module!r}); "
    "print(json.dumps({{'ms': (time.perf_counter() - t) * 1000}}))"
)


@dataclass(frozen=True)
class ImportTarget:
    name: str
    module: str
    cwd: Path
    env: dict[str, str]


@dataclass(frozen=True)
class ImportFigures:
    name: str
    import_ms: list[float]  # module import, measured inside each fresh process
    process_ms: list[float]  # the whole process, interpreter start-up included

    @property
    def median_import_ms(self) -> float:
        return statistics.median(self.import_ms)

    @property
    def median_process_ms(self) -> float:
        return statistics.median(self.process_ms)


def lambda_like_environment() -> dict[str, str]:
    """What both modules see at import in Lambda: region, Powertools settings, tracing active
    (the chat function is deployed with X-Ray active tracing), no endpoint overrides."""
    keep = {"PATH", "HOME", "LANG", "LC_ALL", "VIRTUAL_ENV", "SYSTEMROOT", "TMPDIR"}
    env = {k: v for k, v in os.environ.items() if k in keep}
    env.update(
        AWS_DEFAULT_REGION="us-east-1",
        AWS_REGION="us-east-1",
        AWS_ACCESS_KEY_ID="AKIACOLDIMPORT000001",
        AWS_SECRET_ACCESS_KEY="cold-import",
        POWERTOOLS_SERVICE_NAME="chat",
        POWERTOOLS_METRICS_NAMESPACE="AiGateway",
        EVENTS_HTTP_ENDPOINT="https://example.appsync-api.us-east-1.amazonaws.com/event",
        PYTHONDONTWRITEBYTECODE="1",
    )
    return env


def targets() -> list[ImportTarget]:
    env = lambda_like_environment()
    return [
        ImportTarget("gateway chat handler", "chat", REPO / "functions", env),
        ImportTarget("reference handler", "bench.reference_handler", REPO, env),
        ImportTarget(
            "reference handler, no Tracer",
            "bench.reference_handler",
            REPO,
            {**env, "REF_WITHOUT_TRACER": "1"},
        ),
    ]


def _one(target: ImportTarget) -> tuple[float, float]:
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", _PROBE.format(module=target.module)],
        cwd=target.cwd,
        env={**target.env, "PYTHONPATH": str(target.cwd)},
        capture_output=True,
        text=True,
        check=True,
    )
    process_ms = (time.perf_counter() - started) * 1000
    return json.loads(done.stdout.strip().splitlines()[-1])["ms"], process_ms


def measure(runs: int = 11, warmup: int = 1) -> list[ImportFigures]:
    chosen = targets()
    # Byte-compile once (PYTHONDONTWRITEBYTECODE keeps the runs from writing new caches).
    for target in chosen:
        subprocess.run(
            [sys.executable, "-c", f"import {target.module}"],
            cwd=target.cwd,
            env={k: v for k, v in target.env.items() if k != "PYTHONDONTWRITEBYTECODE"}
            | {"PYTHONPATH": str(target.cwd)},
            capture_output=True,
            check=True,
        )
    results = {t.name: ([], []) for t in chosen}
    for run in range(warmup + runs):
        order = chosen if run % 2 == 0 else list(reversed(chosen))
        for target in order:
            import_ms, process_ms = _one(target)
            if run >= warmup:
                results[target.name][0].append(import_ms)
                results[target.name][1].append(process_ms)
    return [ImportFigures(name, *values) for name, values in results.items()]
