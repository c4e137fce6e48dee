"""``python -m local`` (``make dev``): run the whole gateway on this machine until Ctrl-C."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from pathlib import Path

from local.runtime import DEFAULT_CA_DIR, DEFAULT_OUTPUTS, LocalGateway, Options


def parse_args(argv: list[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(
        prog="python -m local",
        description="Run the AI gateway locally: moto for AWS, an AppSync-Events-compatible "
        "server running the real handlers, and the web chat UI.",
    )
    parser.add_argument(
        "--stack",
        default=os.environ.get("STACK", "dev"),
        help="stack whose Pulumi.<stack>.yaml to read (default: dev)",
    )
    parser.add_argument(
        "--config-file", type=Path, help="read this stack file instead of Pulumi.<stack>.yaml"
    )
    parser.add_argument(
        "--port",
        type=int,
        default=int(os.environ.get("PORT") or 8080),
        help="port of the UI and the Event API (default: 8080; 0 picks a free one)",
    )
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default: loopback only)"
    )
    parser.add_argument(
        "--public-host",
        default=os.environ.get("PUBLIC_HOST", ""),
        help="a host name clients use besides localhost/127.0.0.1/::1 (e.g. a container's "
        "name); it is put in the certificate, accepted as Host and used in the outputs",
    )
    parser.add_argument(
        "--allow-origin",
        action="append",
        default=[o for o in os.environ.get("ALLOWED_ORIGINS", "").split(",") if o],
        metavar="ORIGIN",
        help="a web origin (e.g. http://localhost:5173) whose pages may call the gateway, besides "
        "its own UI; repeat it, or 'loopback' for any port of localhost/127.0.0.1/[::1] "
        "(or ALLOWED_ORIGINS=a,b)",
    )
    parser.add_argument(
        "--ca-dir",
        type=Path,
        default=DEFAULT_CA_DIR,
        help="where the machine's local CA lives, made on first use (default: .local/ca)",
    )
    parser.add_argument(
        "--iam-credentials-file",
        type=Path,
        help="write the functions' per-start IAM key pair here (mode 0600), for tools that must "
        "publish as the gateway; by default it never leaves the process",
    )
    parser.add_argument(
        "--outputs",
        type=Path,
        default=DEFAULT_OUTPUTS,
        help="where to write the stack outputs (default: .local/outputs.json)",
    )
    model = parser.add_mutually_exclusive_group()
    model.add_argument(
        "--bedrock",
        action="store_true",
        default=os.environ.get("MODEL") == "bedrock",
        help="call real Amazon Bedrock with your AWS credentials (or MODEL=bedrock)",
    )
    model.add_argument(
        "--openai-base-url",
        default=os.environ.get("OPENAI_BASE_URL", ""),
        help="use an OpenAI-compatible endpoint, e.g. http://localhost:11434/v1",
    )
    parser.add_argument(
        "--openai-model",
        default=os.environ.get("OPENAI_MODEL", ""),
        help="model name to ask the OpenAI-compatible endpoint for (default: the tier's model id)",
    )
    parser.add_argument(
        "--tokens-per-second",
        type=float,
        default=60.0,
        help="pace of the local model's stream (default: 60; 0 = no pause)",
    )
    parser.add_argument(
        "--keepalive-seconds",
        type=float,
        default=30.0,
        help="interval of the WebSocket 'ka' messages (default: 30; Amplify reports a missed "
        "keep-alive after 65 s)",
    )
    parser.add_argument(
        "--max-concurrent-turns",
        type=int,
        default=32,
        help="chat invocations run at once, like a Lambda reserved concurrency (default: 32)",
    )
    args = parser.parse_args(argv)
    if args.max_concurrent_turns < 1:
        parser.error("--max-concurrent-turns must be at least 1")
    if args.bedrock and args.openai_base_url:
        parser.error("choose one of --bedrock and --openai-base-url")
    provider = "bedrock" if args.bedrock else "openai" if args.openai_base_url else "local"
    return Options(
        stack=args.stack,
        config_file=args.config_file,
        host=args.host,
        port=args.port,
        outputs=args.outputs,
        model=provider,
        openai_base_url=args.openai_base_url,
        openai_model=args.openai_model,
        tokens_per_second=args.tokens_per_second,
        keepalive_seconds=args.keepalive_seconds,
        max_concurrent_turns=args.max_concurrent_turns,
        public_host=args.public_host,
        allow_origins=tuple(args.allow_origin),
        ca_dir=args.ca_dir,
        iam_credentials_file=args.iam_credentials_file,
    )


def banner(gateway: LocalGateway) -> str:
    out = gateway.outputs
    provider = {
        "local": "local model (deterministic, no AWS)",
        "bedrock": "Amazon Bedrock",
        "openai": f"OpenAI-compatible at {gateway.options.openai_base_url}",
    }
    lines = [
        "",
        f"  ai-gateway is running locally (stack '{gateway.settings.stack}', "
        f"ready in {gateway.startup_seconds:.1f}s)",
        "",
        f"  Web chat        {out['webUrl']}",
        f"  Event API       {out['eventsRealtimeEndpoint']}  ·  {out['eventsHttpEndpoint']}",
        f"  Sign-in         {out['userPoolEndpoint']}  (Cognito API, SRP and password)",
        f"  OpenAI API      {out['openAiBaseUrl']}  (Bearer <access token>; docs/openai.md)",
        f"  CA certificate  {out['caCertFile']}  (trust it in non-browser clients)",
        f"  Local AWS       {out['awsEndpointUrl']}  (moto)",
        f"  Model           {provider[gateway.options.model]}",
        f"  Outputs         {gateway.options.outputs}",
        "",
        "  Demo users (username / password / tier):",
        *(f"    {u['username']:<20} {u['password']:<22} {u['tier']}" for u in out["demoUsers"]),
        "",
        "  Ctrl-C to stop.",
        "",
    ]
    return "\n".join(lines)


async def serve(options: Options) -> None:
    gateway = LocalGateway(options)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await gateway.start()
        print(banner(gateway), flush=True)
        await stop.wait()
        print("  stopping...", flush=True)
    finally:
        await gateway.stop()


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    logging.getLogger("botocore").setLevel(logging.WARNING)
    options = parse_args(argv)
    try:
        asyncio.run(serve(options))
    except (OSError, ValueError, RuntimeError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    # Turns still streaming run on daemon threads; they end with the process.
    return 0


if __name__ == "__main__":
    sys.exit(main())
