"""Numbers from review verdicts counted as they fall, pure: per-model precision per class (bounded by
`roomsight.binomial`), who was right on disagreements (today's gate metrics), how a photo's verdicts resolve to
its truth, and reviewers' agreement. Estimates weighted to the traffic are `analysis.weighted`. No database here."""

from __future__ import annotations

from dataclasses import dataclass, field

from roomsight.binomial import any_time_upper, wilson
from roomsight.verdicts import DISPUTED, UNSURE, UNUSABLE

ABSTAIN = UNSURE


@dataclass(frozen=True)
class Reviewed:
    """One item with a verdict: the truth and what each model said (None: it did not answer)."""

    truth: str  # a class, UNUSABLE or DISPUTED
    champion: str | None
    candidate: str | None
    region: str
    disagreement: bool


@dataclass(frozen=True)
class Precision:
    correct: int
    n: int

    @property
    def value(self) -> float | None:
        return self.correct / self.n if self.n else None

    @property
    def interval(self) -> tuple[float, float] | None:
        return wilson(self.correct, self.n)

    @property
    def lower(self) -> float | None:
        ci = self.interval
        return ci[0] if ci else None


@dataclass
class ModelPrecision:
    overall: Precision
    per_class: dict[str, Precision] = field(default_factory=dict)


# A class counts once its verdicts show it low: each class by an upper bound that holds however often it is read
# (`any_time_upper`), Bonferroni over the classes named. Read as it stood, one wrong verdict among a class's first
# answers was a class the candidate gets wrong; read as it stood from some count on, a correct verdict could turn
# a pass into a fail, and a watched gate on ten good classes, read after every verdict, rolled back most
# rollouts. So read, a watched gate rolls back a rollout whose every class meets it with probability at most
# 1 - CLASS_BOUND_CONFIDENCE, at any number of looks (while the classes named stay the same).
CLASS_BOUND_CONFIDENCE = 0.95


@dataclass
class Summary:
    reviewed: int
    unusable: int
    champion: ModelPrecision
    candidate: ModelPrecision
    candidate_right: int  # disagreements where only the candidate was right
    champion_right: int  # disagreements where only the champion was right
    both_wrong: int
    disagreements: int

    @property
    def candidate_win_rate(self) -> float | None:
        decided = self.candidate_right + self.champion_right
        return self.candidate_right / decided if decided else None


def precision(items: list[Reviewed], model: str) -> ModelPrecision:
    """Precision of a model's answers (abstentions and unusable photos excluded), overall and per
    predicted class."""
    per: dict[str, list[int]] = {}
    for it in items:
        pred = getattr(it, model)
        if pred is None or pred == ABSTAIN or it.truth in (UNUSABLE, DISPUTED):
            continue
        c = per.setdefault(pred, [0, 0])
        c[0] += pred == it.truth
        c[1] += 1
    per_class = {k: Precision(v[0], v[1]) for k, v in sorted(per.items())}
    return ModelPrecision(Precision(sum(p.correct for p in per_class.values()), sum(p.n for p in per_class.values())),
                          per_class)


def summarize(items: list[Reviewed]) -> Summary:
    cand_right = champ_right = both_wrong = n_dis = 0
    for it in items:
        if not it.disagreement or it.truth in (UNUSABLE, DISPUTED):
            continue
        n_dis += 1
        a, b = it.candidate == it.truth, it.champion == it.truth
        cand_right += a and not b
        champ_right += b and not a
        both_wrong += not a and not b
    return Summary(reviewed=len(items), unusable=sum(it.truth in (UNUSABLE, DISPUTED) for it in items),
                   champion=precision(items, "champion"), candidate=precision(items, "candidate"),
                   candidate_right=cand_right, champion_right=champ_right, both_wrong=both_wrong,
                   disagreements=n_dis)


def by_region(items: list[Reviewed]) -> dict[str, Summary]:
    regions = sorted({it.region for it in items})
    return {r: summarize([it for it in items if it.region == r]) for r in regions}


def gate_metrics(s: Summary) -> dict[str, float | None]:
    """The `rollout.metrics.METRICS` names under "review verdicts"."""
    cand, champ = s.candidate.overall.lower, s.champion.overall.lower
    named = [p for p in s.candidate.per_class.values() if p.n]
    alpha = (1 - CLASS_BOUND_CONFIDENCE) / max(len(named), 1)
    class_values = [any_time_upper(p.correct, p.n, alpha) for p in named]
    return {
        "reviewed": float(s.reviewed),
        "candidate_reviewed": float(s.candidate.overall.n),
        "champion_reviewed": float(s.champion.overall.n),
        "decided_disagreements": float(s.candidate_right + s.champion_right),
        "candidate_precision_lower": cand,
        "champion_precision_lower": champ,
        "precision_margin": cand - champ if cand is not None and champ is not None else None,
        "min_class_precision": min(class_values) if class_values else None,
        "candidate_win_rate": s.candidate_win_rate,
    }


def resolve(given: list[str], wanted: int, reviewers: int | None = None) -> tuple[int, str | None]:
    """The truth of a photo from its verdicts so far: (reviews it now wants, truth or None while it waits).
    Two verdicts that agree decide; two that conflict go to a third reviewer when there is one (`reviewers`:
    how many exist; None: enough), whose verdict decides by majority. Without a third, or when all three
    differ, the photo is DISPUTED: it has no truth, and no model's answer counts as right on it."""
    if len(given) < wanted:
        return wanted, None
    if wanted == 1:
        return 1, given[0]
    if wanted == 2:
        if given[0] == given[1]:
            return 2, given[0]
        if reviewers is None or reviewers >= 3:
            return 3, None
        return 2, DISPUTED
    top = max(set(given), key=given.count)
    return wanted, top if given.count(top) >= 2 else DISPUTED


def cohen_kappa(pairs: list[tuple[str, str]]) -> float | None:
    """Agreement of first and second verdicts on double-reviewed photos beyond chance; None without pairs
    (or when chance agreement is certain)."""
    if not pairs:
        return None
    n = len(pairs)
    observed = sum(a == b for a, b in pairs) / n
    first: dict[str, int] = {}
    second: dict[str, int] = {}
    for a, b in pairs:
        first[a] = first.get(a, 0) + 1
        second[b] = second.get(b, 0) + 1
    chance = sum(first[c] * second.get(c, 0) for c in first) / (n * n)
    return None if chance >= 1 else (observed - chance) / (1 - chance)
