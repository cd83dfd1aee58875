"""The review sample: what monitoring hands the analyses (reviewed verdicts with the probability each photo
was sampled, and counts of the logged traffic), as plain frozen dataclasses shared by `monitoring.review`
(which reads them with bounded queries) and `analysis` (which turns them into decisions without I/O).
"""

from __future__ import annotations

from dataclasses import dataclass

UNSURE = "unsure"  # a model's abstention: neither right nor wrong
UNUSABLE = "unusable"  # a reviewer's verdict: not a room photo; no model answer is right
DISPUTED = "disputed"  # three reviewers gave three answers: no truth; counted like UNUSABLE
IN_DOMAIN = "in_domain"  # the `ood` segment value of a photo with no out-of-domain flag

# Sampling strata, in review priority order: each has its own inclusion probability (review.*_share).
STRATA = ("disagreement", "low_confidence", "spot_check")
SEGMENT_KEYS = ("region", "predicted_class", "ood")


@dataclass(frozen=True)
class Cell:
    """Where a logged photo falls: its segment values. `predicted_class` is the champion's answer (the
    reference model's, so segments do not move with the candidate); `ood` is the first out-of-domain flag."""

    region: str
    predicted_class: str
    ood: str

    def value(self, key: str) -> str:
        if key not in SEGMENT_KEYS:
            raise KeyError(f"unknown segment key {key!r}; known: {', '.join(SEGMENT_KEYS)}")
        return str(getattr(self, key))


@dataclass(frozen=True)
class VerdictRow:
    """One reviewed photo with its resolved truth and both models' logged answers."""

    stratum: str  # one of STRATA
    pi: float  # the probability with which this photo was sampled for review
    cell: Cell
    champion: str  # the champion's answer (a class or UNSURE)
    candidate: str
    truth: str  # a class, UNUSABLE or DISPUTED (resolved over one to three reviewers)
    logged_at: float  # when the prediction was logged
    resolved_at: float  # when its truth became final

    @property
    def usable(self) -> bool:
        return self.truth not in (UNUSABLE, DISPUTED)

    @property
    def discordant(self) -> bool:
        return self.champion != self.candidate


@dataclass(frozen=True)
class UnseenRow:
    """A photo sampled for review whose photo was never kept, so no verdict can come (review_unseen)."""

    stratum: str
    cell: Cell
    logged_at: float


@dataclass(frozen=True)
class CountRow:
    """How many compared predictions (both models answered) the log holds in one stratum and cell."""

    stratum: str
    cell: Cell
    discordant: bool  # the two labels differ (abstaining counts as a label)
    champion_answered: bool  # not UNSURE
    candidate_answered: bool
    n: int
    settled: bool  # logged at or before the sample's frontier (read by the sequential comparison)
    common: bool = False  # logged at or before the sample's common frontier (read by the weighted estimates)


@dataclass(frozen=True)
class ReviewSample:
    """Everything the analyses of one rollout read. `frontier`: every photo of the disagreement stratum
    logged up to it was either not sampled, has its truth resolved (the queue serves them oldest first) or is
    `unseen`, so the sequential comparison reads the log and those verdicts up to it as one unbroken stream.
    `common_frontier` (at most `frontier`): the same for every stratum at once, so within each stratum the
    verdicts up to it are all its sampled photos, a draw at the stratum's rate; the weighted estimates
    (analysis.weighted) read the log and the verdicts up to it."""

    rollout_id: str | None
    as_of: float | None
    rates: dict[str, float]  # stratum -> inclusion probability
    counts: tuple[CountRow, ...] = ()
    verdicts: tuple[VerdictRow, ...] = ()
    frontier: float | None = None
    unseen: tuple[UnseenRow, ...] = ()
    common_frontier: float | None = None
