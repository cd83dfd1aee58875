"""The README against the code it documents: every setting it names in backticks exists, the defaults its
settings table quotes are the code's, and every command and option its command table shows is one the
command line takes. A rename or a changed default then fails here instead of leaving the README stale."""

import re
from pathlib import Path
from typing import Any

import pytest
import typer.main
from pydantic import BaseModel

from roomsight.config import Settings
from serving.responses import Health
from shell.cli import app

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
SECTIONS = {name: field.annotation for name, field in Settings.model_fields.items()
            if isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel)}
# `section.key` ending the backticks (or before `: value`): `monitoring.review.evidence` is a module, not a setting.
SETTING = re.compile(rf"`({'|'.join(SECTIONS)})\.(\w+)(?=`|: )")
# What the table's default column says for a setting left unset.
UNSET = re.compile(r"^(none|empty)\b")


def _resolves(model: type[BaseModel], section: str, key: str) -> bool:
    field = model.model_fields.get(section)
    return field is not None and key in getattr(field.annotation, "model_fields", {})


def test_every_setting_the_readme_names_exists():
    named = {m.groups() for m in SETTING.finditer(README)}
    # `/healthz` has sections of the same names (`log.rejected`): a name may be one of its fields instead.
    missing = sorted(f"{s}.{k}" for s, k in named if not _resolves(Settings, s, k) and not _resolves(Health, s, k))
    assert named and not missing, f"README names settings that do not exist: {missing}"


def _settings_rows() -> list[tuple[list[str], str]]:
    """(setting names, default cell) of each row of the README's settings table."""
    table = README.split("| setting | env | default |", 1)[1].split("\n\n", 1)[0]
    rows = [line.split(" | ") for line in table.splitlines() if line.startswith("| `")]
    return [(re.findall(r"`([\w.]+)`", cells[0]), cells[2]) for cells in rows]


def _default(name: str) -> Any:
    model: type[BaseModel] = Settings
    *sections, key = name.split(".")
    for section in sections:
        model = model.model_fields[section].annotation
    field = model.model_fields[key]
    return field.get_default(call_default_factory=True)


def _quotes(cell: str, value: Any) -> bool:
    """Whether the README's default cell quotes this code default among its values."""
    words = re.findall(r"`([^`]*)`", cell)
    if value in (None, {}, ()):
        # Unset defaults the code fills in at run time, as the README says them: none, empty, or under $HOME.
        return bool(UNSET.match(cell)) or any("$HOME" in w for w in words) or not words
    if isinstance(value, bool):
        return str(value).lower() in words
    if isinstance(value, (int, float)):
        return any(re.fullmatch(r"\d+(\.\d+)?", w) and float(w) == value for w in words)
    return str(value) in words


def test_the_defaults_the_readme_quotes_are_the_codes():
    rows = [(names, cell) for names, cell in _settings_rows() if re.search(r"`[^`]+`|^(none|empty)\b", cell)]
    assert len(rows) > 20, "the settings table was not found where the test looks for it"
    wrong = [(name, _default(name)) for names, cell in rows for name in names if not _quotes(cell, _default(name))]
    assert not wrong, f"README's settings table quotes other defaults than the code's: {wrong}"


def _command_snippets() -> list[str]:
    """Each `rollout ...` (or `plan ...` after it) the README's command table shows, as written."""
    table = README.split("| command | what it does |", 1)[1].split("\n\n", 1)[0]
    firsts = [line.split(" | ")[0] for line in table.splitlines() if line.startswith("| `")]
    return [s.replace("\\|", "|") for cell in firsts for s in re.findall(r"`([^`]+)`", cell)]


@pytest.mark.parametrize("snippet", _command_snippets())
def test_every_command_and_option_in_the_readmes_table_exists(snippet: str):
    words = snippet.removeprefix("rollout ").split()
    command = typer.main.get_command(app)
    assert words[0] in command.commands, f"{snippet!r}: no command {words[0]!r}"
    while words and words[0] in getattr(command, "commands", {}):
        command = command.commands[words.pop(0)]
    options = {opt for param in command.params for opt in param.opts}
    unknown = [opt for opt in re.findall(r"--[a-z][a-z-]*", snippet) if opt not in options]
    assert not unknown, f"{snippet!r}: `rollout` takes no {unknown}"
