"""``python -m bench`` (``make bench``): measure the gateway against the reference design and the
local runtime under load; print the table and write BENCHMARKS.md."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from bench import cold_import, cost, load, report, turns

REPO = Path(__file__).resolve().parent.parent


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--runs", type=int, default=15, help="full-speed turns per design")
    parser.add_argument(
        "--paced-runs", type=int, default=3, help="50 tokens/s turns (10 s each) per design"
    )
    parser.add_argument("--import-runs", type=int, default=15, help="fresh processes per module")
    parser.add_argument("--sessions", type=int, default=200, help="WebSocket sessions under load")
    parser.add_argument("--reply-tokens", type=int, default=128, help="local-model reply length")
    parser.add_argument(
        "--tokens-per-second", type=float, default=40.0, help="local-model pace under load"
    )
    parser.add_argument("--memory-mb", type=int, default=1024, help="chat function memory")
    parser.add_argument("--skip-load", action="store_true", help="leave out the load test")
    parser.add_argument(
        "--output", type=Path, default=REPO / "BENCHMARKS.md", help="where to write the report"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    command = " ".join(["python -m bench", *(argv if argv is not None else sys.argv[1:])])
    began = time.monotonic()

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    log("per-turn benchmark (gateway and reference on moto and a recording publish endpoint)")
    turn_results = turns.run(
        runs=args.runs, paced_runs=args.paced_runs, memory_mb=args.memory_mb, log=log
    )

    log("cold import (fresh processes)")
    imports = cold_import.measure(runs=args.import_runs)

    prices = cost.load_prices()
    costs = {
        (design, pace): cost.cost_per_million_turns(
            figures[pace].footprint(), prices, args.memory_mb
        )
        for design, figures in (
            ("gateway", turn_results.gateway),
            ("reference", turn_results.reference),
        )
        for pace in (turns.PACED, turns.FULL)
    }

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
        turns=turn_results,
        imports=imports,
        costs=costs,
        load=load_report,
        prices=prices,
        seconds=time.monotonic() - began,
    )
    text = report.render(results)
    args.output.write_text(text)
    print(text)
    log(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
