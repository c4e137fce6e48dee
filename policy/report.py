"""``make policy STACK=prod``: run the policy pack over one stack, offline, and print a report.

The stack is declared under Pulumi mocks (``devtools.declare``) and the pack runs through
pulumi-policy's own analyzer (``policy/offline.py``), exactly as ``pulumi preview --policy-pack
policy`` would run it, but with no CLI, account or cloud credentials. Exit status: 0 when no
mandatory policy is violated, 1 when one is, 2 when the stack or policy config is invalid.
"""

from __future__ import annotations

import argparse
import os
import sys

from policy.offline import (
    DEFAULT_CONFIG_FILE,
    PackResult,
    PolicyConfigError,
    analyze_stack,
    load_config_file,
)

_STATUS = {"pass": "PASS", "mandatory": "FAIL", "advisory": "WARN"}


def render(result: PackResult) -> str:
    """The report: every policy with PASS, or its violations and the resources they name."""
    width = max(len(p.name) for p in result.policies)
    lines = [
        f"ai-gateway policy pack - stack '{result.stack}': {len(result.policies)} policies, "
        f"{result.resource_count} resources",
        "",
    ]
    for policy in result.policies:
        violations = result.of_policy(policy.name)
        if policy.enforcement_level == "disabled":
            status = "OFF "
        elif not violations:
            status = _STATUS["pass"]
        else:
            status = _STATUS["mandatory" if any(v.mandatory for v in violations) else "advisory"]
        lines.append(
            f"  {status}  {policy.name:<{width}}  {policy.enforcement_level:<9}  "
            f"{policy.kind:<8}  {policy.description}"
        )
        for violation in violations:
            where = (
                f"{violation.resource_type} '{violation.resource_name}'"
                if violation.resource_name
                else "stack"
            )
            detail = violation.message.replace("\n", " ")
            lines.append(f"        - {where}: {detail}")
    mandatory = len(result.mandatory)
    advisory = len(result.violations) - mandatory
    verdict = "deployment would be blocked" if mandatory else "deployment may proceed"
    lines += ["", f"{mandatory} mandatory and {advisory} advisory violation(s): {verdict}."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stack", default="dev", help="stack whose Pulumi.<stack>.yaml to check")
    parser.add_argument(
        "--config",
        default=str(DEFAULT_CONFIG_FILE),
        help="policy pack config, as passed to --policy-pack-config (default: %(default)s)",
    )
    args = parser.parse_args(argv)
    try:
        result = analyze_stack(args.stack, config=load_config_file(args.config))
    except (PolicyConfigError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except ValueError as err:  # the program rejected the stack's config (settings.SettingsError)
        print(f"error: stack '{args.stack}' config is invalid: {err}", file=sys.stderr)
        return 2
    try:
        print(render(result))
    except BrokenPipeError:  # `make policy | head`: stop quietly (recipe from Python's docs)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 1 if result.mandatory else 0


if __name__ == "__main__":
    sys.exit(main())
