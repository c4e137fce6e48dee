"""Renders the benchmark figures as BENCHMARKS.md (also printed by ``make bench``), with each
budget judged met or not met."""

from __future__ import annotations

import os
import platform
import subprocess
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import figures
from bench.cold_import import ImportFigures
from bench.load import FUNCTION_SLOTS, LoadReport
from bench.turns import (
    AWS_LATENCY_MS,
    COLD,
    FULL,
    MODEL_TTFT_MS,
    PACED,
    TIME_ADDED_BUDGET_MS,
    TTFT0,
    TTFT300,
    Run,
    TurnBenchmark,
)

REPO = Path(__file__).resolve().parent.parent


@dataclass
class Results:
    command: str
    bench: TurnBenchmark
    imports: list[ImportFigures]
    memory_imports: dict[int, ImportFigures]
    load: LoadReport | None
    prices: dict[str, Any]
    default_memory_mb: int
    seconds: float
    finished_at: str = ""  # "YYYY-MM-DD HH:MM" UTC, when the measurements ended
    commit: str = ""  # the commit measured
    door: Any = None  # bench.openai_door.DoorBenchmark: the OpenAI-compatible door, when measured

    @property
    def gateway_memory(self) -> int:
        return self.bench.chosen_memory_mb or self.default_memory_mb


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{cpu}, {os.cpu_count()} vCPUs, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()} (the functions run on Python 3.13 arm64 in AWS)"
    )


def commit() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True
        ).stdout.strip()
    except OSError:
        return "unknown"


def _n(value: float, digits: int = 0) -> str:
    if value != value:  # NaN
        return "n/a"
    return f"{value:,.{digits}f}"


def _ratio(reference: float, gateway: float) -> str:
    if not gateway or reference != reference:
        return "–"
    return f"{reference / gateway:,.1f}x"


def _where(run: Run) -> str:
    if run.memory_mb is None:
        return "the machine's whole CPU"
    return f"{run.memory_mb} MB's CPU share"


# -- budgets ----------------------------------------------------------------------------------
def verdicts(results: Results) -> list[tuple[str, bool | None, str]]:
    b, prices = results.bench, results.prices
    gateway, reference = b.gateway, b.reference
    out: list[tuple[str, bool | None, str]] = []

    added = gateway.median(TTFT300, "time_added_ms")
    detail = (
        f"{_n(added, 1)} ms median over {len(gateway.of(TTFT300))} warm turns at "
        f"{_where(gateway)} ({_n(gateway.median(TTFT0, 'time_added_ms'), 1)} ms with a 0 ms model)"
    )
    if reference is not None:
        detail += (
            f"; the reference, same run at {_where(reference)}: "
            f"{_n(reference.median(TTFT300, 'time_added_ms'), 1)} ms"
        )
    out.append(
        (
            f"Time added to the model's first token ({MODEL_TTFT_MS:g} ms model, "
            f"{AWS_LATENCY_MS:g} ms per AWS request) ≤ {TIME_ADDED_BUDGET_MS:g} ms median",
            added <= TIME_ADDED_BUDGET_MS,
            detail,
        )
    )

    flush = b.gateway_flush_ms
    default_run = b.by_cadence.get(flush) or gateway
    total = figures.bill(default_run, PACED, prices, results.gateway_memory).total
    detail = f"${_n(total, 2)} at {results.gateway_memory} MB and {flush} ms cadence"
    if reference is not None:
        ref_total = figures.bill(reference, PACED, prices, b.reference_memory_mb).total
        detail += f"; the reference's whole bill ${_n(ref_total, 2)} ({_ratio(ref_total, total)})"
    supported = figures.supported_cadence(figures.cadence_rows(b, prices, results.gateway_memory))
    if supported is not None and supported != flush:
        run = b.by_cadence[supported]
        other = figures.bill(run, PACED, prices, results.gateway_memory).total
        detail += f"; ${_n(other, 2)} at a {supported} ms cadence"
    out.append(
        (
            f"Whole AWS bill per million 512-token turns at 50 tokens/s, at the defaults "
            f"≤ ${figures.COST_BUDGET_USD:g}",
            total <= figures.COST_BUDGET_USD,
            detail,
        )
    )

    paced_run = b.by_cadence.get(flush) or gateway
    events_paced = paced_run.median(paced_run.pace_label(PACED), "events_published")
    events_full = gateway.median(TTFT300, "events_published")
    detail = f"{_n(events_paced)} and {_n(events_full)} events"
    if reference is not None:
        ref_events = reference.median(TTFT300, "events_published")
        detail += (
            f" ({_ratio(ref_events, events_paced)} and {_ratio(ref_events, events_full)} fewer "
            f"than the reference's {_n(ref_events)})"
        )
    out.append(
        (
            "Events per turn ≤ 60 at 50 tokens/s, ≤ 8 at full speed",
            events_paced <= 60 and events_full <= 8,
            detail,
        )
    )

    warm = gateway.of(TTFT300) + gateway.of(TTFT0)
    cold = gateway.of(COLD)[0]
    opened = max(t["connections_opened"] for t in warm)
    used = max(t["connections_used"] for t in warm)
    detail = (
        f"the cold turn opened {cold['connections_opened']}; warm turns opened at most "
        f"{opened} and published on {used}"
    )
    if reference is not None:
        detail += f" (reference: {_n(reference.median(TTFT300, 'connections_opened'))} per turn)"
    out.append(
        (
            "One HTTP connection, reused across the turn and warm invocations",
            cold["connections_opened"] <= 1 and opened == 0 and used <= 1,
            detail,
        )
    )

    requests = [sum(t["aws_requests"].values()) for t in warm]
    metric_calls = sum(
        n for t in warm for op, n in t["aws_requests"].items() if op.endswith("PutMetricData")
    )
    cold_extra = sum(cold["aws_requests"].values()) - max(requests)
    detail = (
        f"at most {max(requests)} per warm turn, {metric_calls} PutMetricData; the cold turn "
        f"{cold_extra:+d}"
    )
    restored = b.restored_by_memory.get(b.chosen_memory_mb or -1)
    if restored is not None:
        # The stack deploys SnapStart: its cold turn is the first after a restore.
        deployed = sum(restored.of(COLD)[0]["aws_requests"].values()) - max(requests)
        detail += f" without SnapStart, {deployed:+d} after a SnapStart restore (deployed)"
        cold_extra = deployed
    if reference is not None:
        detail += f" (reference: {sum(reference.middle(TTFT300)['aws_requests'].values())})"
    out.append(
        (
            "≤ 4 AWS requests besides publishes per warm turn, no PutMetricData; a cold start "
            "adds ≤ 1",
            max(requests) <= 4 and metric_calls == 0 and cold_extra <= 1,
            detail,
        )
    )

    from bench import cold_path

    out += cold_path.verdicts(results)
    ratio = figures.import_ratio(results.imports)
    named = {f.name: f for f in results.imports if f.memory_mb is None}
    if ratio is None:
        out.append(("Cold import ≤ 0.5x the reference's", None, "reference not run"))
    else:
        out.append(
            (
                f"Cold import ≤ {figures.IMPORT_BUDGET_RATIO:g}x the real reference's, same run",
                ratio <= figures.IMPORT_BUDGET_RATIO,
                f"{ratio:.2f}x (median {_n(named['gateway chat handler'].median_import_ms)} ms "
                f"vs {_n(named['reference handler'].median_import_ms)} ms)",
            )
        )
    return out


def budget_lines(results: Results) -> list[str]:
    marks = {True: "met", False: "NOT MET", None: "skipped"}
    return [f"budget {marks[met]}: {name}: {detail}" for name, met, detail in verdicts(results)]


# -- tables -----------------------------------------------------------------------------------
def turn_table(results: Results) -> list[str]:
    g, r = results.bench.gateway, results.bench.reference
    rows = [
        "| per 512-token turn | gateway | reference | reference ÷ gateway |",
        "|---|---:|---:|---:|",
    ]

    def row(name: str, label: str, key: str, digits: int = 1) -> None:
        gv = g.median(label, key)
        rv = r.median(label, key) if r else float("nan")
        rows.append(f"| {name} | {_n(gv, digits)} | {_n(rv, digits)} | {_ratio(rv, gv)} |")

    row(f"time added to the first token, {MODEL_TTFT_MS:g} ms model (ms)", TTFT300, "time_added_ms")
    row("time added to the first token, 0 ms model (ms)", TTFT0, "time_added_ms")
    row(
        f"… as measured against moto, {MODEL_TTFT_MS:g} ms model (ms)",
        TTFT300,
        "time_added_moto_ms",
    )
    row("AWS requests before the first delta", TTFT300, "aws_before_first_delta", 0)
    for pace in (FULL, PACED):
        label = g.pace_label(pace)
        row(f"events published, {pace}", label, "events_published", 0)
        row(f"HTTP publish requests, {pace}", label, "publish_requests", 0)
        row(f"HTTP connections opened, {pace}", label, "connections_opened", 0)
        row(f"billed duration, {pace} (ms)", label, "billed_ms", 0)
        row(f"CPU time, {pace} (ms)", label, "cpu_ms", 0)
        row(f"log bytes, {pace}", label, "log_bytes", 0)
    gv = sum(g.middle(TTFT300)["aws_requests"].values())
    rv = sum(r.middle(TTFT300)["aws_requests"].values()) if r else float("nan")
    rows.append(f"| AWS requests besides publishes | {gv} | {_n(rv)} | {_ratio(rv, gv)} |")
    return rows


def operations_table(results: Results) -> list[str]:
    g, r = results.bench.gateway, results.bench.reference
    columns = [("gateway, warm turn", g.middle(TTFT300)), ("gateway, cold turn", g.of(COLD)[0])]
    if r is not None:
        columns.append(("reference, warm turn", r.middle(TTFT300)))
    counts = [Counter(turn["aws_requests"]) for _, turn in columns]
    operations = sorted(set().union(*counts))
    rows = [
        "| AWS operation | " + " | ".join(name for name, _ in columns) + " |",
        "|---|" + "---:|" * len(columns),
    ]
    for op in operations:
        rows.append(f"| {op} | " + " | ".join(str(c[op]) for c in counts) + " |")
    rows.append("| **total** | " + " | ".join(f"**{sum(c.values())}**" for c in counts) + " |")
    return rows


def cost_table(results: Results) -> list[str]:
    b, prices = results.bench, results.prices
    gateway_run = b.by_cadence.get(b.gateway_flush_ms) or b.gateway
    columns = [
        (f"gateway, {PACED}", figures.bill(gateway_run, PACED, prices, results.gateway_memory)),
        (f"gateway, {FULL}", figures.bill(b.gateway, FULL, prices, results.gateway_memory)),
    ]
    if b.reference is not None:
        columns += [
            (
                f"reference, {PACED}",
                figures.bill(b.reference, PACED, prices, b.reference_memory_mb),
            ),
            (f"reference, {FULL}", figures.bill(b.reference, FULL, prices, b.reference_memory_mb)),
        ]
    basis = columns[0][1].prices
    rows = [
        "| USD per million turns | list price | " + " | ".join(n for n, _ in columns) + " |",
        "|---|---|" + "---:|" * len(columns),
    ]
    for line in columns[0][1].lines:
        values = " | ".join(_n(c.lines[line], 2) for _, c in columns)
        rows.append(f"| {line} | {basis[line]} | {values} |")
    rows.append("| **total** | | " + " | ".join(f"**{_n(c.total, 2)}**" for _, c in columns) + " |")
    return rows


def memory_table(results: Results) -> list[str]:
    b = results.bench
    rows_ = figures.memory_rows(
        b.by_memory, results.prices, results.memory_imports, b.restored_by_memory
    )
    out = [
        "| memory (MB) | CPU share (vCPU) | time added, 300 ms model (ms) | time added, 0 ms model "
        "(ms) | CPU per warm turn (ms) | CPU per turn at 50 tokens/s (ms) | billed duration at "
        "50 tokens/s (ms) | cold import (ms) | cold turn, time added (ms) | cold first token, "
        "SnapStart (ms) | peak memory (MB) | whole bill per million turns at 50 tokens/s |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows_:
        mark = " ✔" if r.memory_mb == results.bench.chosen_memory_mb else ""
        out.append(
            f"| {r.memory_mb}{mark} | {r.cpu_share:.3f} | {_n(r.time_added_ms, 1)} | "
            f"{_n(r.time_added_0_ms, 1)} | {_n(r.cpu_ms, 1)} | {_n(r.paced_cpu_ms)} | "
            f"{_n(r.billed_ms)} | {_n(r.import_ms)} | {_n(r.cold_added_ms)} | "
            f"{_n(r.restored_ms)} | {_n(r.max_rss_mb)} | ${_n(r.cost, 2)} |"
        )
    return out


def cadence_table(results: Results) -> list[str]:
    rows_ = figures.cadence_rows(results.bench, results.prices, results.gateway_memory)
    bills = figures.cadence_bills(results.bench, results.prices, results.gateway_memory)
    memories = sorted(next(iter(bills.values()))) if bills else []
    out = [
        "| flush interval (ms) | events per turn at 50 tokens/s | AppSync Events operations per "
        "million turns | "
        + " | ".join(
            f"whole bill at {m} MB" + (" (measured)" if m == results.gateway_memory else "")
            for m in memories
        )
        + " |",
        "|---:|---:|---:|" + "---:|" * len(memories),
    ]
    for r in rows_:
        cells = " | ".join(
            ("**" if bills[r.flush_ms][m] <= figures.COST_BUDGET_USD else "")
            + f"${_n(bills[r.flush_ms][m], 2)}"
            + ("**" if bills[r.flush_ms][m] <= figures.COST_BUDGET_USD else "")
            for m in memories
        )
        out.append(f"| {r.flush_ms} | {_n(r.events)} | ${_n(r.appsync, 2)} | {cells} |")
    return out


def import_table(results: Results) -> list[str]:
    named = {f.name: f for f in results.imports}
    gateway = named["gateway chat handler"].median_import_ms
    out = [
        "| module (fresh process each run) | import, median (ms) | min–max (ms) | whole process, "
        "median (ms) | gateway ÷ this |",
        "|---|---:|---:|---:|---:|",
    ]
    for f in results.imports:
        out.append(
            f"| {f.name} | {_n(f.median_import_ms)} | {_n(min(f.import_ms))}–"
            f"{_n(max(f.import_ms))} | {_n(f.median_process_ms)} | "
            f"{gateway / f.median_import_ms:.2f}x |"
        )
    return out


def load_table(load: LoadReport) -> list[str]:
    return [
        "| local runtime under load | value |",
        "|---|---:|",
        f"| concurrent WebSocket sessions (one user each) | {load.sessions} |",
        f"| reply length / local model pace | {load.reply_tokens} tokens at "
        f"{load.tokens_per_second:g} tokens/s |",
        f"| turns completed with `done` | {load.completed} |",
        f"| turns with lost, repeated or reordered events (by `seq`) | {load.lost_or_reordered} |",
        f"| first delta after publish, p50 (ms) | {_n(load.first_delta_p50_ms)} |",
        f"| first delta after publish, p99 (ms) | {_n(load.first_delta_p99_ms)} |",
        f"| first delta, the {FUNCTION_SLOTS} sessions served without queueing, p50 (ms) | "
        f"{_n(load.first_wave_p50_ms)} |",
        f"| events delivered | {load.events_delivered:,} |",
        f"| events per second (delivered, whole run) | {_n(load.events_per_second, 1)} |",
        f"| wall time of the run (s) | {_n(load.duration_s, 1)} |",
    ]
