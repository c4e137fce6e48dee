"""Emulated Lambda CPU shares: a child cgroup whose CPU quota is the share of one vCPU that
Lambda allocates to a memory size, for the process measured in it.

Lambda allocates CPU in proportion to memory: "At 1,769 MB, a function has the equivalent of one
vCPU (one vCPU-second of credits per second)"
(https://docs.aws.amazon.com/lambda/latest/dg/configuration-memory.html). So a function of M MB
gets M / 1,769 of a vCPU, set here as a CFS bandwidth quota over a 100 ms period: ``cpu.max`` on
cgroup v2 (https://docs.kernel.org/admin-guide/cgroup-v2.html#cpu-interface-files) or
``cpu.cfs_quota_us`` / ``cpu.cfs_period_us`` on a v1 ``cpu`` hierarchy
(https://docs.kernel.org/scheduler/sched-bwc.html). Creating cgroups needs root; where neither is
writable, :func:`available` says why and the benchmark skips what needs them.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path

ONE_VCPU_MB = 1769
PERIOD_US = 100_000
V2_ROOT = Path("/sys/fs/cgroup")


def quota_us(memory_mb: int) -> int:
    """CPU time per period Lambda would give ``memory_mb`` (a share of one vCPU)."""
    return max(1000, round(PERIOD_US * memory_mb / ONE_VCPU_MB))


def _v1_cpu_root() -> Path | None:
    try:
        mounts = Path("/proc/mounts").read_text().splitlines()
    except OSError:
        return None
    for line in mounts:
        parts = line.split()
        if len(parts) >= 4 and parts[2] == "cgroup" and "cpu" in parts[3].split(","):
            return Path(parts[1])
    return None


@dataclass(frozen=True)
class CpuShare:
    """A child cgroup holding ``memory_mb``'s CPU share; :meth:`join` moves a process into it."""

    memory_mb: int
    path: Path
    version: int

    def join(self, pid: int | None = None) -> None:
        (self.path / "cgroup.procs").write_text(str(pid or os.getpid()))

    def remove(self) -> None:
        with contextlib.suppress(OSError):
            self.path.rmdir()


def available() -> tuple[int, Path] | str:
    """(cgroup version, parent directory) to create CPU-limited cgroups in, or why not."""
    controllers = V2_ROOT / "cgroup.controllers"
    if controllers.is_file() and "cpu" in controllers.read_text().split():
        if os.access(V2_ROOT, os.W_OK):
            return 2, V2_ROOT
        return "cgroup v2 has the cpu controller but this user cannot create cgroups (not root)"
    v1 = _v1_cpu_root()
    if v1 is not None and (v1 / "cpu.cfs_quota_us").is_file():
        if os.access(v1, os.W_OK):
            return 1, v1
        return f"cgroup v1 cpu hierarchy at {v1} is not writable (not root)"
    return "no cgroup cpu controller is mounted (neither cgroup v2 cpu.max nor v1 cpu.cfs_quota_us)"


def create(memory_mb: int, name: str = "ai-gateway-bench") -> CpuShare:
    """A child cgroup limited to ``memory_mb``'s share of one vCPU."""
    found = available()
    if isinstance(found, str):
        raise RuntimeError(found)
    version, parent = found
    path = parent / f"{name}-{memory_mb}mb-{os.getpid()}"
    path.mkdir(exist_ok=True)
    if version == 2:
        subtree = parent / "cgroup.subtree_control"
        if "cpu" not in subtree.read_text().split():
            subtree.write_text("+cpu")
        (path / "cpu.max").write_text(f"{quota_us(memory_mb)} {PERIOD_US}")
    else:
        (path / "cpu.cfs_period_us").write_text(str(PERIOD_US))
        (path / "cpu.cfs_quota_us").write_text(str(quota_us(memory_mb)))
    return CpuShare(memory_mb, path, version)
