"""`rollout` commands of the monitoring area (inspect, drift), composed into the root CLI.

Heavy imports happen inside the commands so `rollout --help` stays instant.
"""

from __future__ import annotations

import typer

app = typer.Typer()
