"""Caption-derived labels: declarative keyword rules (a YAML file) that label a caption with one class
or abstain, applied to a CSV; training.labelscore scores them against known labels."""

from __future__ import annotations

import csv
import os
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from roomsight.errors import RulesError
from training.labelscore import GoldReport, score
from roomsight.userfiles import read_csv, read_yaml

DEFAULT_RULES = Path(__file__).with_name("rules") / "default.yaml"
DEFAULT_MAX_LENGTH = 80


def _alternative(keyword: str) -> str:
    """One keyword as a regex: words in a phrase separated by any whitespace or hyphens (hosts write
    "open-plan" as often as "open plan"); `*` any letters (`bed*` matches bed, beds, bedroom; `*door*` also
    outdoor); without `*` a word may take a plural 's'."""
    words = [re.escape(w).replace(r"\*", r"\w*") for w in unicodedata.normalize("NFKC", keyword).split()]
    return r"[\s-]+".join(words) + ("" if "*" in keyword else "s?")


def _patterns(keywords: list[str]) -> list[tuple[str, re.Pattern[str]]]:
    """Whole words or phrases, any case, longest first (the one reported is the most specific)."""
    return [(k, re.compile(r"(?<!\w)" + _alternative(k) + r"(?!\w)", re.IGNORECASE))
            for k in sorted(keywords, key=len, reverse=True)]


def _first(patterns: list[tuple[str, re.Pattern[str]]], text: str) -> str:
    return next((k for k, pattern in patterns if pattern.search(text)), "")


@dataclass(frozen=True)
class ClassRule:
    label: str
    include: list[str]
    exclude: list[str] = field(default_factory=list)
    max_length: int = DEFAULT_MAX_LENGTH

    def __post_init__(self) -> None:
        object.__setattr__(self, "_inc", _patterns(self.include))
        object.__setattr__(self, "_exc", _patterns(self.exclude))

    def named_by(self, text: str) -> str:
        """The include keyword `text` names this class by, or ""."""
        return _first(self._inc, text)  # type: ignore[attr-defined]

    def refusal(self, text: str) -> str:
        """Why a caption that names this class does not get it ("" when it does)."""
        if len(text) > self.max_length:
            return f"longer than {self.max_length} characters"
        excluded = _first(self._exc, text)  # type: ignore[attr-defined]
        return f"excluded by {excluded!r}" if excluded else ""


@dataclass(frozen=True)
class Decision:
    """What the rules made of one caption: a label, or why they abstained."""

    label: str  # "" when they abstain
    rule: str  # the class whose rule the caption fell under ("" when it names none, or several)
    keyword: str  # the include keyword that named it
    reason: str  # "labelled", "names no class", "names several classes: ...", or the rule's refusal


@dataclass(frozen=True)
class Rules:
    classes: list[ClassRule]

    @property
    def labels(self) -> list[str]:
        return [r.label for r in self.classes]

    def decide(self, caption: str | None) -> Decision:
        """A caption gets the one class it names, unless that class's length limit or exclusions refuse
        it. A caption naming two classes ("view of the living room from the kitchen") is not guessed at.
        Read in one Unicode form, as the keywords are: a "façade" typed as c and a combining cedilla, or
        in full-width letters, is the same word, and as long."""
        text = unicodedata.normalize("NFKC", caption or "").strip()
        named = [(r, k) for r in self.classes if (k := r.named_by(text))]
        if not named:
            return Decision("", "", "", "names no class")
        if len(named) > 1:
            return Decision("", "", "", "names several classes: " + ", ".join(r.label for r, _ in named))
        rule, keyword = named[0]
        why = rule.refusal(text)
        return Decision("" if why else rule.label, rule.label, keyword, why or "labelled")

    def label(self, caption: str | None) -> str:
        """The class the caption gets, or "" (abstain)."""
        return self.decide(caption).label


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
    decisions = [rules.decide(r.get("caption")) for r in rows]
    labels = [d.label for d in decisions]
    out_header = [("label_given" if h == "label" else h) for h in header] + ["label"]
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(out_header)
        for r, lab in zip(rows, labels):
            w.writerow([_rebase(r[h], captions, out) if h == "path" else r.get(h, "") for h in header] + [lab])
    report = score(decisions, _gold_labels(gold, header, rows), rules.labels) if gold else None
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
        by_path: dict[str, str] = {}
        for r in g_rows:
            label = (r.get("label") or "").strip()
            if by_path.setdefault(r["path"], label) != label:
                raise RulesError(f"{gold}: {r['path']} is labelled both {by_path[r['path']]!r} and {label!r}")
        return [by_path.get(r["path"], "") for r in rows]
    if len(g_rows) != len(rows):
        raise RulesError(f"{gold}: {len(g_rows)} rows but the captions file has {len(rows)}; "
                         "give both a `path` column to join on, or the same rows in the same order")
    return [(r.get("label") or "").strip() for r in g_rows]
