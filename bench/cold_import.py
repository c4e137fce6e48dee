"""Cold import of the chat handler module against the reference's real handler module, each in
fresh Python processes, alternated run by run so drift on a shared machine hits both alike; and
the gateway's alone under each emulated memory size's CPU share.

What is measured is the module import, as Lambda's init phase runs it: the import of
``functions/chat.py`` and of the reference's ``eventhandlers.chatbot_handler`` (which builds its
boto3 clients at import). Neither loads the X-Ray SDK at import — the reference has no Tracer, the
gateway builds its Tracer on its first traced invocation — so this is like for like.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench import cgroups

REPO = Path(__file__).resolve().parent.parent

_PROBE = (
    "import importlib, json, time; t = time.perf_counter(); importlib.import_module({module!r}); "
    "print(json.dumps({{'ms': (time.perf_counter() - t) * 1000}}))"
)


@dataclass(frozen=True)
class ImportTarget:
    name: str
    module: str
    path: tuple[str, ...]  # PYTHONPATH entries
    env: dict[str, str]


@dataclass
class ImportFigures:
    name: str
    memory_mb: int | None = None  # the emulated CPU share; None: the machine's whole CPU
    import_ms: list[float] = field(default_factory=list)  # measured inside each fresh process
    process_ms: list[float] = field(default_factory=list)  # the whole process, start-up included

    @property
    def median_import_ms(self) -> float:
        return statistics.median(self.import_ms)

    @property
    def median_process_ms(self) -> float:
        return statistics.median(self.process_ms)


def lambda_like_environment(extra: dict[str, str] | None = None) -> dict[str, str]:
    """What a module sees at import in Lambda: region, credentials, no endpoint overrides."""
    keep = {"PATH", "HOME", "LANG", "LC_ALL", "VIRTUAL_ENV", "SYSTEMROOT", "TMPDIR"}
    env = {k: v for k, v in os.environ.items() if k in keep}
    env.update(
        AWS_DEFAULT_REGION="us-east-1",
        AWS_REGION="us-east-1",
        AWS_ACCESS_KEY_ID="AKIACOLDIMPORT000001",
        AWS_SECRET_ACCESS_KEY="cold-import",
        PYTHONDONTWRITEBYTECODE="1",
        **(extra or {}),
    )
    return env


def gateway_target() -> ImportTarget:
    env = lambda_like_environment(
        {
            "POWERTOOLS_SERVICE_NAME": "chat",
            "EVENTS_HTTP_ENDPOINT": "https://example.appsync-api.us-east-1.amazonaws.com/event",
        }
    )
    return ImportTarget("gateway chat handler", "chat", (str(REPO / "functions"),), env)


def reference_target(code: Path, site: Path, env: dict[str, str]) -> ImportTarget:
    return ImportTarget(
        "reference handler",
        "eventhandlers.chatbot_handler",
        (str(site), str(code)),
        lambda_like_environment(env),
    )


def _one(target: ImportTarget, share: cgroups.CpuShare | None) -> tuple[float, float]:
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", _PROBE.format(module=target.module)],
        cwd=REPO,
        env={**target.env, "PYTHONPATH": os.pathsep.join(target.path)},
        capture_output=True,
        text=True,
        check=True,
        preexec_fn=share.join if share else None,
    )
    process_ms = (time.perf_counter() - started) * 1000
    return json.loads(done.stdout.strip().splitlines()[-1])["ms"], process_ms


def measure(
    chosen: list[ImportTarget], runs: int, share: cgroups.CpuShare | None = None, warmup: int = 1
) -> list[ImportFigures]:
    # Byte-compile once (PYTHONDONTWRITEBYTECODE keeps the runs from writing new caches).
    for target in chosen:
        subprocess.run(
            [sys.executable, "-c", f"import {target.module}"],
            cwd=REPO,
            env={k: v for k, v in target.env.items() if k != "PYTHONDONTWRITEBYTECODE"}
            | {"PYTHONPATH": os.pathsep.join(target.path)},
            capture_output=True,
            check=True,
        )
    memory = share.memory_mb if share else None
    results = {t.name: ImportFigures(t.name, memory) for t in chosen}
    for run in range(warmup + runs):
        order = chosen if run % 2 == 0 else list(reversed(chosen))
        for target in order:
            import_ms, process_ms = _one(target, share)
            if run >= warmup:
                results[target.name].import_ms.append(import_ms)
                results[target.name].process_ms.append(process_ms)
    return list(results.values())


def measure_at_memory(target: ImportTarget, memory_mb: int, runs: int) -> ImportFigures:
    share = cgroups.create(memory_mb)
    try:
        return measure([target], runs, share, warmup=0)[0]
    finally:
        share.remove()
