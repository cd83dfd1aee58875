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


class _UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing a key given twice in one mapping: it keeps the last silently, so a
    step with two `exit:` keys lost the first's gates, and a setting written twice took the later value."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(None, None, f"{key!r} is given twice in one mapping",
                                                        key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def read_yaml(path: Path, what: str, error: type[UserError]) -> Any:
    """The parsed YAML document (None when the file is empty); a key given twice in a mapping is refused."""
    try:
        return yaml.load(read_text(path, what, error), Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader
    except yaml.YAMLError as exc:
        # PyYAML names the text it parsed `"<unicode string>"`: the file is named already, the line is what helps.
        said = str(exc).replace('in "<unicode string>", ', "at ")
        raise error(f"{what} {path} is not valid YAML: {said}") from None


def read_csv(path: Path, what: str, error: type[UserError]) -> tuple[list[str], list[dict[str, str]]]:
    """The header and the rows."""
    reader = csv.DictReader(io.StringIO(read_text(path, what, error), newline=""))
    try:
        return list(reader.fieldnames or []), list(reader)
    except csv.Error as exc:
        raise error(f"{what} {path} is not a readable CSV: {exc}") from None


def check_output_file(path: Path, option: str, suffix: str) -> None:
    """Checked before any work is done, its folder created: a folder, a name without `suffix` (which
    matplotlib would silently extend) or a folder that cannot be made would cost the user a whole run."""
    if path.is_dir():
        raise UserError(f"{option} {path} is a folder; give a file name, e.g. {path / ('out' + suffix)}")
    if path.suffix.lower() != suffix:
        raise UserError(f"{option} {path}: give a {suffix} file name")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"{option} {path}: cannot create its folder {path.parent} ({exc.strerror})") from None
