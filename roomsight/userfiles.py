"""The files a user points roomsight at. Text it reads (settings, rollout plans, caption rules, CSV
manifests and caption files): each failure is the caller's UserError naming the file: UTF-8 with or
without the byte-order mark spreadsheet programs write, valid YAML or CSV, or a message saying which.
Files it writes (reports, plots, exports): checked before the work that fills them."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import yaml

from roomsight.errors import UserError


def read_text(path: Path, what: str, error: type[UserError]) -> str:
    if not path.exists():
        raise error(f"{what} not found: {path}")
    if path.is_dir():
        raise error(f"{what} {path} is a folder; give a file")
    try:
        # utf-8-sig: Excel's "CSV UTF-8" starts with a BOM, which would otherwise join the first column's name.
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise error(f"{what} {path} is not UTF-8 text (byte {exc.start}); save it as UTF-8") from None


def read_yaml(path: Path, what: str, error: type[UserError]) -> Any:
    """The parsed YAML document (None when the file is empty)."""
    try:
        return yaml.safe_load(read_text(path, what, error))
    except yaml.YAMLError as exc:
        raise error(f"{what} {path} is not valid YAML: {exc}") from None


def read_csv(path: Path, what: str, error: type[UserError]) -> tuple[list[str], list[dict[str, str]]]:
    """The header and the rows."""
    reader = csv.DictReader(io.StringIO(read_text(path, what, error), newline=""))
    try:
        return list(reader.fieldnames or []), list(reader)
    except csv.Error as exc:
        raise error(f"{what} {path} is not a readable CSV: {exc}") from None


def check_output_file(path: Path, option: str, suffix: str) -> None:
    """Checked before any work is done: a folder, or a name without `suffix` (which matplotlib would
    silently extend), would cost the user a whole run."""
    if path.is_dir():
        raise UserError(f"{option} {path} is a folder; give a file name, e.g. {path / ('out' + suffix)}")
    if path.suffix.lower() != suffix:
        raise UserError(f"{option} {path}: give a {suffix} file name")
