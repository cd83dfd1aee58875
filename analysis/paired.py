"""The paired non-inferiority comparison, sequential and per segment.

Both models answered every compared photo, so compare them photo by photo: D = (candidate right) -
(champion right), an abstention (`unsure`) and an unusable photo being right for neither. Where the two
labels agree, D = 0 with no verdict needed: the information is in the disagreements. Each compared photo
logged up to the disagreement stratum's frontier contributes X = D * S / r, where S says whether it was
sampled and r is the disagreement stratum's rate (an agreeing photo contributes 0, sampled or not), so
E[X] is the candidate-minus-champion accuracy on the traffic (inverse-probability weighting). X takes
three values, and `analysis.sequential.three_point_bound` bounds its mean at any time from the counts.

Decisions: a test passes when the lower bound is above -margin; it fails when the upper bound is below 0
(shown worse). The analysis passes when the whole traffic passes and so does every cell with at least
`min_count` verdicts (an intersection-union test: each must pass on its own, so no multiplicity correction
is needed for a pass, and a wrong pass has probability <= alpha; a cell of that share with fewer verdicts
holds the analysis until it has them); it fails when the whole or any judged cell fails, with Holm's
step-down over those tests (a wrong fail also <= alpha).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from analysis.sequential import holm, three_point_bound, three_point_wealth
from analysis.spec import AnalysisResult, AnalysisSpec, SegmentResult
from roomsight.verdicts import ReviewSample

MAX_PROJECTION = 64.0  # "needed" looks at most this many times the current evidence ahead


@dataclass
class Counts:
    """The sufficient statistics of one test: compared photos logged up to the frontier, and among their
    reviewed disagreements those only the candidate got right (`wins`) and only the champion (`losses`).
    `verdicts` counts every verdict in the cell, for min_count."""

    rows: int = 0
    wins: int = 0
    losses: int = 0
    verdicts: int = 0

    def scaled(self, r: float) -> Counts:
        return Counts(*(round(v * r) for v in (self.rows, self.wins, self.losses, self.verdicts)))


@dataclass(frozen=True)
class Bounds:
    estimate: float | None
    lower: float
    upper: float


def delta_bounds(c: Counts, alpha: float, scale: float) -> Bounds:
    """Candidate minus champion accuracy: the estimate and its one-sided any-time bounds at alpha each."""
    estimate = scale * (c.wins - c.losses) / c.rows if c.rows else None
    return Bounds(estimate, three_point_bound(c.wins, c.losses, c.rows, scale, alpha, -1),
                  three_point_bound(c.wins, c.losses, c.rows, scale, alpha, 1))


def fail_p_value(c: Counts, scale: float) -> float:
    """Any-time-valid p-value for "the candidate is not worse" (delta >= 0): p <= a exactly when the upper
    bound at level a is below 0."""
    return math.exp(-three_point_wealth(c.wins, c.losses, c.rows, scale, 0.0, 1))


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
            c.rows += row.n if row.settled else 0
    edge = sample.frontier
    for v in sample.verdicts:
        for c in targets(v.cell):
            c.verdicts += 1
            if v.stratum == "disagreement" and edge is not None and v.logged_at <= edge:
                cand, champ = v.usable and v.candidate == v.truth, v.usable and v.champion == v.truth
                c.wins += cand and not champ
                c.losses += champ and not cand
    return whole, cells


def analyse(name: str, spec: AnalysisSpec, sample: ReviewSample) -> AnalysisResult:
    """Pure: the spec's decision on this sample, with the numbers and a one-line summary."""
    from analysis.weighted import model_estimates

    whole, cells = tally(sample, spec)
    result = decide(name, spec, whole, cells, 1 / sample.rates["disagreement"])
    models = {m: e.to_dict() for m, e in model_estimates(sample).items()}
    return AnalysisResult(**{**result.__dict__, "models": models})


def decide(name: str, spec: AnalysisSpec, whole: Counts, cells: dict[tuple[str, ...], Counts], scale: float = 1.0,
           project: bool = True) -> AnalysisResult:
    """The decision from counts (the simulation calls this after every verdict); `scale` is one over the
    disagreement stratum's sampling rate."""
    overall = delta_bounds(whole, spec.alpha, scale)
    share = {k: c.rows / whole.rows if whole.rows else 0.0 for k, c in cells.items()}
    # Cells with min_share of the traffic must each pass; they are judged once they hold min_count verdicts.
    large = {k for k in cells if share[k] >= spec.min_share}
    judged = sorted(k for k in large if cells[k].verdicts >= spec.min_count)
    # Holm over the whole and the judged cells, for "fail"; passes need no correction (see module doc).
    failed = holm([fail_p_value(whole, scale)] + [fail_p_value(cells[k], scale) for k in judged], spec.alpha)
    segs, open_cells = [], []
    for key in sorted(cells):
        c = cells[key]
        b = delta_bounds(c, spec.alpha, scale)
        is_judged = key in judged
        outcome = "inconclusive"
        if is_judged and failed[1 + judged.index(key)]:
            outcome = "fail"
        elif is_judged and b.lower > -spec.segment_margin:
            outcome = "pass"
        segs.append(SegmentResult(",".join(spec.segments), ",".join(key), outcome, b.estimate, b.lower, b.upper,
                                  c.verdicts, round(share[key], 4), is_judged, cell_words(spec.segments, key)))
        if key in large and outcome == "inconclusive":
            open_cells.append(c)
    whole_pass = overall.lower > -spec.margin
    failing = [s for s in segs if s.outcome == "fail"]
    holding = [s for s, key in zip(segs, sorted(cells)) if key in large and s.outcome != "pass"]
    level = f"{1 - spec.alpha:.0%} bounds"
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
            if not first.judged:
                summary = f"waiting on {first.words}: {first.n} of the {spec.min_count} verdicts a cell needs"
            else:
                summary = (f"inconclusive on {first.words}: {_num(first.estimate)}, {level} [{_num(first.lower)}, "
                           f"{_num(first.upper)}], passes once above -{spec.segment_margin:g}")
            summary += f" (and {len(holding) - 1} more cells)" if len(holding) > 1 else ""
    needed = None
    if outcome == "inconclusive" and project:
        needed = _needed(spec, whole, open_cells, whole_pass, scale)
        summary += f"; about {needed} more verdicts" if needed is not None else "; no likely end in sight at this rate"
    return AnalysisResult(name, outcome, summary, overall.estimate, overall.lower, overall.upper, whole.verdicts,
                          needed, tuple(segs), whole.wins + whole.losses)


def _decided(c: Counts, margin: float, alpha: float, scale: float) -> bool:
    b = delta_bounds(c, alpha, scale)
    return b.lower > -margin or b.upper < 0


def _needed(spec: AnalysisSpec, whole: Counts, holding: list[Counts], whole_pass: bool, scale: float) -> int | None:
    """How many more verdicts, if the current shares held, until every open test is decided: the
    smallest scale-up of each open test's counts at which its bounds cross (and a cell reaches min_count),
    by bisection."""
    tests = ([] if whole_pass else [(whole, spec.margin, 0)]) + [(c, spec.segment_margin, spec.min_count) for c in holding]
    worst = 1.0
    for c, margin, least in tests:
        if c.rows == 0 or c.verdicts == 0 or not _decided(c.scaled(MAX_PROJECTION), margin, spec.alpha, scale):
            return None
        lo, hi = 1.0, MAX_PROJECTION
        while hi - lo > 0.02 * lo:
            mid = math.sqrt(lo * hi)
            lo, hi = (lo, mid) if _decided(c.scaled(mid), margin, spec.alpha, scale) else (mid, hi)
        worst = max(worst, hi, least / c.verdicts)
    return max(1, math.ceil((worst - 1) * max(whole.verdicts, 1)))


def _num(v: float | None) -> str:
    return "n/a" if v is None else f"{v:+.3f}"
