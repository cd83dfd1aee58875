"""CPU time of a Serve app's processes, read from Linux /proc: where a condition's extra cost goes (the
ingress, a model replica, the HTTP proxy), which latency alone does not say."""

from __future__ import annotations

import os
import re
from pathlib import Path

_TICK_S = 1.0 / os.sysconf("SC_CLK_TCK")


def serve_cpu_s(app: str) -> dict[str, float]:
    """CPU seconds (user + system) used so far by each deployment's replicas of `app`, and by the proxy;
    empty where there is no /proc (not Linux)."""
    if not Path("/proc/self/stat").exists():
        return {}
    deployment = re.compile(rf"ServeReplica:{re.escape(app)}:(\w+)")
    used: dict[str, float] = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            stat = (proc / "stat").read_text()
        except OSError:  # the process ended meanwhile
            continue
        match = deployment.search(cmdline)
        name = match.group(1) if match else "proxy" if "ProxyActor" in cmdline else None
        if name:
            fields = stat.rsplit(")", 1)[1].split()  # after the command name, which may hold spaces
            used[name] = used.get(name, 0.0) + (int(fields[11]) + int(fields[12])) * _TICK_S
    return used
