"""Shared terminal output for every `rollout` sub-command: one Rich console for results, one for
errors, and the decorator that turns a UserError, an MLflow server out of reach, or a path the system
refuses into a one-line message and exit code 1."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import typer
from rich.console import Console

from roomsight import registry
from roomsight.errors import UserError

console = Console()
# Soft-wrapped: Rich would fold a long line (a path, a command) at the console's width, and a path copied
# from the message would carry the fold. The terminal wraps the line instead. What is
# printed here is lines of text: a table or panel would not fold its cells either.
err = Console(stderr=True, soft_wrap=True)


def friendly(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Known failures print one clear line and exit 1; only bugs show a traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            # MLflow calls are everywhere a command touches the registry; a server that is down is the
            # user's to fix, whichever call noticed it first.
            with registry.reaching():
                return fn(*args, **kwargs)
        except UserError as exc:
            err.print(f"[bold red]error:[/] {exc}", highlight=False)
            raise typer.Exit(1) from None
        except OSError as exc:
            if not exc.filename:
                raise
            # A path the system refuses (a folder given for a file, no permission, a full disk) is named
            # by the user and theirs to fix.
            err.print(f"[bold red]error:[/] {exc.filename}: {exc.strerror}", highlight=False)
            raise typer.Exit(1) from None

    return wrapper
