"""`rollout review ...`: the reviewer page, verdict statistics and export."""

from __future__ import annotations

import typer

app = typer.Typer(help="The human review queue: serve the reviewer page, show verdict statistics, export labels.",
                  no_args_is_help=True)
