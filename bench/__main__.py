"""``python -m bench`` (``make bench``): measure the gateway against the reference design's real
handler, right-size the chat function's memory under emulated Lambda CPU shares, price each
stream cadence, and load the local runtime; print the report and write BENCHMARKS.md."""

from __future__ import annotations

import argparse
import datetime as dt
import pickle
import sys
import time
from pathlib import Path
from typing import Any

from bench import (
    benchmarks_md,
    cgroups,
    cold_import,
    cost,
    figures,
    load,
    openai_door,
    reference_stack,
    report,
    turns,
)

REPO = Path(__file__).resolve().parent.parent
LAST_RUN = REPO / ".local" / "bench" / "last-run.pickle"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "--reference",
        help="the reference design's checkout "
        "(default: $BENCH_REFERENCE, else ../shared/reference beside this repository)",
    )
    parser.add_argument("--warm", type=int, default=20, help="warm full-speed turns per worker")
    parser.add_argument(
        "--reference-warm", type=int, default=6, help="warm full-speed turns of the reference"
    )
    parser.add_argument(
        "--paced", type=int, default=2, help="turns at 50 tokens/s (about 11 s each) per worker"
    )
    parser.add_argument("--import-runs", type=int, default=11, help="fresh processes per module")
    parser.add_argument(
        "--memory-import-runs", type=int, default=3, help="fresh processes per memory size"
    )
    parser.add_argument(
        "--memory-mb",
        type=int,
        default=None,
        help="memory without cgroups (default: the dev stack's chatMemoryMb)",
    )
    parser.add_argument("--sessions", type=int, default=200, help="WebSocket sessions under load")
    parser.add_argument("--reply-tokens", type=int, default=128, help="local-model reply length")
    parser.add_argument(
        "--tokens-per-second", type=float, default=40.0, help="local-model pace under load"
    )
    parser.add_argument("--skip-load", action="store_true", help="leave out the load test")
    parser.add_argument(
        "--skip-door", action="store_true", help="leave out the OpenAI-compatible door"
    )
    parser.add_argument(
        "--no-cpu-shares",
        action="store_true",
        help="run every function on the machine's whole CPU (no cgroups, no memory sizing)",
    )
    parser.add_argument(
        "--replay",
        action="store_true",
        help=f"render the last run's measurements again (saved in {LAST_RUN}) without measuring",
    )
    parser.add_argument(
        "--output", type=Path, default=REPO / "BENCHMARKS.md", help="where to write the report"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.memory_mb is None:
        from local.stack import load_stack

        args.memory_mb = load_stack("dev").chat_memory_mb
    command = " ".join(["python -m bench", *(argv if argv is not None else sys.argv[1:])])
    began = time.monotonic()

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    if args.replay:
        return write(pickle.loads(LAST_RUN.read_bytes()), args.output, log)

    prices = cost.load_prices()
    root = reference_stack.locate(args.reference)
    reference_note = ""
    if root is None:
        reference_note = (
            "the reference design's code was not found (looked in "
            f"{reference_stack.wanted(args.reference)}; set BENCH_REFERENCE or "
            "--reference): its columns are left out"
        )
        log(f"bench: {reference_note}")
    elif not (reference_stack.SITE / "requests").is_dir():
        log(f"bench: the reference's pinned requests is not installed in {reference_stack.SITE}")
        log(
            f"  run: make bench (or pip install --target {reference_stack.SITE} --no-deps "
            f"-r {reference_stack.REQUIREMENTS})"
        )
        return 2
    share_note = "turned off with --no-cpu-shares" if args.no_cpu_shares else cgroups.available()
    if isinstance(share_note, str):
        log(f"bench: no emulated Lambda CPU shares ({share_note}); memory sizing is skipped")

    memory_imports: dict[int, Any] = {}

    def imports_at_memory(by_memory: dict[int, Any]) -> dict[int, Any]:
        log("cold import at each memory size's CPU share")
        for memory in by_memory:
            memory_imports[memory] = cold_import.measure_at_memory(
                cold_import.gateway_target(), memory, args.memory_import_runs
            )
        return memory_imports

    log("per-turn benchmark (each design in its own worker, on one stage)")
    bench = turns.run(
        warm=args.warm,
        paced=args.paced,
        reference_warm=args.reference_warm,
        reference_root=root,
        reference_note=reference_note,
        # The choice weighs each size's cold start, so the cold imports under each size's CPU
        # share are measured before it (and reused by the report).
        choose_memory=lambda by_memory, restored: figures.choose_memory(
            figures.memory_rows(by_memory, prices, imports_at_memory(by_memory), restored)
        ),
        default_memory_mb=args.memory_mb,
        emulate=not args.no_cpu_shares,
        log=log,
    )

    door = None
    if not args.skip_door:
        log("the OpenAI-compatible door (its own worker, on a stage of its own)")
        door = openai_door.run(
            warm=args.warm, paced=args.paced, emulate=not args.no_cpu_shares, log=log
        )

    log("cold import (fresh processes)")
    targets = [cold_import.gateway_target()]
    if root is not None:
        stack = reference_stack.read_stack(root)
        targets.append(
            cold_import.reference_target(
                stack.code, reference_stack.SITE, bench.reference_environment
            )
        )
    imports = cold_import.measure(targets, args.import_runs)
    for memory in bench.by_memory:
        if memory not in memory_imports:
            memory_imports[memory] = cold_import.measure_at_memory(
                targets[0], memory, args.memory_import_runs
            )

    load_report = None
    if not args.skip_load:
        log(f"local runtime under load ({args.sessions} WebSocket sessions)")
        load_report = load.run_load(
            sessions=args.sessions,
            reply_tokens=args.reply_tokens,
            tokens_per_second=args.tokens_per_second,
        )

    results = report.Results(
        command=command,
        bench=bench,
        imports=imports,
        memory_imports=memory_imports,
        load=load_report,
        prices=prices,
        default_memory_mb=args.memory_mb,
        seconds=time.monotonic() - began,
        finished_at=f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M}",
        commit=report.commit(),
        door=door,
    )
    LAST_RUN.parent.mkdir(parents=True, exist_ok=True)
    LAST_RUN.write_bytes(pickle.dumps(results))
    return write(results, args.output, log)


def write(results: report.Results, output: Path, log) -> int:
    text = benchmarks_md.render(results)
    output.write_text(text)
    print(text)
    for line in report.budget_lines(results):
        log(line)
    log(f"wrote {output} ({results.seconds:.0f} s of measurement)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
