"""Caption-derived labels: declarative keyword rules (a YAML file) that label a caption with one class
or abstain, applied to a CSV, and scored against known labels (precision and coverage per class)."""

from __future__ import annotations

import csv
import os
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from roomsight.errors import UserError
from roomsight.userfiles import read_csv, read_yaml

DEFAULT_RULES = Path(__file__).with_name("rules") / "default.yaml"
DEFAULT_MAX_LENGTH = 80


class RulesError(UserError, ValueError):
    """The rules file or the captions CSV cannot be used; the message says what to fix."""


def _pattern(keywords: list[str]) -> re.Pattern[str] | None:
    """Whole words or phrases, any case, optional plural 's'; whitespace inside a phrase is flexible."""
    if not keywords:
        return None
    alts = sorted((r"\s+".join(re.escape(w) for w in k.split()) for k in keywords), key=len, reverse=True)
    return re.compile(r"(?<!\w)(?:" + "|".join(alts) + r")s?(?!\w)", re.IGNORECASE)


@dataclass(frozen=True)
class ClassRule:
    label: str
    include: list[str]
    exclude: list[str] = field(default_factory=list)
    max_length: int = DEFAULT_MAX_LENGTH

    def __post_init__(self) -> None:
        object.__setattr__(self, "_inc", _pattern(self.include))
        object.__setattr__(self, "_exc", _pattern(self.exclude))

    def matches(self, caption: str) -> bool:
        text = caption.strip()
        if not text or len(text) > self.max_length:
            return False
        if self._inc is None or not self._inc.search(text):  # type: ignore[attr-defined]
            return False
        return not (self._exc is not None and self._exc.search(text))  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Rules:
    classes: list[ClassRule]

    def label(self, caption: str | None) -> str:
        """The one class whose rule matches, or "" (abstain) when none or several do."""
        hits = [r.label for r in self.classes if r.matches(caption or "")]
        return hits[0] if len(hits) == 1 else ""


def load_rules(path: Path | str | None = None) -> Rules:
    """Rules from YAML: top-level `max_length` and `exclude` apply to every class; each entry under
    `classes` has `include` (required), optional `exclude` and `max_length`."""
    path = Path(path) if path else DEFAULT_RULES
    doc = read_yaml(path, "rules file", RulesError)
    if not isinstance(doc, dict) or not isinstance(doc.get("classes"), dict) or not doc["classes"]:
        raise RulesError(f"{path}: expected a mapping with `classes:` naming at least one class")
    unknown = set(doc) - {"max_length", "exclude", "classes"}
    if unknown:
        raise RulesError(f"{path}: unknown key(s) {sorted(unknown)}; use max_length, exclude, classes")
    shared_exclude = _words(doc.get("exclude"), path, "exclude")
    default_max = _length(doc.get("max_length", DEFAULT_MAX_LENGTH), path, "max_length")
    rules = []
    for label, spec in doc["classes"].items():
        spec = spec or {}
        if not isinstance(spec, dict):
            raise RulesError(f"{path}: class {label!r} must be a mapping with `include:` keywords")
        unknown = set(spec) - {"include", "exclude", "max_length"}
        if unknown:
            raise RulesError(f"{path}: class {label!r} has unknown key(s) {sorted(unknown)}; use include, exclude, max_length")
        include = _words(spec.get("include"), path, f"{label}.include")
        if not include:
            raise RulesError(f"{path}: class {label!r} needs at least one `include` keyword")
        rules.append(ClassRule(str(label), include, shared_exclude + _words(spec.get("exclude"), path, f"{label}.exclude"),
                               _length(spec.get("max_length", default_max), path, f"{label}.max_length")))
    _no_shared_keywords(rules, path)
    return Rules(rules)


def _length(value: object, path: Path, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise RulesError(f"{path}: `{where}` must be a whole number of characters, at least 1 (got {value!r})")
    return value


def _no_shared_keywords(rules: list[ClassRule], path: Path) -> None:
    """A keyword two classes include makes every caption with it ambiguous, so it would label nothing:
    surely a slip, and one that only shows as lower coverage."""
    owners: dict[str, str] = {}
    for rule in rules:
        for keyword in rule.include:
            key = " ".join(keyword.lower().split())
            if key in owners and owners[key] != rule.label:
                raise RulesError(f"{path}: keyword {keyword!r} is included by both {owners[key]!r} and {rule.label!r}; "
                                 "a caption with it would match both and stay unlabelled")
            owners[key] = rule.label


def _words(value: object, path: Path, where: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise RulesError(f"{path}: `{where}` must be a list of keywords")
    return [v.strip() for v in value]


@dataclass(frozen=True)
class ClassScore:
    precision: float  # of the captions the rules gave this label, the share whose known label agrees
    coverage: float  # of the items known to be this class, the share the rules labelled at all
    labelled: int
    correct: int
    support: int


@dataclass(frozen=True)
class GoldReport:
    per_class: dict[str, ClassScore]
    precision: float
    coverage: float
    n: int


def score(predicted: list[str], gold: list[str]) -> GoldReport:
    """Rule labels ("" = abstained) against known labels ("" = unknown, not counted)."""
    pairs = [(p, g) for p, g in zip(predicted, gold) if g]
    support = Counter(g for _, g in pairs)
    labelled = Counter(p for p, _ in pairs if p)
    correct = Counter(p for p, g in pairs if p and p == g)
    covered = Counter(g for p, g in pairs if p)
    per_class = {}
    for c in sorted(set(support) | set(labelled)):
        per_class[c] = ClassScore(precision=correct[c] / labelled[c] if labelled[c] else 0.0,
                                  coverage=covered[c] / support[c] if support[c] else 0.0,
                                  labelled=labelled[c], correct=correct[c], support=support[c])
    n_lab = sum(labelled.values())
    return GoldReport(per_class, precision=sum(correct.values()) / n_lab if n_lab else 0.0,
                      coverage=n_lab / len(pairs) if pairs else 0.0, n=len(pairs))


@dataclass
class Labelled:
    out: Path
    rows: int
    labelled: int
    counts: dict[str, int]
    report: GoldReport | None = None


def label_csv(captions: Path, out: Path, rules: Rules, gold: Path | None = None) -> Labelled:
    """Read `captions` (a `caption` column; other columns pass through), write `out` with `label` added
    (empty where the rules abstain). An existing `label` column is kept as `label_given`."""
    header, rows = read_csv(captions, "captions file", RulesError)
    if "caption" not in header:
        raise RulesError(f"{captions}: no `caption` column; found {header}")
    labels = [rules.label(r.get("caption")) for r in rows]
    out_header = [("label_given" if h == "label" else h) for h in header] + ["label"]
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(out_header)
        for r, lab in zip(rows, labels):
            w.writerow([_rebase(r[h], captions, out) if h == "path" else r.get(h, "") for h in header] + [lab])
    report = score(labels, _gold_labels(gold, header, rows)) if gold else None
    return Labelled(out, len(rows), sum(1 for x in labels if x), dict(Counter(x for x in labels if x)), report)


def _rebase(path: str, src_csv: Path, dst_csv: Path) -> str:
    """A manifest path relative to `src_csv`'s folder, made relative to `dst_csv`'s, so the labelled CSV
    can be trained on wherever it is written."""
    if not path or Path(path).is_absolute():
        return path
    return os.path.relpath(src_csv.resolve().parent / path, dst_csv.resolve().parent)


def _gold_labels(gold: Path, header: list[str], rows: list[dict[str, str]]) -> list[str]:
    """Known labels aligned with `rows`: joined on `path` when both files have one, else row by row."""
    g_header, g_rows = read_csv(gold, "gold labels file", RulesError)
    if "label" not in g_header:
        raise RulesError(f"{gold}: no `label` column with the known labels; found {g_header}")
    if "path" in g_header and "path" in header:
        by_path = {r["path"]: (r.get("label") or "").strip() for r in g_rows}
        return [by_path.get(r["path"], "") for r in rows]
    if len(g_rows) != len(rows):
        raise RulesError(f"{gold}: {len(g_rows)} rows but the captions file has {len(rows)}; "
                         "give both a `path` column to join on, or the same rows in the same order")
    return [(r.get("label") or "").strip() for r in g_rows]
