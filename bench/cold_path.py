"""The chat function's cold path as a user meets it, under each memory size's emulated CPU share:
what a fresh function does before its first answer, part by part, and the same first turn after
an emulated Lambda SnapStart restore.

Two kinds of measurement, both in processes placed in the size's CPU-share cgroup:

- ``python -m bench.cold_path`` (:func:`probe`): one fresh process times each piece of a first
  turn's one-time work in the order a turn meets it — the handler import, botocore's import, the
  core and every client built (botocore loads each service's JSON model for its first client),
  the tier document read (Powertools' parameters and the SSM client on the way), the user's usage
  read, the prepared-key scan — and one TLS handshake against the stage's HTTPS endpoint (the
  bench's AWS endpoints are plain HTTP, so its turns open no TLS; a deployed function opens one
  per service).
- :func:`emulate_snapstart`, in the benchmark's worker before its first turn: the chat module's
  SnapStart hooks run as Lambda would run them — the before-snapshot hook, then the after-restore
  hook — and the restore hook's time and AWS requests are recorded with the first turn. What
  Lambda itself does to restore a snapshot cannot be run here; :data:`AWS_RESTORE` says what AWS
  publishes about it.
"""

from __future__ import annotations

import json
import math
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import cgroups

REPO = Path(__file__).resolve().parent.parent
RESULT = "cold-path "

#: What AWS publishes about a restore's duration: a qualitative figure, no number.
AWS_RESTORE = (
    'AWS: "as low as sub-second startup performance" '
    "(https://docs.aws.amazon.com/lambda/latest/dg/snapstart.html); not measured here"
)
#: Connections a deployed function opens before its first delta (TLS each): the tier parameter
#: (SSM), DynamoDB, Bedrock and the Event API. Firehose's comes after the answer.
CONNECTIONS_BEFORE_FIRST_DELTA = 4

PARTS = (
    ("import_ms", "handler import"),
    ("botocore_import_ms", "boto3 and botocore import"),
    ("clients_ms", "core, door and clients built (service models)"),
    ("tier_config_ms", "tier document read (Powertools parameters, SSM client, request)"),
    ("usage_read_ms", "usage read (first DynamoDB request)"),
    ("prepared_scan_ms", "prepared-key scan"),
    ("tls_handshake_ms", "one TLS handshake"),
)


# -- in the worker: the SnapStart hooks around the first turn --------------------------------
def emulate_snapstart(stage: Any, latency_s: float) -> dict[str, Any]:
    """Run the chat module's SnapStart hooks as Lambda would (the module is imported): the
    before-snapshot hook (init, at publish time), then the after-restore hook (on a user's cold
    start). Returns the restore hook's time (less moto's excess over the held latency, as the
    turns do) and its AWS requests."""
    from gateway import snapstart

    from bench.worker import on_path

    started = time.perf_counter()
    snapstart.run_before_snapshot()
    init_ms = (time.perf_counter() - started) * 1000
    before = stage.aws_usage()
    started = time.perf_counter()
    snapstart.run_after_restore()
    ended = time.perf_counter()
    aws = stage.aws_usage().minus(before)
    excess = [(a, a + max(0.0, b - a - latency_s)) for _, a, b in aws.calls]
    moto = on_path(excess, started, ended, (started, started))
    return {
        "snapshot_init_ms": init_ms,
        "restore_hook_ms": (ended - started - moto) * 1000,
        "restore_requests": dict(aws.requests),
    }


# -- the probe: ``python -m bench.cold_path`` -------------------------------------------------
def _timed(step: Callable[[], Any]) -> float:
    started = time.perf_counter()
    step()
    return (time.perf_counter() - started) * 1000


def _probe(job: dict[str, Any]) -> dict[str, float]:
    import importlib

    out: dict[str, float] = {}
    modules: dict[str, Any] = {}
    out["import_ms"] = _timed(lambda: modules.setdefault("chat", importlib.import_module("chat")))
    out["botocore_import_ms"] = _timed(lambda: importlib.import_module("boto3"))
    runtime = modules["chat"]._runtime()

    def build() -> None:
        runtime.events_door()
        for client in runtime._clients:
            client()

    out["clients_ms"] = _timed(build)
    core = runtime.core()
    out["tier_config_ms"] = _timed(core.deps.tiers.current)
    from gateway.schema import usage_key

    out["usage_read_ms"] = _timed(lambda: core.deps.store.read(usage_key(job["sub"]), ()))
    index = core.admission.prepared_index
    out["prepared_scan_ms"] = _timed(index.refresh) if index is not None else math.nan
    out["tls_handshake_ms"] = _tls_handshake(job["tls_url"], job["ca_file"])
    return out


def _tls_handshake(url: str, ca_file: str) -> float:
    """One TLS handshake to ``url``: a fresh connection's first request less a kept one's."""
    import ssl

    import urllib3

    context = ssl.create_default_context(cafile=ca_file)
    pool = urllib3.connection_from_url(url, ssl_context=context, retries=False)
    fresh = _timed(lambda: pool.urlopen("GET", "/_sink/state?since=0"))
    kept = _timed(lambda: pool.urlopen("GET", "/_sink/state?since=0"))
    pool.close()
    return max(0.0, fresh - kept)


def probe(
    job: dict[str, Any], env: dict[str, str | None], memory_mb: int, runs: int = 1
) -> dict[str, float]:
    """The cold path's parts at ``memory_mb``'s CPU share: the median of ``runs`` fresh
    processes."""
    share = cgroups.create(memory_mb)
    full_env = {k: v for k, v in {**os.environ, **env}.items() if v is not None}
    full_env["PYTHONPATH"] = str(REPO)
    measured: list[dict[str, float]] = []
    try:
        for _ in range(runs):
            done = subprocess.run(
                [sys.executable, "-P", "-m", "bench.cold_path"],
                cwd=REPO,
                input=json.dumps(job),
                env=full_env,
                capture_output=True,
                text=True,
                preexec_fn=share.join,
                timeout=300,
                check=False,
            )
            lines = [x for x in done.stdout.splitlines() if x.startswith(RESULT)]
            if done.returncode != 0 or not lines:
                raise RuntimeError(f"the cold-path probe failed: {done.stderr[-2000:]}")
            measured.append(json.loads(lines[-1][len(RESULT) :]))
    finally:
        share.remove()
    return {key: statistics.median(m[key] for m in measured) for key in measured[0]}


def main() -> None:
    job = json.loads(sys.stdin.read())
    print(RESULT + json.dumps(_probe(job)), flush=True)


# -- figures -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class ColdStart:
    """A fresh function's cold first token at one size, both ways."""

    memory_mb: int
    import_ms: float  # cold import, fresh processes (median)
    cold_turn_ms: float  # a fresh function's first turn: time added to the first token
    restore_hook_ms: float  # SnapStart: the after-restore hook (NaN: not emulated)
    restored_turn_ms: float  # SnapStart: the first turn after the restore, time added
    restored_first_delta_ms: float  # SnapStart: invocation start to the first delta
    tls_ms: float  # one TLS handshake, measured apart (NaN: not measured)

    @property
    def without_snapstart_ms(self) -> float:
        """Import plus the first turn's added time (TLS not included: see ``tls_ms``)."""
        return self.import_ms + self.cold_turn_ms

    @property
    def with_snapstart_ms(self) -> float:
        """The measured parts after Lambda's own restore: the hook plus the first turn."""
        return self.restore_hook_ms + self.restored_turn_ms

    @property
    def tls_before_first_delta_ms(self) -> float:
        return self.tls_ms * CONNECTIONS_BEFORE_FIRST_DELTA


def cold_first_token_ms(import_ms: float, cold_turn_ms: float, restored_ms: float) -> float:
    """The time a cold start adds to the first token by the measured path the stack deploys:
    after a SnapStart restore where that was measured, else import plus the first turn."""
    if not math.isnan(restored_ms):
        return restored_ms
    return (0.0 if math.isnan(import_ms) else import_ms) + cold_turn_ms


if __name__ == "__main__":
    main()


# -- BENCHMARKS.md ----------------------------------------------------------------------------
def _n(value: float, digits: int = 0) -> str:
    return "n/a" if value != value else f"{value:,.{digits}f}"


def cold_starts(results: Any) -> list[ColdStart]:
    """One :class:`ColdStart` per measured memory size of ``results`` (a ``report.Results``)."""
    from bench.turns import COLD

    b = results.bench
    out = []
    for memory, run in sorted(b.by_memory.items()):
        imports = results.memory_imports.get(memory)
        restored = b.restored_by_memory.get(memory)
        first = restored.of(COLD)[0] if restored else {}
        out.append(
            ColdStart(
                memory_mb=memory,
                import_ms=imports.median_import_ms if imports else math.nan,
                cold_turn_ms=run.of(COLD)[0]["time_added_ms"],
                restore_hook_ms=float(first.get("restore_hook_ms", math.nan)),
                restored_turn_ms=float(first.get("time_added_ms", math.nan)),
                restored_first_delta_ms=float(first.get("first_delta_ms", math.nan)),
                tls_ms=b.cold_parts.get(memory, {}).get("tls_handshake_ms", math.nan),
            )
        )
    return out


def _restore_requests(results: Any) -> tuple[dict[str, int], int]:
    """The restore hook's requests, and the first turn after it less the most of a warm turn."""
    from bench.turns import COLD, TTFT0, TTFT300

    b = results.bench
    memory = b.chosen_memory_mb
    restored = b.restored_by_memory.get(memory) if memory is not None else None
    if restored is None:
        return {}, 0
    first = restored.of(COLD)[0]
    warm = b.gateway.of(TTFT300) + b.gateway.of(TTFT0)
    extra = sum(first["aws_requests"].values()) - max(sum(t["aws_requests"].values()) for t in warm)
    return dict(first.get("restore_requests", {})), extra


def verdicts(results: Any) -> list[tuple[str, bool | None, str]]:
    """The cold-start budgets at the chosen memory size."""
    from bench import figures

    b = results.bench
    starts = {c.memory_mb: c for c in cold_starts(results)}
    chosen = starts.get(b.chosen_memory_mb) if b.chosen_memory_mb is not None else None
    if chosen is None or math.isnan(chosen.restore_hook_ms):
        return [("Cold first token ≤ 1 s at the default memory", None, "not measured")]
    restore, extra = _restore_requests(results)
    budget = figures.COLD_FIRST_TOKEN_BUDGET_MS
    return [
        (
            f"Cold first token ≤ {budget / 1000:g} s at the default memory (SnapStart: restore "
            "hook plus first turn; Lambda's own restore per AWS)",
            chosen.with_snapstart_ms <= budget,
            f"{_n(chosen.with_snapstart_ms)} ms at {chosen.memory_mb} MB (hook "
            f"{_n(chosen.restore_hook_ms)} ms + first turn {_n(chosen.restored_turn_ms)} ms), "
            f"plus Lambda's restore ({AWS_RESTORE}); without SnapStart "
            f"{_n(chosen.without_snapstart_ms)} ms (import {_n(chosen.import_ms)} ms + first turn "
            f"{_n(chosen.cold_turn_ms)} ms)",
        ),
        (
            "The first turn after a restore makes ≤ 1 AWS request more than a warm turn",
            extra <= 1,
            f"{extra:+d}; the restore hook itself makes "
            + (", ".join(f"{n} {op}" for op, n in sorted(restore.items())) or "none")
            + " (the tier document and the prepared keys, read again side by side)",
        ),
    ]


def _biggest_parts(results: Any) -> list[str]:
    """A sentence naming the cold path's biggest parts at the chosen size, and where they go."""
    b = results.bench
    parts = b.cold_parts.get(b.chosen_memory_mb) if b.chosen_memory_mb is not None else None
    if not parts:
        return []
    names = dict(PARTS)
    ranked = sorted(
        ((value, key) for key, value in parts.items() if key in names and value == value),
        reverse=True,
    )
    total = sum(value for value, _ in ranked)
    top = "; ".join(
        f"{names[key]} {_n(value)} ms ({value / total:.0%})" for value, key in ranked[:3]
    )
    return [
        f"At {b.chosen_memory_mb} MB the biggest parts of a cold start without SnapStart are: "
        f"{top}. Where the time goes: the handler import is mostly pydantic (the wire models of "
        "`gateway.wire`) and Powertools (`python -X importtime -c 'import chat'` from "
        "`functions/`); botocore's share is its loaders reading and parsing each service's JSON "
        "model and endpoint rules, on the first client of each service and the first request of "
        "each operation; the tier document adds Powertools' parameters utility and an SSM "
        "client of its own. All of it is CPU, so it scales with the size's share. SnapStart "
        "moves every one of these parts before the snapshot; what is left is the restore hook's "
        "two reads and the first turn's usage read and first requests."
    ]


def section(results: Any) -> list[str]:
    """BENCHMARKS.md's cold-start section."""
    from bench import figures

    b = results.bench
    if not b.cold_parts and not b.restored_by_memory:
        return []
    rows = figures.memory_rows(b.by_memory, results.prices, results.memory_imports)
    bills = {r.memory_mb: r.cost for r in rows}
    out = [
        "## Cold start: the first message after a quiet spell",
        "",
        "| memory (MB) | CPU share (vCPU) | "
        + " | ".join(f"{name} (ms)" for _, name in PARTS)
        + " | **without SnapStart**: import + first turn (ms) | SnapStart: Lambda's restore | "
        "SnapStart: restore hook (ms) | SnapStart: first turn, time added (ms) | **SnapStart: "
        "cold first token, measured parts (ms)** | SnapStart: first delta after the invocation "
        "starts, 300 ms model (ms) | TLS before the first delta, "
        f"{CONNECTIONS_BEFORE_FIRST_DELTA} handshakes (ms) | whole bill per million turns |",
        "|---:|---:|" + "---:|" * len(PARTS) + "---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for start in cold_starts(results):
        parts = b.cold_parts.get(start.memory_mb, {})
        mark = " ✔" if start.memory_mb == b.chosen_memory_mb else ""
        out.append(
            f"| {start.memory_mb}{mark} | {cgroups.quota_us(start.memory_mb) / 1e5:.3f} | "
            + " | ".join(_n(parts.get(key, math.nan)) for key, _ in PARTS)
            + f" | **{_n(start.without_snapstart_ms)}** | AWS: sub-second (not measured) | "
            f"{_n(start.restore_hook_ms)} | {_n(start.restored_turn_ms)} | "
            f"**{_n(start.with_snapstart_ms)}** | {_n(start.restored_first_delta_ms)} | "
            f"{_n(start.tls_before_first_delta_ms)} | "
            f"${_n(bills.get(start.memory_mb, math.nan), 2)} |"
        )
    restore, extra = _restore_requests(results)
    out += ["", *_biggest_parts(results)]
    out += [
        "",
        "Each size's parts are timed in one fresh process in that size's CPU-share cgroup "
        "(`bench/cold_path.py`), in the order a first turn meets them: the handler import; "
        "boto3 and botocore's import; the core, the chat door and every client built (botocore "
        "reads each service's JSON model for its first client: most of this column); the tier "
        "document (Powertools' parameters utility, its own SSM client, one GetParameter); the "
        "user's usage read (the first DynamoDB request: endpoint rules, signing, the response "
        "parsed); the prepared-key scan; and one TLS handshake against the stage's HTTPS "
        "endpoint. The bench's AWS endpoints are plain HTTP, so its turns open no TLS; a "
        f"deployed function opens one connection per service, {CONNECTIONS_BEFORE_FIRST_DELTA} "
        "of them before its first delta (SSM in the restore hook, DynamoDB, Bedrock, the Event "
        "API), shown apart and not added in.",
        "",
        "*Without SnapStart* is the cold import (the memory table's) plus the time a fresh "
        "function's first turn adds to the first token. *SnapStart* runs the chat module's "
        "hooks as Lambda runs them (`gateway.snapstart`): the before-snapshot hook (imports, "
        "clients, tier document, prepared keys: what the first turn used to do) in the worker "
        "before its first turn, then the after-restore hook (connections closed, the tier "
        "document and prepared keys read again side by side, `random` reseeded), then the first "
        f"turn. Lambda's own restore is not run here: {AWS_RESTORE}; AWS publishes no number. "
        "Lambda reports it as `Restore Duration` in each cold invocation's `REPORT` line, and "
        "a cold start's duration is Restore Duration plus Duration "
        "(https://docs.aws.amazon.com/lambda/latest/dg/snapstart-monitoring.html).",
        "",
        "At the chosen size the restore hook makes "
        + (", ".join(f"{n} {op}" for op, n in sorted(restore.items())) or "no request")
        + f" and the first turn after it {extra:+d} request against a warm turn (its user's "
        "usage read, which no snapshot can hold).",
        "",
    ]
    return out
