"""Simulated rollouts with a known truth, for the "analysis" benchmark and its reduced test.

One rollout: photos arrive in segment cells (region x ood) with their true room type; each model is right
with its cell's accuracy (errors correlated through a Gaussian copula, so the two models disagree on a
varied share of photos); a wrong answer is `unsure` with the model's abstention rate, else a wrong class.
The review queue samples each photo with its stratum's rate (Poisson, as monitoring.review.sampling does) and
reviewers resolve queued items one by one, disagreements first and oldest first, as the queue orders
them. After every verdict both the gates the limited step had before
issue 31 (`OldGates`: compared, agreement, reviewed, precision_margin) and the paired analysis are read; the first pass promotes, the first fail refuses.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy.stats import norm

from analysis.paired import Counts, decide, outcome_of
from analysis.spec import AnalysisSpec
from analysis.weighted import model_estimates
from monitoring.review.order import due
from roomsight.binomial import wilson
from roomsight.config import ReviewSettings
from roomsight.regions import REGIONS
from roomsight.verdicts import IN_DOMAIN, UNSURE, UNUSABLE, Cell, CountRow, ReviewSample, VerdictRow

CLASSES = ("bathroom", "bedroom", "dining_room", "exterior", "kitchen", "living_room")
OOD = (IN_DOMAIN, "night_time", "low_resolution")
PRIORITY = ("disagreement", "low_confidence", "spot_check")
AGREEMENT_RESERVE = ReviewSettings().agreement_reserve


@dataclass(frozen=True)
class World:
    """One rollout's hidden truth and its review configuration."""

    cells: tuple[Cell, ...]
    shares: np.ndarray  # traffic share per cell
    acc: np.ndarray  # champion accuracy per cell
    delta: np.ndarray  # candidate minus champion accuracy per cell
    rho: float  # correlation of the two models' errors (copula)
    unsure: tuple[float, float]  # P(unsure | wrong): champion, candidate
    rates: dict[str, float]
    rows_per_verdict: float
    unusable: float = 0.01

    def precision(self, model: int) -> float:
        a = self.acc + (self.delta if model else 0)
        answered = a + (1 - a) * (1 - self.unsure[model])
        return float(np.sum(self.shares * a) / np.sum(self.shares * answered))


@dataclass(frozen=True)
class Family:
    """The ranges one family of worlds is drawn from (uniform unless said)."""

    regions: tuple[int, ...]  # how many regions (drawn from these)
    concentration: float  # Dirichlet concentration of the regions' traffic shares
    ood_share: tuple[float, float]
    accuracy: tuple[float, float]  # the champion's in-domain accuracy
    ood_drop: tuple[float, float]  # how much lower on out-of-domain cells
    disagreement_rates: tuple[float, ...]  # review rate of disagreements (drawn from these)
    low_confidence_rate: tuple[float, float]
    spot_check_rate: tuple[float, float]
    rho: tuple[float, float]  # correlation of the two models' errors
    unsure: tuple[float, float]  # P(unsure | wrong), each model
    rows_per_verdict: tuple[float, float]
    spread: float  # sd of the candidate's per-cell deviation around the condition's delta


# `tuning`: everything the analysis plan and the review reserve were chosen on. `held_out`: drawn once for
# the figures, with ranges tuning never saw, and a candidate whose advantage varies from cell to cell.
FAMILIES = {
    "tuning": Family((3,), 4.0, (0.05, 0.25), (0.80, 0.95), (0.05, 0.25), (1.0, 1.0, 0.5), (0.3, 1.0), (0.02, 0.1),
                     (0.5, 0.9), (0.2, 0.6), (3, 15), 0.0),
    "held_out": Family((4, 5), 3.0, (0.08, 0.30), (0.76, 0.94), (0.04, 0.22), (1.0, 0.8, 0.6), (0.25, 0.9), (0.03, 0.12),
                       (0.45, 0.85), (0.15, 0.55), (2.5, 18), 0.015),
}
SIM_REGIONS = (*REGIONS, "sa-east", "me-central")  # the shipped regions first, so the tuning family's are theirs


def make_world(rng: np.random.Generator, condition: str, family: str) -> World:
    """A varied world drawn from `family`'s ranges (FAMILIES), so figures read on the held-out family were
    not tuned on it."""
    f = FAMILIES[family]
    regions = SIM_REGIONS[:f.regions[0] if len(f.regions) == 1 else int(rng.choice(f.regions))]
    ood_share = rng.uniform(*f.ood_share)
    cells = tuple(Cell(r, "", o) for r in regions for o in OOD)
    reg = rng.dirichlet(np.full(len(regions), f.concentration))
    ood = np.array([1 - ood_share, *rng.dirichlet([2.0, 2.0]) * ood_share])
    shares = np.outer(reg, ood).ravel()
    base = rng.uniform(*f.accuracy)
    acc = np.array([base - (0 if c.ood == IN_DOMAIN else rng.uniform(*f.ood_drop)) + rng.normal(0, 0.02) for c in cells])
    acc = np.clip(acc, 0.4, 0.97)
    delta = np.zeros(len(cells))
    rest = np.arange(len(cells))
    if condition in ("worse", "better"):
        delta[:] = -0.05 if condition == "worse" else 0.05
    elif condition == "worse_segment":
        # One cell made to hold exactly 10% of the traffic, the candidate 0.15 worse there only.
        bad = int(rng.integers(len(cells)))
        rest = np.delete(rest, bad)
        shares[rest] *= 0.9 / shares[rest].sum()
        shares[bad] = 0.10
        acc[bad] = max(acc[bad], 0.3 + 0.15)
        delta[bad] = -0.15
    if f.spread:  # per-cell deviations that leave the traffic-weighted delta (of the other cells) unchanged
        noise = rng.normal(0, f.spread, len(rest))
        delta[rest] += noise - np.average(noise, weights=shares[rest])
    delta = np.clip(acc + delta, 0.02, 0.99) - acc
    rates = {"disagreement": float(rng.choice(f.disagreement_rates)), "low_confidence": float(rng.uniform(*f.low_confidence_rate)),
             "spot_check": float(rng.uniform(*f.spot_check_rate))}
    return World(cells, shares, acc, delta, float(rng.uniform(*f.rho)),
                 (float(rng.uniform(*f.unsure)), float(rng.uniform(*f.unsure))), rates,
                 float(rng.uniform(*f.rows_per_verdict)))


@dataclass(frozen=True)
class Traffic:
    """Photos in arrival order with both models' answers (class codes, -1: unsure), the truth, and what
    the review queue does with them; `precision`: each model's true precision on this traffic."""

    cells: tuple[Cell, ...]
    cell: np.ndarray
    truth: np.ndarray
    champion: np.ndarray
    candidate: np.ndarray
    unusable: np.ndarray
    low: np.ndarray  # an agreeing answer below the low-confidence threshold
    rates: dict[str, float]
    rows_per_verdict: float
    precision: tuple[float, float]
    classes: tuple[str, ...] = CLASSES


def simulated(world: World, rng: np.random.Generator, n: int) -> Traffic:
    k = len(CLASSES)
    cell = rng.choice(len(world.cells), size=n, p=world.shares / world.shares.sum())
    u = norm.cdf(rng.multivariate_normal([0, 0], [[1, world.rho], [world.rho, 1]], size=n))
    truth = rng.integers(k, size=n)
    answers = []
    for m in (0, 1):
        acc = (world.acc + (world.delta if m else 0))[cell]
        wrong = (truth + 1 + rng.integers(k - 1, size=n)) % k  # a uniformly drawn other class
        answers.append(np.where(u[:, m] < acc, truth, np.where(rng.random(n) < world.unsure[m], -1, wrong)))
    unusable = rng.random(n) < world.unusable
    right = (answers[0] == truth) & ~unusable
    low = (answers[0] == -1) | (rng.random(n) < np.where(right, 0.05, 0.5))
    return Traffic(world.cells, cell, truth, answers[0], answers[1], unusable, low, world.rates,
                   world.rows_per_verdict, (world.precision(0), world.precision(1)))


class Stream:
    """The traffic as the review queue sees it, with running counts per cell (prefix sums), so that the
    counts up to any frontier are a lookup. `lost`: the share of sampled photos never kept for review, at
    random (`ReviewSample.unseen`)."""

    def __init__(self, t: Traffic, rng: np.random.Generator, lost: float = 0.0) -> None:
        self.t = t
        n = len(t.cell)
        self.cell, self.truth, self.champion, self.candidate, self.unusable = t.cell, t.truth, t.champion, t.candidate, t.unusable
        right = [(a == t.truth) & ~t.unusable for a in (t.champion, t.candidate)]
        self.disc = t.champion != t.candidate
        self.stratum = np.where(self.disc, 0, np.where(t.low, 1, 2))
        self.sampled = rng.random(n) < np.array([t.rates[s] for s in PRIORITY])[self.stratum]
        kept = rng.random(n) >= lost if lost else np.ones(n, bool)
        reviewed = self.disc & self.sampled & kept
        per_cell = np.zeros((len(t.cells), n), dtype=np.int64)
        per_cell[t.cell, np.arange(n)] = 1

        def prefix(x: np.ndarray) -> np.ndarray:
            return np.concatenate([np.zeros((len(t.cells), 1), np.int64), np.cumsum(per_cell * x, axis=1)], axis=1)

        self.prefix = {"rows": prefix(np.ones(n, np.int64)), "wins": prefix(reviewed & right[1] & ~right[0]),
                       "losses": prefix(reviewed & right[0] & ~right[1]),
                       "unseen": prefix(self.disc & self.sampled & ~kept)}
        self.agree_prefix = np.concatenate([[0], np.cumsum(~self.disc)])
        # The review queue: disagreements first, then low confidence, then spot checks; oldest first in each.
        self.queues = [np.nonzero(self.sampled & kept & (self.stratum == s))[0] for s in range(len(PRIORITY))]


@dataclass
class Run:
    analysis: str = "inconclusive"  # first decision of the paired analysis
    analysis_at: int | None = None
    old: bool = False  # today's gates passed at some read
    old_at_400: bool = False  # today's gates read once, after 400 verdicts
    covered: dict[str, bool] = field(default_factory=dict)  # precision intervals at the end, where estimable
    verdicts: int = 0
    needed: int | None = None  # still inconclusive at the end: about how many more verdicts would decide it


class OldGates:
    """Today's limited gates (compared >= 30, agreement >= 0.6, reviewed >= 30, precision_margin >= 0;
    the candidate makes no errors here), from running counts."""

    def __init__(self) -> None:
        self.compared = self.agreeing = self.reviewed = 0
        self.right = [0, 0]
        self.answered = [0, 0]

    def add_verdict(self, st: Stream, i: int) -> None:
        self.reviewed += 1
        for m, answer in enumerate((st.champion[i], st.candidate[i])):
            if answer >= 0 and not st.unusable[i]:
                self.answered[m] += 1
                self.right[m] += int(answer == st.truth[i])

    def passed(self) -> bool:
        if self.compared < 30 or self.agreeing / self.compared < 0.6 or self.reviewed < 30:
            return False
        lows = [wilson(self.right[m], self.answered[m]) for m in (0, 1)]
        return lows[0] is not None and lows[1] is not None and lows[1][0] - lows[0][0] >= 0


def simulate(world: World, spec: AnalysisSpec, rng: np.random.Generator, horizon: int, old_gates: bool = True,
             lost: float = 0.0, unseen_as_ties: bool = False) -> Run:
    """One simulated rollout, read after every verdict up to `horizon` verdicts."""
    traffic = simulated(world, rng, int(world.rows_per_verdict * horizon * 1.1) + 2000)
    return replay(traffic, spec, rng, horizon, old_gates, lost, unseen_as_ties)


def replay(traffic: Traffic, spec: AnalysisSpec, rng: np.random.Generator, horizon: int, old_gates: bool = True,
           lost: float = 0.0, unseen_as_ties: bool = False) -> Run:
    """Review `traffic` verdict by verdict as the queue would, reading the analysis (and today's gates)
    after every verdict, until the analysis has decided and today's gates have passed and been read at 400
    verdicts (or `horizon`). `unseen_as_ties`: read the lost photos as the code before
    `ReviewSample.unseen` did, as sampled photos on which the models tie."""
    st = Stream(traffic, rng, lost)
    verdicts_in = np.zeros(len(traffic.cells), np.int64)
    taken = [0, 0, 0]
    old, run = OldGates(), Run()
    resolved: list[int] = []
    arrived = 0
    n = len(st.cell)
    scale = 1 / traffic.rates["disagreement"]
    for verdicts in range(1, horizon + 1):
        arrived = max(arrived, min(n, math.ceil(verdicts * traffic.rows_per_verdict)))
        waiting = [int(np.searchsorted(q, arrived)) - t for q, t in zip(st.queues, taken)]
        if not any(waiting):  # reviewers wait for the next sampled photo
            nxt = [int(q[t]) for q, t in zip(st.queues, taken) if t < len(q)]
            if not nxt:
                break
            arrived = min(nxt) + 1
            waiting = [int(np.searchsorted(q, arrived)) - t for q, t in zip(st.queues, taken)]
        s = next_stratum(waiting, taken, AGREEMENT_RESERVE)
        i = int(st.queues[s][taken[s]])
        taken[s] += 1
        resolved.append(i)
        verdicts_in[st.cell[i]] += 1
        old.add_verdict(st, i)
        dq = st.queues[0]
        frontier = min(int(dq[taken[0]]), arrived) if taken[0] < len(dq) else arrived
        per_cell = [Counts(*(int(st.prefix[f][c, frontier]) for f in ("rows", "wins", "losses")), int(verdicts_in[c]),
                           int(st.prefix["rows"][c, arrived]), 0 if unseen_as_ties else int(st.prefix["unseen"][c, frontier]))
                    for c in range(len(traffic.cells))]
        whole, cells = Counts(), {}
        for c, counts in zip(traffic.cells, per_cell):
            whole.add(counts)
            if spec.segments:
                cells.setdefault(tuple(c.value(k) for k in spec.segments), Counts()).add(counts)
        old.compared, old.agreeing = arrived, int(st.agree_prefix[arrived])
        if not run.old and old.passed():
            run.old = True
        if verdicts == 400:
            run.old_at_400 = old.passed()
        if run.analysis_at is None:
            outcome = outcome_of(spec, whole, cells, scale)
            if outcome != "inconclusive":
                run.analysis, run.analysis_at = outcome, verdicts
        if run.analysis_at is not None and (not old_gates or (run.old and verdicts >= 400)):
            break
    run.covered = _covered(st, arrived, resolved)
    run.verdicts = len(resolved)
    if run.analysis_at is None and resolved:
        run.needed = decide("sim", spec, whole, cells, scale).needed
    return run


def next_stratum(waiting: list[int], taken: list[int], reserve: float) -> int:
    """The stratum the queue serves next (monitoring.review.order): disagreements first, but every
    (1/reserve)-th claim an agreement if one waits, of the stratum with fewer verdicts (spot checks on a
    tie)."""
    agreements = [k for k in (2, 1) if waiting[k] > 0]
    if agreements and (not waiting[0] or taken[1] + taken[2] < due(reserve, sum(taken) + 1)):
        return min(agreements, key=lambda k: taken[k]) if waiting[0] else agreements[-1]
    return 0


def sample_of(st: Stream, arrived: int, resolved: list[int]) -> ReviewSample:
    """The review sample the SQL provider would read at this moment (for the weighted estimates), its
    common frontier just before the oldest sampled photo of any stratum still open."""
    done = np.zeros(len(st.cell), bool)
    done[resolved] = True
    open_ = [q[(q < arrived) & ~done[q]] for q in st.queues]
    edge = min([int(q[0]) for q in open_ if len(q)], default=arrived)
    return sample_of_rows(st.t.cells, st.t.rates, st.t.classes, st.stratum, st.cell, (st.champion, st.candidate),
                         st.truth, st.unusable, arrived, resolved, edge)


def sample_of_rows(cells: tuple[Cell, ...], rates: dict[str, float], classes: tuple[str, ...], stratum: np.ndarray,
                  cell: np.ndarray, answers: tuple[np.ndarray, np.ndarray], truth: np.ndarray, unusable: np.ndarray,
                  logged: int, resolved: list[int], edge: int) -> ReviewSample:
    """The review sample the SQL provider reads once the first `logged` rows are logged (row i at time i) and
    the `resolved` rows reviewed in that order (verdict j at time j), its common frontier just before row
    `edge`. `stratum` indexes PRIORITY, `cell` cells, `answers` (champion, candidate) and `truth` classes
    (-1: unsure)."""
    champ, cand = answers

    def label(code: int) -> str:
        return UNSURE if code < 0 else classes[code]

    key = np.stack([stratum[:logged], cell[:logged], champ[:logged] != cand[:logged], champ[:logged] >= 0,
                    cand[:logged] >= 0, np.arange(logged) < edge], axis=1)
    uniq, n = np.unique(key, axis=0, return_counts=True)
    counts = tuple(CountRow(PRIORITY[s], cells[c], bool(d), bool(a), bool(b), int(k), True, bool(common))
                   for (s, c, d, a, b, common), k in zip(uniq.tolist(), n.tolist()))
    verdicts = tuple(VerdictRow(PRIORITY[stratum[i]], rates[PRIORITY[stratum[i]]], cells[cell[i]], label(champ[i]),
                                label(cand[i]), UNUSABLE if unusable[i] else label(truth[i]), float(i), float(j))
                     for j, i in enumerate(resolved))
    return ReviewSample(None, None, dict(rates), counts, verdicts, float(logged), (), edge - 0.5)


def _covered(st: Stream, arrived: int, resolved: list[int]) -> dict[str, bool]:
    est = model_estimates(sample_of(st, arrived, resolved))
    out = {}
    for m, name in enumerate(("champion", "candidate")):
        e = est[name].precision
        if e is not None:
            out[name] = e.lower <= st.t.precision[m] <= e.upper
    return out
