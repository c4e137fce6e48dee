"""Per-turn benchmark: each design's function in a worker process of its own on one stage, with
5 ms held on every AWS request and publish (an in-region round trip) and a fake Bedrock that
answers after 300 ms or at once, at full speed or at 50 tokens/s; the gateway again under each
emulated Lambda memory size's CPU share, and at each stream cadence."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import cgroups
from bench.harness import RemoteStage

REPO = Path(__file__).resolve().parent.parent

AWS_LATENCY_MS = 5.0  # held on each AWS request and each publish: an in-region round trip
MODEL_TTFT_MS = 300.0  # a realistic model's time to first token
PACE = 50.0  # tokens per second, the pace the cost budget is set at
TOKENS = 512
MEMORIES = (128, 256, 512, 1024)
CADENCES = (100, 200, 500)
TIME_ADDED_BUDGET_MS = 3.0

FULL, PACED = "full speed", "50 tokens/s"
COLD, TTFT300, TTFT0, PACED_LABEL = "cold", "ttft300", "ttft0", "paced"


def plan(warm: int, paced: int) -> list[dict[str, Any]]:
    """A worker's turns: a cold one, a warm-up, ``warm`` full-speed turns alternating a 300 ms
    and a 0 ms model, then ``paced`` turns at 50 tokens/s after 300 ms."""
    turns = [
        {"label": COLD, "ttft_ms": MODEL_TTFT_MS, "tokens_per_second": 0},
        {"label": "warm-up", "ttft_ms": MODEL_TTFT_MS, "tokens_per_second": 0},
    ]
    for i in range(warm):
        ttft = MODEL_TTFT_MS if i % 2 == 0 else 0.0
        turns.append({"label": TTFT300 if ttft else TTFT0, "ttft_ms": ttft, "tokens_per_second": 0})
    turns += [
        {"label": PACED_LABEL, "ttft_ms": MODEL_TTFT_MS, "tokens_per_second": PACE}
        for _ in range(paced)
    ]
    for turn in turns:
        turn["tokens"] = TOKENS
    return turns


@dataclass
class Run:
    """One worker: one design at one CPU share and cadence, its turns as measured."""

    design: str
    memory_mb: int | None  # the emulated memory size; None: the machine's whole CPU
    flush_ms: int | None
    turns: list[dict[str, Any]] = field(default_factory=list)

    def of(self, label: str) -> list[dict[str, Any]]:
        return [t for t in self.turns if t["label"] == label]

    def median(self, label: str, key: str) -> float:
        values = [t[key] for t in self.of(label)]
        return statistics.median(values) if values else float("nan")

    def middle(self, label: str) -> dict[str, Any]:
        """The turn with the median billed duration: the footprint the cost model prices."""
        turns = sorted(self.of(label), key=lambda t: t["billed_ms"])
        return turns[len(turns) // 2]

    def pace_label(self, pace: str) -> str:
        return PACED_LABEL if pace == PACED else TTFT300


def spawn_worker(
    module: str,
    job: dict[str, Any],
    env: dict[str, str | None],
    share: cgroups.CpuShare | None,
    log: Callable[[str], None],
    path: Sequence[str] = (),
) -> list[dict[str, Any]]:
    """Run ``python -m <module>`` on ``job`` (in ``share``'s cgroup when given), with ``path``
    ahead of the repository on its import path; the turns it printed, one per job turn."""
    from bench.worker import RESULT

    full_env = {k: v for k, v in {**os.environ, **env}.items() if v is not None}
    full_env["PYTHONPATH"] = os.pathsep.join([*path, str(REPO)])
    done = subprocess.run(
        # -P: the working directory does not go ahead of the design's own path.
        [sys.executable, "-P", "-m", module],
        cwd=REPO,
        input=json.dumps(job),
        env=full_env,
        capture_output=True,
        text=True,
        preexec_fn=share.join if share else None,
        timeout=900,
    )
    turns = [
        json.loads(line[len(RESULT) :])
        for line in done.stdout.splitlines()
        if line.startswith(RESULT)
    ]
    if done.returncode != 0 or len(turns) != len(job["turns"]):
        log(done.stderr[-3000:])
        raise RuntimeError(f"the {job['design']} worker failed (exit {done.returncode})")
    return turns


def run_worker(
    job: dict[str, Any],
    env: dict[str, str | None],
    share: cgroups.CpuShare | None,
    log: Callable[[str], None],
) -> list[dict[str, Any]]:
    """Run ``python -m bench.worker`` (in ``share``'s cgroup when given); its turns."""
    from bench.worker import import_path

    turns = spawn_worker("bench.worker", job, env, share, log, import_path(job))
    bad = [
        t for t in turns if t["events_published"] == 0 or t["time_added_ms"] != t["time_added_ms"]
    ]
    if bad:
        raise RuntimeError(f"the {job['design']} worker published no delta in {len(bad)} turns")
    return turns


@dataclass
class TurnBenchmark:
    machine: dict[str, Run]  # design -> run on the machine's whole CPU (without cgroups)
    by_memory: dict[int, Run]  # gateway at each emulated memory size
    reference_at_memory: Run | None  # the reference at its own memory size's CPU share
    by_cadence: dict[int, Run]  # gateway at the chosen memory, per flush interval
    reference_memory_mb: int
    cgroups_note: str  # why emulation was skipped, or ""
    reference_note: str  # why the reference was skipped, or ""
    gateway_flush_ms: int = 200
    chosen_memory_mb: int | None = None
    reference_environment: dict[str, str] = field(default_factory=dict)
    #: The gateway's first turn after an emulated SnapStart restore, at each memory size.
    restored_by_memory: dict[int, Run] = field(default_factory=dict)
    #: The cold path's parts (``bench.cold_path.probe``) at each memory size.
    cold_parts: dict[int, dict[str, float]] = field(default_factory=dict)

    @property
    def gateway(self) -> Run:
        """The gateway's run the budgets are judged on: at the chosen memory's CPU share."""
        if self.chosen_memory_mb is not None:
            return self.by_memory[self.chosen_memory_mb]
        return self.machine["gateway"]

    @property
    def reference(self) -> Run | None:
        return self.reference_at_memory or self.machine.get("reference")


def run(
    *,
    warm: int,
    paced: int,
    reference_warm: int,
    reference_root: Path | None,
    reference_note: str,
    memories: Sequence[int] = MEMORIES,
    cadences: Sequence[int] = CADENCES,
    choose_memory: Callable[[dict[int, Run], dict[int, Run]], int] | None = None,
    default_memory_mb: int = 1024,
    emulate: bool = True,
    log: Callable[[str], None] = print,
) -> TurnBenchmark:
    from bench import reference_stack
    from bench.gateway_scenario import create_gateway

    stage = RemoteStage().start()
    try:
        env = stage.environment()
        os.environ.update({k: v for k, v in env.items() if v is not None})
        stage.client.set_latency(AWS_LATENCY_MS)
        gateway = create_gateway(stage.moto_url, stage.urls["publish_url"])
        gateway_env = {**env, **gateway.pop("env")}
        base = {"urls": stage.urls, "latency_ms": AWS_LATENCY_MS}

        reference_job: dict[str, Any] | None = None
        reference_env: dict[str, str | None] = {}
        reference_variables: dict[str, str] = {}
        reference_memory = 512
        if reference_root is not None:
            stack = reference_stack.read_stack(reference_root)
            reference_memory = stack.memory_mb
            resources = reference_stack.ReferenceResources()
            reference_stack.create_resources(stack, resources)
            host = stage.urls["tls_publish_url"].removeprefix("https://").removesuffix("/event")
            reference_variables = reference_stack.environment(stack, resources, host)
            # The stage's throwaway CA, so its requests calls trust the HTTPS endpoint.
            reference_env = {
                **env,
                **reference_variables,
                "REQUESTS_CA_BUNDLE": stage.urls["ca_file"],
            }
            reference_job = {
                "design": "reference",
                "function_name": "reference-chatbot-handler",
                "sub": reference_stack.USER_SUB,
                "sink": "tls_sink",
                "site": str(reference_stack.SITE),
                "code": str(stack.code),
                "handler": stack.handler,
                "usage_table": resources.usage_table,
                "usage_keys": list(stack.usage_keys),
                "seed": True,
            }

        def worker(
            job: dict, run_env: dict, memory: int | None, turns: list, flush: int | None = None
        ) -> Run:
            share = cgroups.create(memory) if memory else None
            where = f"at {memory} MB's CPU share" if memory else "on the whole machine"
            log(f"  {job['design']} {where}" + (f", {flush} ms cadence" if flush else ""))
            try:
                run_env = {**run_env, **({"STREAM_FLUSH_MS": str(flush)} if flush else {})}
                measured = run_worker(
                    {**base, **job, "memory_mb": memory or default_memory_mb, "turns": turns},
                    run_env,
                    share,
                    log,
                )
            finally:
                if share:
                    share.remove()
            return Run(job["design"], memory, flush, measured)

        found = cgroups.available() if emulate else "turned off with --no-cpu-shares"
        note = found if isinstance(found, str) else ""
        machine: dict[str, Run] = {}
        by_memory: dict[int, Run] = {}
        restored: dict[int, Run] = {}
        parts: dict[int, dict[str, float]] = {}
        reference_at_memory = None
        chosen = None
        if note:  # no CPU shares to emulate: both designs on the machine's whole CPU
            machine["gateway"] = worker(gateway, gateway_env, None, plan(warm, paced))
            if reference_job:
                machine["reference"] = worker(reference_job, reference_env, None, plan(warm, paced))
        else:
            if reference_job:
                reference_at_memory = worker(
                    reference_job, reference_env, reference_memory, plan(reference_warm, paced)
                )
            for memory in memories:
                by_memory[memory] = worker(gateway, gateway_env, memory, plan(warm, 1))
            restored, parts = cold_starts(stage, gateway, memories, worker, gateway_env, log)
            chosen = choose_memory(by_memory, restored) if choose_memory else default_memory_mb
        by_cadence = {
            flush: worker(gateway, gateway_env, chosen, plan(0, paced), flush) for flush in cadences
        }
    finally:
        stage.stop()
    return TurnBenchmark(
        machine=machine,
        by_memory=by_memory,
        reference_at_memory=reference_at_memory,
        by_cadence=by_cadence,
        reference_memory_mb=reference_memory,
        cgroups_note=note,
        reference_note=reference_note,
        gateway_flush_ms=int(gateway["stream_flush_ms"]),
        chosen_memory_mb=chosen,
        reference_environment=reference_variables,
        restored_by_memory=restored,
        cold_parts=parts,
    )


def cold_starts(
    stage: RemoteStage,
    gateway: dict[str, Any],
    memories: Sequence[int],
    worker: Callable[..., Run],
    env: dict[str, str | None],
    log: Callable[[str], None],
) -> tuple[dict[int, Run], dict[int, dict[str, float]]]:
    """At each size: the first turn after an emulated SnapStart restore (a worker of its own)
    and the cold path's parts (``bench.cold_path``)."""
    from bench import cold_path

    restored: dict[int, Run] = {}
    parts: dict[int, dict[str, float]] = {}
    probe_job = {
        "sub": gateway["sub"],
        "tls_url": stage.urls["tls_publish_url"],
        "ca_file": stage.urls["ca_file"],
    }
    for memory in memories:
        restored[memory] = worker({**gateway, "snapstart": True}, env, memory, plan(0, 0)[:1])
        log(f"  the cold path's parts at {memory} MB's CPU share")
        parts[memory] = cold_path.probe(probe_job, env, memory)
    return restored, parts
