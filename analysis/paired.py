"""The paired non-inferiority comparison, sequential and per segment.

Both models answered every compared photo, so compare them photo by photo: D = (candidate right) -
(champion right), an abstention (`unsure`) and an unusable photo being right for neither. Where the two
labels agree, D = 0 with no verdict needed: the information is in the disagreements. Each compared photo
logged up to the disagreement stratum's frontier contributes X = D * S / r, where S says whether it was
sampled and r is the disagreement stratum's rate (an agreeing photo contributes 0, sampled or not), so
E[X] is the candidate-minus-champion accuracy on the traffic (inverse-probability weighting). X takes
three values, and `analysis.sequential` tests its mean at any time from the counts.

The error each decision carries, however often the analysis is read:
- pass: the whole traffic must be shown at most `margin` worse (its capital against "worse by margin or
  more" reaches 1/alpha), and every cell of the segment keys must be cleared, against H: "the cell holds
  at least `min_share` of the compared traffic and the candidate is worse there by `segment_margin` or
  more". Either half of H may be rejected: the share, at SHARE_PART * alpha (the cell's photos as +1,
  every other photo as -1, against a mean of 2 min_share - 1 or more), which clears the plainly small
  cells; or the delta, at (1 - SHARE_PART) * alpha (the mean of X within the cell against -segment_margin
  or less). Under H each rejection has probability at most its part of alpha, so a cell is wrongly
  cleared with probability at most alpha (Bonferroni, valid although the two read different streams).
  A photo's cell needs no verdict, so the share reads every compared photo logged (`logged`), not only
  those up to the frontier: where verdicts lag the traffic, that is most of the evidence for a cell's
  share. Hence if the whole is worse by margin, or any cell holding min_share of the traffic is worse by
  segment_margin, a pass has probability at most alpha (an intersection-union test: each of those must
  be rejected on its own, so no correction over the cells is needed). A cell's share is shown, never
  assumed from its point estimate: a cell of exactly min_share is judged whatever its sample says, and a
  cell no photo has come from yet is shown small from none of the photos logged before a pass. The
  delta needs no fewest count to hold its error: where the two models agree on almost every photo of a
  cell, its few reviewed disagreements bound how much worse the candidate can be there, and the cell
  clears;
- fail: the whole or a cell with min_count verdicts is shown worse than the champion at all (its upper
  bound below 0), by Holm's step-down over the any-time p-values of the whole and of every cell seen: if
  the candidate is worse nowhere, a fail has probability at most alpha (for the cells seen when it fails).

A sampled disagreement whose photo was never kept (`ReviewSample.unseen`) has no verdict and never will.
Each is read as a loss for the candidate where a test would show it no worse, and as a win where a test
would show it worse: both errors above hold whatever its truth, and photos lost in numbers keep a rollout
inconclusive rather than pass it on ties.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, fields, replace

from analysis.sequential import bound, holm, log_capital, p_value
from analysis.spec import AnalysisResult, AnalysisSpec, Outcome, SegmentResult
from roomsight.verdicts import ReviewSample

MAX_PROJECTION = 64.0  # "needed" looks at most this many times the current evidence ahead
SHARE_PART = 0.2  # of alpha, for showing a cell holds less than min_share of the traffic


@dataclass
class Counts:
    """The sufficient statistics of one test: compared photos logged up to the frontier (`rows`), and
    among their reviewed disagreements those only the candidate got right (`wins`) and only the champion
    (`losses`); their sampled disagreements no reviewer can see (`unseen`); every verdict in the cell
    (`verdicts`: a cell fails only from min_count on); every compared photo logged, up to the frontier or
    not (`logged`, at least `rows`: what a cell's share is read from)."""

    rows: int = 0
    wins: int = 0
    losses: int = 0
    verdicts: int = 0
    logged: int = 0
    unseen: int = 0

    def __post_init__(self) -> None:
        self.logged = max(self.logged, self.rows)

    def scaled(self, f: float) -> Counts:
        return Counts(*(round(getattr(self, k.name) * f) for k in fields(self)))

    def add(self, other: Counts) -> None:
        for k in fields(self):
            setattr(self, k.name, getattr(self, k.name) + getattr(other, k.name))


def _worst(c: Counts, side: int) -> tuple[int, int]:
    """Wins and losses with each unseen disagreement read as the worst case for what a test would show: a
    loss for the candidate where it is shown no worse than m (side -1), a win where it is shown worse (side
    +1). Each such photo is a draw of the sample whose D is unknown: left out, it would stand as a tie."""
    return (c.wins, c.losses + c.unseen) if side < 0 else (c.wins + c.unseen, c.losses)


def _capital(c: Counts, scale: float, m: float, side: int) -> float:
    return log_capital(*_worst(c, side), c.rows, scale, m, side)


def _p_worse(c: Counts, scale: float) -> float:
    """The any-time p-value against "the candidate is no worse" (a fail rejects it)."""
    return p_value(*_worst(c, 1), c.rows, scale, 0.0, 1)


def _bound(c: Counts, scale: float, alpha: float, side: int) -> float:
    # A row's difference spans +-scale (one over the sampling rate), the accuracy difference only +-1: a bound
    # past that says nothing more, and read as one it looked like a difference of 2.
    return max(-1.0, min(1.0, bound(*_worst(c, side), c.rows, scale, alpha, side)))


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
            c.logged += row.n
    edge = sample.frontier
    for v in sample.verdicts:
        for c in targets(v.cell):
            c.verdicts += 1
            if v.stratum == "disagreement" and edge is not None and v.logged_at <= edge:
                cand, champ = v.usable and v.candidate == v.truth, v.usable and v.champion == v.truth
                c.wins += cand and not champ
                c.losses += champ and not cand
    for u in sample.unseen:
        if u.stratum == "disagreement" and edge is not None and u.logged_at <= edge:
            for c in targets(u.cell):
                c.unseen += 1
    return whole, cells


def analyse(name: str, spec: AnalysisSpec, sample: ReviewSample) -> AnalysisResult:
    """Pure: the spec's decision on this sample, with the numbers and a one-line summary."""
    from analysis.weighted import model_estimates

    whole, cells = tally(sample, spec)
    result = decide(name, spec, whole, cells, 1 / sample.rates["disagreement"])
    return replace(result, models={m: e.to_dict() for m, e in model_estimates(sample).items()})


@dataclass(frozen=True)
class _Cell:
    key: tuple[str, ...]
    counts: Counts
    small: bool  # shown to hold less than min_share of the traffic: not judged
    cleared: bool  # small, or shown at most segment_margin worse (see the module doc)
    failed: bool


@dataclass(frozen=True)
class _Tests:
    """Every test of one reading: the whole's pass and fail, and each cell's."""

    whole_passed: bool  # shown at most `margin` worse
    whole_failed: bool
    cells: list[_Cell]
    absent_small: bool  # a cell no photo has come from is shown to hold less than min_share (or no segments)

    @property
    def outcome(self) -> Outcome:
        if self.whole_failed or any(c.failed for c in self.cells):
            return "fail"
        return ("pass" if self.whole_passed and self.absent_small and all(c.cleared for c in self.cells)
                else "inconclusive")


def _tests(spec: AnalysisSpec, whole: Counts, cells: dict[tuple[str, ...], Counts], scale: float) -> _Tests:
    keys = sorted(cells)
    threshold = math.log(1 / spec.alpha)
    share_level, delta_level = threshold - math.log(SHARE_PART), threshold - math.log1p(-SHARE_PART)
    ps = [_p_worse(whole, scale)] + [_p_worse(cells[k], scale) if cells[k].verdicts >= spec.min_count else 1.0
                                     for k in keys]
    failed = holm(ps, spec.alpha)
    out = []

    def small(logged: int) -> bool:
        # The share as the mean of +1 (in the cell) / -1 (elsewhere): at least min_share is a mean of 2 min_share - 1.
        return log_capital(logged, whole.logged - logged, whole.logged, 1.0, 2 * spec.min_share - 1, 1) >= share_level

    for k, f in zip(keys, failed[1:]):
        c = cells[k]
        is_small = small(c.logged)
        within = _capital(c, scale, -spec.segment_margin, -1) >= delta_level
        out.append(_Cell(k, c, is_small, is_small or within, f))
    # A cell of the segment keys that no photo has come from yet is one of the cells a pass must clear: left
    # out, a cell of min_share worse by segment_margin went untested whenever the whole passed on few photos.
    absent_small = not spec.segments or small(0)
    return _Tests(_capital(whole, scale, -spec.margin, -1) >= threshold, failed[0], out, absent_small)


def outcome_of(spec: AnalysisSpec, whole: Counts, cells: dict[tuple[str, ...], Counts], scale: float) -> Outcome:
    """The decision alone, without bounds or words (what the simulation reads after every verdict)."""
    return _tests(spec, whole, cells, scale).outcome


def decide(name: str, spec: AnalysisSpec, whole: Counts, cells: dict[tuple[str, ...], Counts],
           scale: float = 1.0) -> AnalysisResult:
    """The decision from counts, with bounds, words and, when inconclusive, a projection; `scale` is one
    over the disagreement stratum's sampling rate."""
    tests = _tests(spec, whole, cells, scale)
    tested = tests.cells
    level = f"one-sided {1 - spec.alpha:.0%} bounds"  # each holds on its own: the pair is a 1 - 2 alpha interval
    # A cell clears on its delta at its part of alpha only (the module doc): read at alpha, the lower bound of a
    # cell not cleared could stand above -segment_margin.
    cell_alpha = (1 - SHARE_PART) * spec.alpha
    cell_level = f"one-sided {1 - cell_alpha:.0%} lower, {1 - spec.alpha:.0%} upper bounds"

    def bounds(c: Counts, lower_alpha: float) -> tuple[float | None, float, float]:
        # Clipped as the bounds are: on few rows sampled at a rate below 1 it stood outside them, above 1.
        est = max(-1.0, min(1.0, scale * (c.wins - c.losses) / c.rows)) if c.rows else None
        return est, _bound(c, scale, lower_alpha, -1), _bound(c, scale, spec.alpha, 1)

    segs = []
    for c in tested:
        est, lo, hi = bounds(c.counts, cell_alpha)
        cell_outcome: Outcome = "fail" if c.failed else "pass" if c.cleared and not c.small else "inconclusive"
        share = c.counts.logged / whole.logged if whole.logged else 0.0
        segs.append(SegmentResult(",".join(spec.segments), ",".join(c.key), cell_outcome, est, lo, hi, c.counts.verdicts,
                                  round(share, 4), not c.small, cell_words(spec.segments, c.key)))
    est, lo, hi = bounds(whole, spec.alpha)
    holding = [(s, c) for s, c in zip(segs, tested) if not c.cleared]
    outcome = tests.outcome
    if outcome == "fail":
        failing = [s for s in segs if s.outcome == "fail"]
        worst = min(failing, key=lambda s: s.upper) if failing else None
        summary = (f"candidate worse on {worst.words}: {_num(worst.estimate)}, {cell_level} [{_num(worst.lower)}, "
                   f"{_num(worst.upper)}]"
                   if worst else f"candidate worse than the champion: {_num(est)}, {level} [{_num(lo)}, {_num(hi)}]")
    elif outcome == "pass":
        summary = f"candidate at most {spec.margin:g} below the champion: {_num(est)}, {level} [{_num(lo)}, {_num(hi)}]"
        if spec.segments:
            summary += (f"; {sum(s.judged for s in segs)} of {len(segs)} cells judged, each within {spec.segment_margin:g}"
                        f" (the others shown to hold under {spec.min_share:.0%} of the traffic)")
    else:
        if not tests.whole_passed:
            summary = (f"inconclusive: {_num(est)}, {level} [{_num(lo)}, {_num(hi)}], passes once the lower bound is "
                       f"above -{spec.margin:g}")
        elif not holding:
            summary = (f"inconclusive: {whole.logged} compared photos, too few to show that a {' x '.join(spec.segments)} "
                       f"cell no photo has come from yet holds under {spec.min_share:.0%} of the traffic")
        else:
            first, _ = holding[0]
            summary = (f"inconclusive on {first.words}: {_num(first.estimate)}, {cell_level} [{_num(first.lower)}, "
                       f"{_num(first.upper)}] from {first.n} verdicts, passes once above -{spec.segment_margin:g}")
            summary += f" (and {len(holding) - 1} more cells)" if len(holding) > 1 else ""
    if whole.unseen:
        summary += (f"; {whole.unseen} sampled disagreement{'s' if whole.unseen > 1 else ''} never kept for review, "
                    "each read as the worst case")
    needed = None
    if outcome == "inconclusive":
        needed = _needed(spec, whole, cells, scale)
        summary += (f"; about {needed} more verdicts" if needed is not None
                    else "; no verdicts yet" if whole.verdicts == 0 else "; no likely end in sight at this rate")
    return AnalysisResult(name, outcome, summary, est, lo, hi, whole.verdicts, needed, tuple(segs),
                          whole.wins + whole.losses)


def _needed(spec: AnalysisSpec, whole: Counts, cells: dict[tuple[str, ...], Counts], scale: float) -> int | None:
    """How many more verdicts, if the evidence kept coming as it has, until the analysis decides: the
    smallest scale-up of every count at which it does, by bisection."""
    def decided(f: float) -> bool:
        return outcome_of(spec, whole.scaled(f), {k: c.scaled(f) for k, c in cells.items()}, scale) != "inconclusive"

    if whole.rows == 0 or whole.verdicts == 0 or not decided(MAX_PROJECTION):
        return None
    lo, hi = 1.0, MAX_PROJECTION
    while hi - lo > 0.02 * lo:
        mid = math.sqrt(lo * hi)
        lo, hi = (lo, mid) if decided(mid) else (mid, hi)
    return max(1, math.ceil((hi - 1) * whole.verdicts))


def _num(v: float | None) -> str:
    return "n/a" if v is None else f"{v:+.3f}"
