"""The evidence metrics a plan's gates may name, each with what it means. The providers in
`rollout.evidence` compute them; a test checks that the two lists agree both ways."""

from __future__ import annotations

from monitoring.review.stats import CLASS_BOUND_CONFIDENCE

METRICS: dict[str, str] = {
    "requests": "requests logged during the rollout",
    "compared": "requests where both models answered (shadow comparisons)",
    "agreement": "share of compared requests where the models agree: the same answer (`unsure` against a class is not), "
                 "their confidences within serve.disagreement_gap",
    "candidate_served": "requests the candidate answered",
    "candidate_requests": "requests the candidate ran on, answering or in shadow",
    "candidate_error_rate": "share of candidate calls that failed or timed out, shadow calls included (a shadow step's "
                            "exit judges them; the budget's window leaves out those from before the candidate answered users)",
    "candidate_p99_ms": "candidate model latency, 99th percentile (ms)",
    "champion_p99_ms": "champion model latency, 99th percentile (ms)",
    "champion_requests": "requests the champion answered (its latency logged)",
    "candidate_errors": "candidate calls that failed or timed out",
    # the same since the current step began (the others count the whole rollout, every step so far)
    "step_requests": "requests logged since the current step began",
    "step_compared": "requests where both models answered, since the current step began",
    "step_agreement": "agreement over the requests compared since the current step began",
    "step_candidate_served": "requests the candidate answered since the current step began",
    "step_candidate_requests": "requests the candidate ran on since the current step began",
    "step_candidate_error_rate": "share of candidate calls since the current step began that failed or timed out",
    "step_ood_share": "share of the requests since the current step began flagged out-of-domain",
    # review verdicts (monitoring.review)
    "reviewed": "review-queue items with a verdict in this rollout",
    "candidate_reviewed": "reviewed items the candidate named a class on (not `unsure`), the photo usable",
    "champion_reviewed": "reviewed items the champion named a class on (not `unsure`), the photo usable",
    "decided_disagreements": "reviewed disagreements where exactly one of the two models was right",
    "candidate_precision_lower": "candidate precision, lower end of the Wilson 95% interval, from verdicts",
    "champion_precision_lower": "champion precision, lower end of the Wilson 95% interval, from verdicts",
    "precision_margin": "candidate minus champion precision lower bounds",
    "min_class_precision": "lowest per-class candidate precision among the classes it named, each read by its upper "
                           f"bound, {CLASS_BOUND_CONFIDENCE:.0%} over all the classes named and valid however often it is "
                           "read: a class counts once its verdicts show it low",
    "candidate_win_rate": "on reviewed disagreements, share where the candidate was right and the champion wrong, among those where exactly one was",
    # inputs and drift (monitoring)
    "ood_share": "share of requests flagged out-of-domain (the whole rollout's; step_ood_share: the current step's)",
    "drift_alarm": "1 if the latest drift check over the current step's recent traffic (monitoring.drift_check_window predictions) raised an alarm, else 0 (none if older than monitoring.drift_max_age_s, or if it read traffic from before the current step began)",
    "drifted_share": "share of monitored columns Evidently reports as drifted, in that same check",
    "drift_age_s": "seconds since the drift check that drift_alarm and drifted_share come from",
}
# Which provider computes each metric (rollout.evidence.providers), so that a judgement that names only
# some of them asks only those providers: the guard, every few seconds, needs no p99 walk of the log.
SOURCES: dict[str, frozenset[str]] = {
    "log": frozenset({"requests", "compared", "agreement", "candidate_served", "candidate_requests",
                      "candidate_error_rate", "candidate_p99_ms", "champion_p99_ms", "champion_requests", "candidate_errors",
                      "step_requests", "step_compared", "step_agreement", "step_candidate_served",
                      "step_candidate_requests", "step_candidate_error_rate", "step_ood_share"}),
    "review": frozenset({"reviewed", "candidate_reviewed", "champion_reviewed", "decided_disagreements",
                         "candidate_precision_lower", "champion_precision_lower", "precision_margin",
                         "min_class_precision", "candidate_win_rate"}),
    "drift": frozenset({"ood_share", "drift_alarm", "drifted_share", "drift_age_s"}),
}
# Counts grow as evidence comes in: below a `min` they mean "not yet" (inconclusive), never "failed".
COUNT_METRICS = frozenset({"requests", "compared", "candidate_served", "candidate_requests", "champion_requests", "reviewed",
                           "candidate_reviewed", "champion_reviewed", "decided_disagreements",
                           "step_requests", "step_compared", "step_candidate_served", "step_candidate_requests"})
