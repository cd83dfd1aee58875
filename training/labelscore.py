"""Caption rules scored against known labels (`rollout labels --gold`): precision and coverage per class,
what each class's rule did (labelled, right, refused and why), and why the rules abstained.

A known label that is none of the rules' classes (`other`: a balcony, a garage, a close-up) counts against
precision when the rules label it, and does not count towards coverage, which is the share of captions of
the rules' classes that got a label. A share of no captions (the precision of a class the rules never
labelled) is None, shown as n/a: it is undefined, not 0.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from training.labels import Decision


@dataclass(frozen=True)
class ClassScore:
    precision: float | None  # of the captions the rules gave this label, the share whose known label agrees
    coverage: float | None  # of the captions known to be this class, the share the rules labelled at all (None: not theirs)
    labelled: int
    correct: int
    support: int


@dataclass(frozen=True)
class RuleScore:
    """One class's rule: the captions that name its class, what it did with them."""

    fired: int  # captions it labelled
    correct: int  # of those, labelled right
    by_keyword: dict[str, tuple[int, int]] = field(default_factory=dict)  # include keyword -> (fired, correct)
    refused: dict[str, int] = field(default_factory=dict)  # why it refused captions naming only its class


@dataclass(frozen=True)
class GoldReport:
    per_class: dict[str, ClassScore]
    per_rule: dict[str, RuleScore]
    abstained: dict[str, int]  # why, over all captions with a known label
    precision: float | None
    coverage: float | None  # of the captions known to be one of the rules' classes
    n: int  # captions with a known label
    n_classes: int  # of those, known to be one of the rules' classes


def _why(reason: str) -> str:
    return reason.split(":", 1)[0] if reason.startswith("names several") else reason


def score(decisions: list[Decision], gold: list[str], classes: list[str]) -> GoldReport:
    """Decisions against known labels ("" = unknown, not counted)."""
    pairs = [(d, g) for d, g in zip(decisions, gold) if g]
    support = Counter(g for _, g in pairs)
    labelled = Counter(d.label for d, _ in pairs if d.label)
    correct = Counter(d.label for d, g in pairs if d.label and d.label == g)
    covered = Counter(g for d, g in pairs if d.label)
    per_class = {c: ClassScore(precision=correct[c] / labelled[c] if labelled[c] else None,
                               # None for a label none of the rules gives (`other`): labelled at all, it was labelled wrong.
                               coverage=covered[c] / support[c] if support[c] and c in classes else None,
                               labelled=labelled[c], correct=correct[c], support=support[c])
                 for c in sorted(set(support) | set(labelled))}
    per_rule = {}
    for c in classes:
        mine = [(d, g) for d, g in pairs if d.rule == c]
        fired = [(d, g) for d, g in mine if d.label]
        keywords = sorted({d.keyword for d, _ in fired})
        per_rule[c] = RuleScore(
            fired=len(fired), correct=sum(g == c for _, g in fired),
            by_keyword={k: (sum(d.keyword == k for d, _ in fired), sum(d.keyword == k and g == c for d, g in fired))
                        for k in keywords},
            refused=dict(Counter(d.reason for d, _ in mine if not d.label).most_common()))
    rooms = [(d, g) for d, g in pairs if g in classes]
    n_lab = sum(labelled.values())
    return GoldReport(per_class, per_rule, dict(Counter(_why(d.reason) for d, _ in pairs if not d.label).most_common()),
                      precision=sum(correct.values()) / n_lab if n_lab else None,
                      coverage=sum(1 for d, _ in rooms if d.label) / len(rooms) if rooms else None,
                      n=len(pairs), n_classes=len(rooms))
