"""The paired non-inferiority comparison, sequential and per segment.

Both models answered every compared photo, so compare them photo by photo: D = (candidate right) -
(champion right), an abstention (`unsure`) and an unusable photo being right for neither. Where the two
labels agree, D = 0 with no verdict needed; so the candidate-minus-champion accuracy on the traffic is

    delta = f * p1 * (2q - 1)

with f the share of compared photos whose labels differ (counted in the log), p1 the share of those where
exactly one model is right, and q the share of those won by the candidate (both from verdicts on the
disagreement stratum, which is sampled at one rate, so reviewed disagreements are a fair sample of them).
Each factor gets an any-time-valid confidence sequence (analysis.sequential) over its own stream, read
up to the sample's frontier, with the error rate split between them; delta's bounds follow by interval
arithmetic, so they hold at all times with probability >= 1 - alpha.

Decisions: a test passes when delta's lower bound is above -margin; it fails when the upper bound is
below 0 (shown worse). The analysis passes when the whole traffic passes and so does every cell with at
least `min_count` verdicts (an intersection-union test: no multiplicity correction is needed for a pass);
it fails when the whole or any judged cell fails, with Holm's step-down over those tests.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from analysis.sequential import TIE_PRIOR, bernoulli_cs, holm, p_value_at_least
from analysis.spec import AnalysisResult, AnalysisSpec, SegmentResult
from roomsight.verdicts import ReviewSample

# Shares of alpha spent on each factor: the win share q decides; f and p1 only scale it.
SHARE_Q, SHARE_F, SHARE_P1 = 0.9, 0.05, 0.05
MAX_PROJECTION = 64.0  # "needed" looks at most this many times the current evidence ahead


@dataclass
class Counts:
    """The sufficient statistics of one test: compared photos up to the frontier and the disagreements
    among them, and verdicts on those disagreements (`wins`: only the candidate right; `losses`: only the
    champion). `verdicts` counts every verdict in the cell, for min_count."""

    rows: int = 0
    discordant_rows: int = 0
    reviewed: int = 0
    wins: int = 0
    losses: int = 0
    verdicts: int = 0

    def scaled(self, r: float) -> Counts:
        return Counts(*(round(v * r) for v in (self.rows, self.discordant_rows, self.reviewed, self.wins,
                                               self.losses, self.verdicts)))


@dataclass(frozen=True)
class Bounds:
    estimate: float | None
    lower: float
    upper: float


def delta_bounds(c: Counts, alpha: float) -> Bounds:
    f_lo, f_hi = bernoulli_cs(c.discordant_rows, c.rows, SHARE_F * alpha)
    p1_lo, p1_hi = bernoulli_cs(c.wins + c.losses, c.reviewed, SHARE_P1 * alpha)
    q_lo, q_hi = bernoulli_cs(c.wins, c.wins + c.losses, SHARE_Q * alpha, TIE_PRIOR)
    g_lo, g_hi = 2 * q_lo - 1, 2 * q_hi - 1
    lower = g_lo * (f_hi * p1_hi if g_lo < 0 else f_lo * p1_lo)
    upper = g_hi * (f_lo * p1_lo if g_hi < 0 else f_hi * p1_hi)
    estimate = None
    if c.rows and c.reviewed:
        estimate = c.discordant_rows / c.rows * (c.wins - c.losses) / c.reviewed
    elif c.rows and not c.discordant_rows:
        estimate = 0.0
    return Bounds(estimate, lower, upper)


def fail_p_value(c: Counts) -> float:
    """Any-time p-value for "the candidate is not worse" (q >= 1/2), on the scale of the whole alpha, so
    that p <= a exactly when delta's upper bound at level a is below 0."""
    return min(1.0, p_value_at_least(c.wins, c.wins + c.losses, 0.5, TIE_PRIOR) / SHARE_Q)


def cell_words(keys: tuple[str, ...], values: tuple[str, ...]) -> str:
    v = dict(zip(keys, values))
    text = f"{v['ood']} photos" if "ood" in v else "photos"
    if "predicted_class" in v:
        text += f" the champion calls {v['predicted_class']}"
    if "region" in v:
        text += f" in {v['region']}"
    return text


def tally(sample: ReviewSample, spec: AnalysisSpec) -> tuple[Counts, dict[tuple[str, ...], Counts]]:
    """Counts for the whole traffic and for each cell of the spec's segment keys, from the sample."""
    whole, cells = Counts(), {}

    def targets(cell: object) -> Iterable[Counts]:
        yield whole
        if spec.segments:
            key = tuple(cell.value(k) for k in spec.segments)  # type: ignore[attr-defined]
            yield cells.setdefault(key, Counts())

    for row in sample.counts:
        for c in targets(row.cell):
            if row.settled:
                c.rows += row.n
                c.discordant_rows += row.n if row.discordant else 0
    frontier = sample.frontier if sample.frontier is not None else -math.inf
    for v in sample.verdicts:
        for c in targets(v.cell):
            c.verdicts += 1
            if v.stratum == "disagreement" and v.discordant and v.logged_at <= frontier:
                c.reviewed += 1
                cand, champ = v.candidate == v.truth, v.champion == v.truth
                c.wins += cand and not champ
                c.losses += champ and not cand
    return whole, cells


def analyse(name: str, spec: AnalysisSpec, sample: ReviewSample) -> AnalysisResult:
    """Pure: the spec's decision on this sample, with the numbers and a one-line summary."""
    from analysis.weighted import model_estimates

    whole, cells = tally(sample, spec)
    result = decide(name, spec, whole, cells)
    models = {m: e.to_dict() for m, e in model_estimates(sample).items()}
    return AnalysisResult(**{**result.__dict__, "models": models})


def decide(name: str, spec: AnalysisSpec, whole: Counts, cells: dict[tuple[str, ...], Counts],
           project: bool = True) -> AnalysisResult:
    """The decision from counts (the simulation calls this after every verdict)."""
    overall = delta_bounds(whole, spec.alpha)
    judged = sorted(k for k, c in cells.items() if c.verdicts >= spec.min_count)
    # Holm over the whole and the judged cells, for "fail"; passes need no correction (see module doc).
    failed = holm([fail_p_value(whole)] + [fail_p_value(cells[k]) for k in judged], spec.alpha)
    segs, open_cells = [], []
    for key in sorted(cells):
        c = cells[key]
        b = delta_bounds(c, spec.alpha)
        is_judged = key in judged
        outcome = "inconclusive"
        if is_judged and failed[1 + judged.index(key)]:
            outcome = "fail"
        elif is_judged and b.lower > -spec.segment_margin:
            outcome = "pass"
        segs.append(SegmentResult(",".join(spec.segments), ",".join(key), outcome, b.estimate, b.lower, b.upper,
                                  c.verdicts, is_judged, cell_words(spec.segments, key)))
        if is_judged and outcome == "inconclusive":
            open_cells.append(c)
    whole_pass = overall.lower > -spec.margin
    failing = [s for s in segs if s.outcome == "fail"]
    holding = [s for s in segs if s.judged and s.outcome != "pass"]
    level = f"{1 - spec.alpha:.0%} CS"
    if failed[0] or failing:
        outcome = "fail"
        if failing:
            worst = min(failing, key=lambda s: s.upper)
            summary = (f"candidate worse on {worst.words}: {_num(worst.estimate)}, {level} "
                       f"[{_num(worst.lower)}, {_num(worst.upper)}]")
        else:
            summary = (f"candidate worse than the champion: {_num(overall.estimate)}, {level} "
                       f"[{_num(overall.lower)}, {_num(overall.upper)}]")
    elif whole_pass and not holding:
        outcome = "pass"
        summary = (f"candidate at most {spec.margin:g} below the champion: {_num(overall.estimate)}, {level} "
                   f"[{_num(overall.lower)}, {_num(overall.upper)}]")
        if spec.segments:
            summary += f"; {len(judged)} of {len(cells)} cells judged, each within {spec.segment_margin:g}"
    else:
        outcome = "inconclusive"
        if not whole_pass:
            summary = (f"inconclusive: {_num(overall.estimate)}, {level} [{_num(overall.lower)}, {_num(overall.upper)}]"
                       f", passes once the lower bound is above -{spec.margin:g}")
        else:
            first = holding[0]
            summary = (f"inconclusive on {first.words}: {_num(first.estimate)}, {level} [{_num(first.lower)}, "
                       f"{_num(first.upper)}], passes once above -{spec.segment_margin:g}"
                       + (f" (and {len(holding) - 1} more cells)" if len(holding) > 1 else ""))
    needed = None
    if outcome == "inconclusive" and project:
        needed = _needed(spec, whole, open_cells, whole_pass)
        summary += f"; about {needed} more verdicts" if needed is not None else "; no likely end in sight at this rate"
    return AnalysisResult(name, outcome, summary, overall.estimate, overall.lower, overall.upper, whole.verdicts,
                          needed, tuple(segs), whole.reviewed)


def _decided(c: Counts, margin: float, alpha: float) -> bool:
    b = delta_bounds(c, alpha)
    return b.lower > -margin or b.upper < 0


def _needed(spec: AnalysisSpec, whole: Counts, holding: list[Counts], whole_pass: bool) -> int | None:
    """How many more verdicts, if the current shares held, until every open test is decided: the
    smallest scale-up of each open test's counts at which its bounds cross, by bisection."""
    tests = ([] if whole_pass else [(whole, spec.margin)]) + [(c, spec.segment_margin) for c in holding]
    worst = 1.0
    for c, margin in tests:
        if c.reviewed == 0 or c.rows == 0:
            return None
        if not _decided(c.scaled(MAX_PROJECTION), margin, spec.alpha):
            return None
        lo, hi = 1.0, MAX_PROJECTION
        while hi - lo > 0.02 * lo:
            mid = math.sqrt(lo * hi)
            lo, hi = (lo, mid) if _decided(c.scaled(mid), margin, spec.alpha) else (mid, hi)
        worst = max(worst, hi)
    return max(1, math.ceil((worst - 1) * max(whole.verdicts, 1)))


def _num(v: float | None) -> str:
    return "n/a" if v is None else f"{v:+.3f}"
