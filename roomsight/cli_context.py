"""What the root `rollout` command hands every sub-command: a typed context, found with `of(ctx)`, instead
of an untyped `ctx.obj` attribute. The settings load on first use, so `--help` reads no config file."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import typer

from roomsight.config import Settings, load_settings


@dataclass
class CliContext:
    config_path: Path | None = None
    plan_path: Path | None = None  # --plan; None: the `plan` setting, else the shipped plan
    actor: str | None = None  # --actor; None: the OS user
    _settings: Settings | None = field(default=None, repr=False)

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = load_settings(self.config_path)
        return self._settings


def of(ctx: typer.Context) -> CliContext:
    """The root command's context, from any sub-command's (a command run on its own gets the defaults)."""
    found = ctx.find_object(CliContext)
    return found if found is not None else ctx.ensure_object(CliContext)
