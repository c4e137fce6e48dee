"""From measured turns to the figures the report prints: whole bills, the memory size and stream
cadence the measurements choose, and each budget's verdict."""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from typing import Any

from bench import cgroups
from bench.cold_import import ImportFigures
from bench.cost import CostBreakdown, cost_per_million_turns, footprint_of
from bench.turns import (
    COLD,
    PACED,
    TIME_ADDED_BUDGET_MS,
    TTFT0,
    TTFT300,
    Run,
    TurnBenchmark,
)

COST_BUDGET_USD = 100.0  # per million 512-token turns at 50 tokens/s, the whole bill
IMPORT_BUDGET_RATIO = 0.5


def bill(run: Run, pace: str, prices: dict[str, Any], memory_mb: int) -> CostBreakdown:
    """The whole bill per million turns of ``run``'s median turn at ``pace``."""
    return cost_per_million_turns(footprint_of(run.middle(run.pace_label(pace))), prices, memory_mb)


@dataclass(frozen=True)
class MemoryRow:
    memory_mb: int
    cpu_share: float  # of one vCPU
    time_added_ms: float  # median, 300 ms model
    time_added_0_ms: float  # median, 0 ms model
    cpu_ms: float  # CPU time per warm full-speed turn, median
    paced_cpu_ms: float  # CPU time of the turn at 50 tokens/s
    billed_ms: float  # the turn at 50 tokens/s
    cost: float  # whole bill per million turns at 50 tokens/s
    import_ms: float  # cold import median, or NaN
    cold_added_ms: float  # a fresh function's first turn: time added to the first token
    max_rss_mb: float  # the function process's peak resident memory over the run
    within_budget: bool
    #: SnapStart: the after-restore hook plus the time the first turn after it adds (NaN: not
    #: emulated). Lambda's own restore is not in it (``bench.cold_path.AWS_RESTORE``).
    restored_ms: float = math.nan

    @property
    def cold_start_ms(self) -> float:
        """A fresh function's import (when measured) plus the time its first turn adds to the
        first token."""
        return (0.0 if math.isnan(self.import_ms) else self.import_ms) + self.cold_added_ms

    @property
    def cold_first_token_ms(self) -> float:
        """What a cold start adds to the first token on the path the stack deploys: after a
        SnapStart restore where that was measured, else the import plus the first turn."""
        return self.cold_start_ms if math.isnan(self.restored_ms) else self.restored_ms

    @property
    def fits(self) -> bool:
        """The process's peak memory is below the size (Lambda stops a function that exceeds
        its memory)."""
        return self.max_rss_mb < self.memory_mb


def memory_rows(
    by_memory: dict[int, Run],
    prices: dict[str, Any],
    imports: dict[int, ImportFigures],
    restored: dict[int, Run] | None = None,
) -> list[MemoryRow]:
    rows = []
    for memory, run in sorted(by_memory.items()):
        after_restore = (restored or {}).get(memory)
        added = run.median(TTFT300, "time_added_ms")
        paced = run.middle(run.pace_label(PACED))
        rows.append(
            MemoryRow(
                memory_mb=memory,
                cpu_share=cgroups.quota_us(memory) / cgroups.PERIOD_US,
                time_added_ms=added,
                time_added_0_ms=run.median(TTFT0, "time_added_ms"),
                cpu_ms=statistics.median(t["cpu_ms"] for t in run.of(TTFT300) + run.of(TTFT0)),
                paced_cpu_ms=paced["cpu_ms"],
                billed_ms=paced["billed_ms"],
                cost=bill(run, PACED, prices, memory).total,
                import_ms=imports[memory].median_import_ms if memory in imports else float("nan"),
                cold_added_ms=run.of(COLD)[0]["time_added_ms"],
                max_rss_mb=max(t["max_rss_mb"] for t in run.turns),
                within_budget=added <= TIME_ADDED_BUDGET_MS,
                restored_ms=restored_cold_ms(after_restore) if after_restore else math.nan,
            )
        )
    return rows


def restored_cold_ms(run: Run) -> float:
    """The after-restore hook plus the time the first turn after it adds to the first token."""
    first = run.of(COLD)[0]
    return float(first.get("restore_hook_ms", math.nan)) + first["time_added_ms"]


#: Most a cold start may add to the first token at a chosen memory size (import or SnapStart
#: restore, plus the first turn).
COLD_FIRST_TOKEN_BUDGET_MS = 1_000.0
#: Most a warm turn may add to the first token at a chosen memory size (median, 300 ms model).
WARM_ADDED_CEILING_MS = 10.0


def within_ceilings(row: MemoryRow) -> bool:
    """Whether ``row``'s cold first token and warm turn are within the sizing rule's ceilings."""
    return (
        row.cold_first_token_ms <= COLD_FIRST_TOKEN_BUDGET_MS
        and row.time_added_ms <= WARM_ADDED_CEILING_MS
    )


def choose_memory(rows: list[MemoryRow]) -> int:
    """The memory size with the lowest whole bill among those the function fits in whose cold
    first token adds at most ``COLD_FIRST_TOKEN_BUDGET_MS`` and whose warm path adds at most
    ``WARM_ADDED_CEILING_MS``.

    When no size meets both, the size with the quickest cold first token among those within the
    cost budget (else among all that fit): the user's first answer weighs more than a saving
    that breaks it, but not more than the bill's own budget."""
    fitting = [r for r in rows if r.fits] or rows
    meeting = [r for r in fitting if within_ceilings(r)]
    if meeting:
        return min(meeting, key=lambda r: r.cost).memory_mb
    affordable = [r for r in fitting if r.cost <= COST_BUDGET_USD] or fitting
    return min(affordable, key=lambda r: r.cold_first_token_ms).memory_mb


@dataclass(frozen=True)
class CadenceRow:
    flush_ms: int
    events: float  # per 512-token turn at 50 tokens/s, median
    appsync: float  # AppSync Events operations, per million turns
    total: float  # whole bill per million turns
    within_budget: bool


def cadence_rows(bench: TurnBenchmark, prices: dict[str, Any], memory_mb: int) -> list[CadenceRow]:
    rows = []
    for flush, run in sorted(bench.by_cadence.items()):
        breakdown = bill(run, PACED, prices, memory_mb)
        rows.append(
            CadenceRow(
                flush_ms=flush,
                events=run.median(run.pace_label(PACED), "events_published"),
                appsync=breakdown.lines["AppSync Events operations"],
                total=breakdown.total,
                within_budget=breakdown.total <= COST_BUDGET_USD,
            )
        )
    return rows


LAMBDA_DURATION = "Lambda duration (whole invocation)"


def cadence_bills(
    bench: TurnBenchmark, prices: dict[str, Any], memory_mb: int
) -> dict[int, dict[int, float]]:
    """The whole bill per million turns for each cadence at each measured memory size: the
    cadence run's bill with its Lambda duration replaced by the memory sweep's measured turn at
    50 tokens/s at that size (the duration is the model's wait plus the function's work, which
    the cadence barely changes)."""
    out: dict[int, dict[int, float]] = {}
    for flush, run in sorted(bench.by_cadence.items()):
        own = bill(run, PACED, prices, memory_mb)
        out[flush] = {memory_mb: own.total}
        for memory, sized in bench.by_memory.items():
            if memory == memory_mb:
                continue
            duration = bill(sized, PACED, prices, memory).lines[LAMBDA_DURATION]
            out[flush][memory] = own.total - own.lines[LAMBDA_DURATION] + duration
    return out


def within_budget(bills: dict[int, dict[int, float]]) -> list[tuple[int, int, float]]:
    """(cadence, memory, bill) of every pair within the cost budget, shortest cadence first."""
    return sorted(
        (flush, memory, total)
        for flush, by_memory in bills.items()
        for memory, total in by_memory.items()
        if total <= COST_BUDGET_USD
    )


def supported_cadence(rows: list[CadenceRow]) -> int | None:
    """The shortest interval (the smoothest stream) whose whole bill is within budget."""
    within = [r.flush_ms for r in rows if r.within_budget]
    return min(within) if within else None


def import_ratio(imports: list[ImportFigures]) -> float | None:
    named = {f.name: f for f in imports if f.memory_mb is None}
    if "reference handler" not in named:
        return None
    return (
        named["gateway chat handler"].median_import_ms / named["reference handler"].median_import_ms
    )
