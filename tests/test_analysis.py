"""The analysis core, pure (no SQL, no Ray): the any-time bound against an exact computation of its error
rate, Holm against statsmodels, the weighted estimates against a known population, and the decisions
(pass / fail / inconclusive, per segment, in words) on counts and samples."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
from pydantic import ValidationError

from analysis import AnalysisSpec, analyse
from analysis.paired import Counts, decide, tally
from analysis.sequential import bound, holm, log_capitals
from analysis.spec import AnalysisResult
from analysis.weighted import model_estimates
from roomsight.verdicts import UNSURE, UNUSABLE, Cell, CountRow, ReviewSample, UnseenRow, VerdictRow


def test_spec_refuses_bad_values_naming_the_key() -> None:
    for bad, key in (({"margin": 1.5}, "margin"), ({"margin": 0}, "margin"), ({"margin": 0.02, "min_count": 0}, "min_count"),
                     ({"margin": 0.02, "segments": ["region", "weather"]}, "segments"),
                     ({"margin": 0.02, "alpha": 0.7}, "alpha"), ({"margin": 0.02, "colour": 1}, "colour"),
                     # At 0 no cell could be shown small, one no photo has come from included: nothing could pass.
                     ({"margin": 0.02, "min_share": 0}, "min_share")):
        with pytest.raises(ValidationError) as info:
            AnalysisSpec.model_validate(bad)
        assert key in str(info.value)
    assert "weather" in str(pytest.raises(ValidationError, AnalysisSpec, margin=0.02, segments=("weather",)).value)
    spec = AnalysisSpec(margin=0.02, segments=("region", "ood"))
    assert "0.02 below" in spec.describe() and "region x ood cell" in spec.describe()
    # segment_margin bounds the cells' margin from below only where there are cells: an analysis of the
    # whole traffic may have any margin, whatever segment_margin's default.
    assert AnalysisSpec(margin=0.2).margin == 0.2
    assert "segment_margin" in str(pytest.raises(ValidationError, AnalysisSpec, margin=0.2, segments=("region",)).value)


def crossing_probability(p_win: float, p_loss: float, horizon: int, alpha: float, side: int) -> float:
    """Exact P(the bound on the mean ever excludes the true mean within `horizon` observations), by dynamic
    programming over (wins, losses): the brute force the any-time guarantee is checked against."""
    mean = p_win - p_loss
    mass = np.zeros((horizon + 1, horizon + 1))
    mass[0, 0] = 1.0
    crossed = 0.0
    threshold = math.log(1 / alpha)
    for t in range(1, horizon + 1):
        nxt = mass * (1 - p_win - p_loss)
        nxt[1:, :] += mass[:-1, :] * p_win
        nxt[:, 1:] += mass[:, :-1] * p_loss
        mass = nxt
        w, l = np.indices(mass.shape)
        over = (log_capitals(w, l, t, 1.0, mean, side) >= threshold) & (w + l <= t)
        crossed += mass[over].sum()
        mass[over] = 0.0
    return crossed


# (0.1, 0.9, +1): a segment cell's share at 10%, tested against "at least 10%" (+1 in the cell, -1 elsewhere).
@pytest.mark.parametrize("p_win,p_loss,side", [(0.08, 0.08, -1), (0.02, 0.25, -1), (0.3, 0.05, 1), (0.45, 0.45, 1),
                                               (0.1, 0.9, 1)])
def test_betting_test_holds_at_every_time_exactly(p_win: float, p_loss: float, side: int) -> None:
    alpha = 0.1  # a large alpha makes crossings frequent enough to show the test is not vacuous
    p = crossing_probability(p_win, p_loss, 150, alpha, side)
    assert p <= alpha
    # Read at a fixed n the test is conservative, but not absurdly so.
    assert p > 1e-3


def test_bound_follows_the_variance_and_the_count() -> None:
    lo_few, hi_few = bound(10, 10, 200, 1.0, 0.05, -1), bound(10, 10, 200, 1.0, 0.05, 1)
    lo_many, hi_many = bound(100, 100, 2000, 1.0, 0.05, -1), bound(100, 100, 2000, 1.0, 0.05, 1)
    assert lo_few < lo_many < 0 < hi_many < hi_few
    # Mostly zeros (agreements) are nearly free: far narrower than a bound for a +-1 variable would be.
    fixed = 1.645 * math.sqrt(200 / 2000) / math.sqrt(2000)
    hoeffding = 2 * math.sqrt(math.log(20) / (2 * 2000))  # for any variable in [-1, 1]
    assert fixed < -lo_many < 3 * fixed and -lo_many < 0.5 * hoeffding
    assert bound(0, 0, 0, 2.0, 0.05, -1) == -2.0
    lo, hi = bound(0, 40, 100, 1.0, 0.05, -1), bound(0, 40, 100, 1.0, 0.05, 1)
    assert lo < -0.4 < hi < 0


def test_holm_matches_statsmodels() -> None:
    from statsmodels.stats.multitest import multipletests

    rng = np.random.default_rng(3)
    for _ in range(5):
        p = rng.uniform(0, 0.1, size=int(rng.integers(1, 9))).tolist()
        assert holm(p, 0.05) == list(multipletests(p, 0.05, method="holm")[0])


def cell(region: str = "eu-west", ood: str = "in_domain", cls: str = "kitchen") -> Cell:
    return Cell(region, cls, ood)


def verdict(stratum: str, champion: str, candidate: str, truth: str, c: Cell | None = None, t: float = 0.0,
            pi: float = 1.0) -> VerdictRow:
    return VerdictRow(stratum, pi, c or cell(), champion, candidate, truth, t, t + 1)


def complete(counts: tuple[CountRow, ...], verdicts: tuple[VerdictRow, ...]) -> ReviewSample:
    """A sample whose every sampled photo is reviewed: all of it lies before the common frontier."""
    return ReviewSample(None, None, {}, tuple(replace(r, common=True) for r in counts), verdicts, math.inf, (), math.inf)


def test_a_stratum_whose_few_verdicts_all_agree_still_widens_the_interval() -> None:
    """Three right answers out of three say little about a stratum of 1,000 photos; three hundred say more.
    Their sample variance is zero either way, so only the Laplace floor tells them apart."""
    from analysis.weighted import ratio

    populations = {("a", False): 1000, ("b", False): 1000}
    half = [(i % 2, 1) for i in range(50)]
    few = ratio(populations, {("a", False): [(1, 1)] * 3, ("b", False): half})
    many = ratio(populations, {("a", False): [(1, 1)] * 300, ("b", False): half})
    assert few is not None and many is not None and few.value == many.value == 0.75
    assert few.lower < many.lower - 0.1
    assert few.n_eff < few.n / 2  # without the floor the interval would be as narrow as 53 verdicts make it


def test_verdicts_outside_a_ratios_denominator_do_not_narrow_its_stratum() -> None:
    """Three answered verdicts, all right, among 300 of a stratum (the rest unusable, or abstentions for
    precision) say as much about its rate as three verdicts alone: the binomial floor is over the three."""
    from analysis.weighted import ratio

    half = [(i % 2, 1) for i in range(50)]
    among = ratio({("a", False): 100_000, ("b", False): 1000},
                  {("a", False): [(1, 1)] * 3 + [(0, 0)] * 297, ("b", False): half})
    alone = ratio({("a", False): 1000, ("b", False): 1000}, {("a", False): [(1, 1)] * 3, ("b", False): half})
    assert among is not None and alone is not None and among.value == alone.value == 0.75
    assert among.lower == pytest.approx(alone.lower) and among.n_eff == alone.n_eff


def test_weighted_estimates_recover_a_stratified_population() -> None:
    """Disagreements reviewed at 100%, agreements at 5%: raw precision from the queue is far from the
    truth, the weighted estimate is not, and its 95% interval covers the truth in about 95% of samples."""
    rng = np.random.default_rng(7)
    n_dis, n_agree = 300, 2700  # champion right on 40% of disagreements, both right on 97% of agreements
    truth_acc = (0.4 * n_dis + 0.97 * n_agree) / (n_dis + n_agree)
    counts = (CountRow("disagreement", cell(), True, True, True, n_dis, True),
              CountRow("spot_check", cell(), False, True, True, n_agree, True))
    covered, raw_far = 0, 0
    for _ in range(400):
        rows = [verdict("disagreement", "kitchen" if rng.random() < 0.4 else "bedroom", "x", "kitchen") for _ in range(n_dis)]
        k = rng.binomial(n_agree, 0.05)
        rows += [verdict("spot_check", *(("kitchen", "kitchen") if rng.random() < 0.97 else ("bedroom", "bedroom")),
                         "kitchen") for _ in range(k)]
        est = model_estimates(complete(counts, tuple(rows)))["champion"].accuracy
        covered += est.lower <= truth_acc <= est.upper
        raw = sum(v.champion == v.truth for v in rows) / len(rows)
        raw_far += abs(raw - truth_acc) > 0.2
    assert covered / 400 >= 0.92 and raw_far == 400


def test_abstaining_more_lowers_accuracy_and_shows_in_coverage() -> None:
    counts = (CountRow("spot_check", cell(), False, True, True, 80, True),
              CountRow("disagreement", cell(), True, True, False, 20, True))
    rows = tuple([verdict("spot_check", "kitchen", "kitchen", "kitchen")] * 8
                 + [verdict("disagreement", "bedroom", UNSURE, "kitchen")] * 10)
    est = model_estimates(complete(counts, rows))
    assert est["candidate"].coverage == pytest.approx(0.8) and est["champion"].coverage == 1.0
    assert est["candidate"].precision.value == 1.0 > est["champion"].precision.value  # never wrong when answering
    assert est["candidate"].accuracy.value == pytest.approx(0.8)  # but an abstention is not a right answer


def sample_of(verdicts: list[VerdictRow], counts: list[CountRow], frontier: float = 1e9) -> ReviewSample:
    return ReviewSample("r", None, {"disagreement": 1.0, "low_confidence": 1.0, "spot_check": 0.1},
                        tuple(replace(r, common=r.settled) for r in counts), tuple(verdicts), frontier, (), frontier)


def test_tally_reads_disagreements_up_to_the_frontier_and_no_truth_as_nobody_right() -> None:
    spec = AnalysisSpec(margin=0.05, segments=("region",))
    verdicts = [verdict("disagreement", "kitchen", "bedroom", "bedroom", t=1),  # win
                verdict("disagreement", "kitchen", UNSURE, "kitchen", t=2),  # loss: unsure is not right
                verdict("disagreement", "kitchen", "bedroom", UNUSABLE, t=3),  # neither
                verdict("disagreement", "kitchen", "bedroom", "bedroom", t=50),  # beyond the frontier
                verdict("spot_check", "kitchen", "kitchen", "kitchen", cell("us-east"), t=4)]
    counts = [CountRow("disagreement", cell(), True, True, True, 30, True),
              CountRow("spot_check", cell("us-east"), False, True, True, 70, True),
              CountRow("spot_check", cell("us-east"), False, True, True, 900, False)]
    whole, cells = tally(sample_of(verdicts, counts, frontier=10), spec)
    assert (whole.rows, whole.wins, whole.losses, whole.verdicts) == (100, 1, 1, 5)
    assert set(cells) == {("eu-west",), ("us-east",)} and cells[("us-east",)].verdicts == 1
    # A cell's share reads every logged photo, beyond the frontier too: a photo's cell needs no verdict.
    assert (whole.logged, cells[("us-east",)].logged, cells[("eu-west",)].logged) == (1000, 970, 30)


def test_an_unseen_disagreement_is_the_worst_case_for_a_pass_and_for_a_fail() -> None:
    """Read as a tie, an unseen sampled disagreement moved the estimate toward no difference, which a
    non-inferiority pass can ride on. As a loss where a pass is shown and a win where a fail is shown,
    neither error can be bought with lost photos."""
    spec = AnalysisSpec(margin=0.05)
    sample = sample_of([], [CountRow("disagreement", cell(), True, True, True, 100, True)], frontier=10)
    unseen = tuple(UnseenRow("disagreement", cell(), float(t)) for t in (1, 2, 50))  # the third beyond the frontier
    whole, _ = tally(replace(sample, unseen=unseen), spec)
    assert (whole.unseen, whole.wins, whole.losses) == (2, 0, 0)

    clean = decide("q", spec, Counts(rows=400, wins=5, verdicts=5), {})
    lossy = decide("q", spec, Counts(rows=400, wins=5, verdicts=5, unseen=40), {})
    assert clean.outcome == "pass" and lossy.outcome == "inconclusive"
    worse = decide("q", spec, Counts(rows=100, losses=15, verdicts=15), {})
    unsure_worse = decide("q", spec, Counts(rows=100, losses=15, verdicts=15, unseen=10), {})
    assert worse.outcome == "fail" and unsure_worse.outcome == "inconclusive"
    assert unsure_worse.lower < worse.lower and unsure_worse.upper > worse.upper


def test_fail_names_the_segment_in_words() -> None:
    spec = AnalysisSpec(margin=0.03, segments=("region", "ood"))
    cells = {("ap-south", "night_time"): Counts(rows=300, wins=5, losses=60, verdicts=80),
             ("eu-west", "in_domain"): Counts(rows=2700, wins=100, losses=95, verdicts=300)}
    whole = Counts(3000, 105, 155, 380)
    r = decide("quality", spec, whole, cells)
    assert r.outcome == "fail"
    assert r.summary.startswith("candidate worse on night_time photos in ap-south: -0.183, one-sided 96% lower, 95% upper bounds [")
    bad = next(s for s in r.segments if s.value == "ap-south,night_time")
    assert bad.outcome == "fail" and bad.upper < 0 and bad.words == "night_time photos in ap-south"
    assert r.to_dict()["segments"][0]["key"] == "region,ood"


def test_pass_needs_every_large_cell_and_inconclusive_says_how_much_more() -> None:
    spec = AnalysisSpec(margin=0.05, segments=("region",), min_count=20)
    good = {("eu-west",): Counts(2000, 100, 100, 200), ("us-east",): Counts(2000, 100, 100, 200)}
    r = decide("q", spec, Counts(4000, 200, 200, 400), good)
    assert r.outcome == "pass" and r.lower > -0.05 and r.needed is None
    # 9% of the traffic: below min_share (10%), but too close to be shown below it, so it must pass on its
    # own; with the point estimate alone it would have been left out.
    waiting = {**good, ("ap-south",): Counts(400, 30, 60, 90)}
    r = decide("q", spec, Counts(4400, 230, 260, 490), waiting)
    assert r.outcome == "inconclusive" and r.summary.startswith("inconclusive on photos in ap-south: -0.075")
    assert 20 <= r.needed <= 100  # the cell's bound is near -0.14: a tenth more evidence or so
    # Where the models agree on almost every photo of the cell, a few verdicts bound how much worse the
    # candidate can be there: the cell clears before it holds min_count verdicts (which only a fail needs).
    agreeing = {**good, ("ap-south",): Counts(400, 4, 4, 10)}
    assert decide("q", spec, Counts(4400, 204, 204, 410), agreeing).outcome == "pass"
    few = {**good, ("ap-south",): Counts(60, 0, 15, 15)}  # a quarter of the cell lost, but under min_count
    assert decide("q", spec, Counts(4060, 200, 215, 415), few).outcome != "fail"
    tiny = {**good, ("ap-south",): Counts(100, 1, 1, 3)}  # 2% of the traffic: reported, not judged
    assert decide("q", spec, Counts(4100, 201, 201, 403), tiny).outcome == "pass"
    early = decide("q", AnalysisSpec(margin=0.05), Counts(300, 30, 30, 60), {})
    assert early.outcome == "inconclusive" and early.needed and "more verdicts" in early.summary
    later = Counts(300, 30, 30, 60).scaled(1 + early.needed / 60 * 1.1)
    assert decide("q", AnalysisSpec(margin=0.05), later, {}).outcome == "pass"


def test_a_cell_is_shown_small_from_the_photos_logged_past_the_frontier() -> None:
    # Verdicts lag the traffic: up to the frontier the cell's 8% cannot be told from 10%, and its few
    # verdicts cannot show it within segment_margin; the photos logged since (which need no verdict) show
    # it small, so it is not judged and the candidate passes.
    spec = AnalysisSpec(margin=0.05, segments=("region",))

    def reading(logged: tuple[int, int, int]) -> AnalysisResult:
        cells = {("eu-west",): Counts(500, 28, 22, 60, logged[0]), ("us-east",): Counts(420, 22, 18, 50, logged[1]),
                 ("ap-south",): Counts(80, 5, 10, 15, logged[2])}
        return decide("q", spec, Counts(1000, 55, 50, 125, sum(logged)), cells)

    assert reading((500, 420, 80)).outcome == "inconclusive"  # nothing logged past the frontier
    r = reading((4500, 3780, 720))
    assert r.outcome == "pass"
    small = next(s for s in r.segments if s.value == "ap-south")
    assert not small.judged and small.outcome == "inconclusive" and small.share == pytest.approx(0.08)


def test_analyse_end_to_end_on_a_sample() -> None:
    verdicts = ([verdict("disagreement", "kitchen", "bedroom", "bedroom", t=i) for i in range(60)]
                + [verdict("disagreement", "kitchen", "bedroom", "kitchen", t=60 + i) for i in range(40)]
                + [verdict("spot_check", "kitchen", "kitchen", "kitchen", t=200 + i) for i in range(10)])
    counts = [CountRow("disagreement", cell(), True, True, True, 100, True),
              CountRow("spot_check", cell(), False, True, True, 1900, True)]
    r = analyse("quality", AnalysisSpec(margin=0.05), sample_of(verdicts, counts))
    assert r.outcome == "pass" and r.estimate == pytest.approx(20 / 2000) and r.n == 110 and r.discordant == 100
    assert r.models["candidate"]["accuracy"]["value"] > r.models["champion"]["accuracy"]["value"]


def test_a_cell_not_cleared_shows_its_lower_bound_at_the_level_it_is_judged() -> None:
    """A cell's delta is tested at its part of alpha, not at alpha: read at alpha, its lower bound stood above
    -segment_margin while the summary said it passes once above -segment_margin."""
    spec = AnalysisSpec(margin=0.05, segments=("region",))
    good = {("eu-west",): Counts(2000, 100, 100, 200), ("us-east",): Counts(2000, 100, 100, 200)}
    cells = {**good, ("ap-south",): Counts(400, 30, 59, 90)}
    r = decide("q", spec, Counts(4400, 230, 259, 490), cells)
    held = next(s for s in r.segments if s.value == "ap-south")
    assert r.outcome == held.outcome == "inconclusive" and held.judged
    assert held.lower <= -spec.segment_margin
    assert r.summary.startswith("inconclusive on photos in ap-south: -0.072, one-sided 96% lower, 95% upper bounds [")


def test_a_cell_no_photo_has_come_from_must_be_shown_small_before_a_pass() -> None:
    """Only the cells seen were tested: at a wide margin the whole passes on a few dozen photos, among which
    a cell of min_share, worse there, may well be missing. A cell with no photo is cleared as any cell is,
    by being shown small from the photos logged."""
    spec = AnalysisSpec(margin=0.3, segment_margin=0.3, segments=("region",))
    early = decide("q", spec, Counts(30, 0, 0, 5), {("eu-west",): Counts(30, 0, 0, 5)})
    assert decide("q", AnalysisSpec(margin=0.3), Counts(30, 0, 0, 5), {}).outcome == "pass"
    assert early.outcome == "inconclusive" and "no photo has come from yet" in early.summary and early.needed
    later = decide("q", spec, Counts(200, 0, 0, 5), {("eu-west",): Counts(200, 0, 0, 5)})
    assert later.outcome == "pass"


def test_bounds_stay_within_what_an_accuracy_difference_can_be_and_no_verdicts_is_said() -> None:
    """With disagreements sampled at half, a row stands for two: the raw bound spans +-2, which the summary
    printed as a difference of accuracy. And an analysis with no verdict yet said no end was in sight."""
    r = decide("q", AnalysisSpec(margin=0.05), Counts(rows=3, verdicts=1), {}, scale=2.0)
    assert -1.0 <= r.lower < r.upper <= 1.0 and "[-1.000, +1.000]" in r.summary
    empty = decide("q", AnalysisSpec(margin=0.05), Counts(rows=40), {})
    assert empty.outcome == "inconclusive" and empty.summary.endswith("; no verdicts yet")


def test_the_estimate_stays_within_what_an_accuracy_difference_can_be_as_its_bounds_do() -> None:
    """Sampled at half, two candidate wins among three rows read as a difference of accuracy of +1.333,
    outside its own bounds, overall and in a cell."""
    spec = AnalysisSpec(margin=0.05, segments=("region",))
    r = decide("q", spec, Counts(rows=3, wins=2, verdicts=2), {("eu-west",): Counts(rows=3, wins=2, verdicts=2)}, scale=2.0)
    assert r.estimate == 1.0 and r.lower <= r.estimate <= r.upper and "+1.333" not in r.summary
    assert r.segments[0].estimate == 1.0


def test_holm_steps_down_and_stops_at_the_first_p_value_over_its_level() -> None:
    """Holm rejects more than Bonferroni (each p-value against alpha over the hypotheses left), and once one
    p-value is over its level none after it is rejected, however small against its own."""
    assert holm([0.01, 0.02, 0.03], 0.05) == [True, True, True]  # Bonferroni: only the first
    assert holm([0.045, 0.02, 0.04], 0.05) == [False, False, False]  # 0.02 > 0.05/3: 0.045 < 0.05 waits in vain


def test_a_verdict_or_an_unseen_photo_logged_at_the_frontier_is_read_and_unseen_agreements_are_not() -> None:
    """The frontier is the time up to which every sampled disagreement is resolved, and its rows are counted
    settled: a disagreement logged at it is one of them. An unseen photo of an agreeing stratum has no
    difference to hide and is no worst case."""
    spec = AnalysisSpec(margin=0.05)
    sample = sample_of([verdict("disagreement", "kitchen", "bedroom", "bedroom", t=10)],
                       [CountRow("disagreement", cell(), True, True, True, 100, True)], frontier=10)
    unseen = (UnseenRow("disagreement", cell(), 10.0), UnseenRow("spot_check", cell(), 5.0),
              UnseenRow("low_confidence", cell(), 6.0))
    whole, _ = tally(replace(sample, unseen=unseen), spec)
    assert (whole.wins, whole.losses, whole.unseen) == (1, 0, 1)


def test_a_cell_shown_worse_fails_the_analysis_while_the_whole_is_not() -> None:
    """A tenth of the traffic, worse there, is a fail of the rollout although the whole's bound still
    reaches above 0: that is what the segments are for."""
    spec = AnalysisSpec(margin=0.05, segments=("region",), min_count=20)
    cells = {("eu-west",): Counts(1800, 100, 100, 200), ("us-east",): Counts(1800, 100, 100, 200),
             ("ap-south",): Counts(400, 5, 60, 80)}
    r = decide("q", spec, Counts(4000, 205, 260, 480), cells)
    assert r.upper > 0 and r.outcome == "fail" and r.summary.startswith("candidate worse on photos in ap-south")


def test_a_cell_can_fail_from_min_count_verdicts_on() -> None:
    spec = AnalysisSpec(margin=0.05, segments=("region",), min_count=20)
    good = {("eu-west",): Counts(1800, 100, 100, 200), ("us-east",): Counts(1800, 100, 100, 200)}
    r = decide("q", spec, Counts(4000, 200, 220, 420), {**good, ("ap-south",): Counts(400, 0, 20, 20)})
    assert r.outcome == "fail" and next(s for s in r.segments if s.value == "ap-south").outcome == "fail"


def test_a_cell_is_shown_small_only_at_its_part_of_alpha() -> None:
    """7% of 1,000 photos is below min_share (10%) at alpha but not at SHARE_PART * alpha, the part a cell's
    share is tested at: shown small at alpha, this cell, worse there, was left out and the whole passed."""
    spec = AnalysisSpec(margin=0.05, segments=("region",))
    cells = {("eu-west",): Counts(465, 5, 5, 20), ("us-east",): Counts(465, 5, 5, 20), ("ap-south",): Counts(70, 0, 8, 8)}
    r = decide("q", spec, Counts(1000, 10, 18, 48), cells)
    held = next(s for s in r.segments if s.value == "ap-south")
    assert r.outcome == "inconclusive" and held.judged and held.outcome == "inconclusive"


def test_an_analysis_that_no_amount_of_the_same_evidence_decides_says_no_end_is_in_sight() -> None:
    """A tenth of the sampled disagreements unseen keeps a pass (read as losses) and a fail (read as wins) out of
    reach at any scale: no count of more verdicts is promised."""
    r = decide("q", AnalysisSpec(margin=0.05), Counts(rows=1000, verdicts=10, unseen=100), {})
    assert r.outcome == "inconclusive" and r.needed is None and r.summary.endswith("; no likely end in sight at this rate")


def test_a_fail_names_the_cell_shown_worst() -> None:
    spec = AnalysisSpec(margin=0.05, segments=("region",), min_count=20)
    cells = {("eu-west",): Counts(1800, 100, 100, 200), ("us-east",): Counts(1800, 5, 90, 100),
             ("ap-south",): Counts(400, 5, 60, 80)}
    r = decide("q", spec, Counts(4000, 110, 250, 380), cells)
    failing = sorted((s.upper, s.value) for s in r.segments if s.outcome == "fail")
    assert len(failing) == 2 and failing[0][1] == "ap-south"
    assert r.summary.startswith("candidate worse on photos in ap-south")


def test_the_estimate_is_scaled_by_the_disagreement_sampling_rate() -> None:
    """With disagreements sampled at half, each reviewed one stands for two: 30 wins and 10 losses over 1,000
    photos are a difference of +0.04, not +0.02."""
    r = decide("q", AnalysisSpec(margin=0.05), Counts(rows=1000, wins=30, losses=10, verdicts=40), {}, scale=2.0)
    assert r.estimate == pytest.approx(0.04) and "+0.040" in r.summary


def test_a_stratum_with_traffic_and_no_verdict_yet_leaves_no_estimate() -> None:
    """Its photos would otherwise vanish from the weighted estimate: the others' rate would stand for them."""
    counts = (CountRow("disagreement", cell(), True, True, True, 20, True),
              CountRow("spot_check", cell(), False, True, True, 80, True))
    rows = tuple([verdict("disagreement", "kitchen", "bedroom", "kitchen")] * 5)
    est = model_estimates(complete(counts, rows))
    assert est["champion"].accuracy is None and est["candidate"].precision is None


def test_unusable_photos_are_outside_accuracy_and_precision() -> None:
    counts = (CountRow("spot_check", cell(), False, True, True, 100, True),)
    rows = tuple([verdict("spot_check", "kitchen", "kitchen", "kitchen")] * 5
                 + [verdict("spot_check", "kitchen", "kitchen", UNUSABLE)] * 5)
    est = model_estimates(complete(counts, rows))["champion"]
    assert est.accuracy.value == est.precision.value == 1.0 and est.accuracy.n == est.precision.n == 5


def test_no_compared_traffic_has_no_coverage_not_a_coverage_of_0() -> None:
    assert model_estimates(complete((), ()))["candidate"].coverage is None


def test_weighting_never_makes_more_effective_verdicts_than_there_are() -> None:
    from analysis.weighted import ratio

    # Two strata, one all right and one all wrong: the weighted variance is small, but 20 verdicts are 20.
    r = ratio({("a", False): 1000, ("b", False): 1000}, {("a", False): [(1, 1)] * 10, ("b", False): [(0, 1)] * 10})
    assert r is not None and r.value == 0.5 and r.n_eff <= r.n == 20


def test_a_stratum_of_few_verdicts_widens_the_interval_when_every_verdict_is_right() -> None:
    """One verdict stands for 99.9% of the traffic, a thousand for the rest: all right, the rate of the big
    stratum is still known from one photo. Read at 1,001 verdicts the interval was [0.996, 1], and with that
    stratum at 50% it held the truth only when that one photo happened to be right."""
    from analysis.weighted import ratio

    populations = {("a", False): 100_000, ("b", False): 100}
    lopsided = ratio(populations, {("a", False): [(1, 1)], ("b", False): [(1, 1)] * 1000})
    assert lopsided is not None and lopsided.value == 1.0
    assert lopsided.n_eff < 2 and lopsided.lower < 0.5
    # Verdicts in proportion to the traffic cost nothing: every one still counts.
    even = ratio({("a", False): 1000, ("b", False): 1000}, {("a", False): [(1, 1)] * 10, ("b", False): [(1, 1)] * 10})
    assert even is not None and even.n_eff == even.n == 20

def test_a_cells_share_shown_is_of_every_photo_logged_not_only_those_up_to_the_frontier() -> None:
    """The share is what a cell is judged small on, and it reads past the frontier: shown from the settled rows
    alone, a cell at 5% of the traffic read 50% while its verdicts lagged."""
    spec = AnalysisSpec(margin=0.05, segments=("region",))
    cells = {("eu-west",): Counts(100, 5, 5, 20, logged=1900), ("ap-south",): Counts(100, 5, 5, 20, logged=100)}
    r = decide("q", spec, Counts(200, 10, 10, 40, logged=2000), cells)
    assert {s.value: s.share for s in r.segments} == {"eu-west": 0.95, "ap-south": 0.05}


def test_an_analysis_without_segments_has_no_cells() -> None:
    """The whole is its only test: a cell of no keys would be the whole again, tested twice (Holm halving the
    fail's alpha) and shown as a segment."""
    counts = [CountRow("disagreement", cell(), True, True, True, 100, True)]
    sample = sample_of([verdict("disagreement", "kitchen", "bedroom", "bedroom", t=1)], counts)
    assert tally(sample, AnalysisSpec(margin=0.05))[1] == {}
    assert analyse("q", AnalysisSpec(margin=0.05), sample).segments == ()


def test_the_weighted_estimates_read_only_the_traffic_every_stratum_is_reviewed_up_to() -> None:
    """The queue serves spot checks oldest first: by t = 50 the 40 logged were reviewed (all right), those
    logged since wait (all wrong alike, as night photos are). Read over every photo logged, the early
    verdicts stood for the late photos (0.67 where the whole window holds 0.33); up to the common frontier
    the estimate is of the early traffic and says so."""
    early = [verdict("spot_check", "kitchen", "kitchen", "kitchen", t=i) for i in range(40)]
    early += [verdict("disagreement", "kitchen", "bedroom", "kitchen", t=40 + i) for i in range(10)]
    late = [verdict("disagreement", "bedroom", "kitchen", "kitchen", t=50 + i) for i in range(50)]
    counts = [CountRow("spot_check", cell(), False, True, True, 40, True, True),
              CountRow("spot_check", cell(), False, True, True, 50, True, False),  # queued, not reviewed
              CountRow("disagreement", cell(), True, True, True, 10, True, True),
              CountRow("disagreement", cell(), True, True, True, 50, True, False)]
    est = model_estimates(ReviewSample("r", None, {s: 1.0 for s in ("disagreement", "low_confidence", "spot_check")},
                                       tuple(counts), tuple(early + late), 200.0, (), 49.5))["champion"]
    assert est.covers_to == 49.5 and est.to_dict()["covers_to"] == 49.5
    assert est.accuracy.value == 1.0 and est.accuracy.n == 50  # the late disagreements wait for the spot checks
    assert est.coverage == 1.0  # counted in the whole log: it needs no verdict


def test_no_common_frontier_yet_leaves_no_estimate() -> None:
    """Before the first fill nothing is known complete: the verdicts are not read as a fair sample of the log."""
    counts = (CountRow("spot_check", cell(), False, True, True, 100, True),)
    rows = tuple([verdict("spot_check", "kitchen", "kitchen", "kitchen")] * 5)
    est = model_estimates(ReviewSample(None, None, {}, counts, rows))["champion"]
    assert est.accuracy is None and est.covers_to is None and est.coverage == 1.0
