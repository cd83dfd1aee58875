"""Pure statistics that turn reviewed verdicts and log counts into pass / fail / inconclusive.

`analyse(name, spec, sample)` reads a `roomsight.verdicts.ReviewSample` (monitoring.review.evidence
builds one with bounded queries) and answers with an `AnalysisResult`: the paired, sequential,
per-segment comparison of the candidate with the champion (analysis.paired) and each model's weighted
accuracy, precision and coverage on the traffic (analysis.weighted). No I/O: imports only the kernel
`roomsight/`, numpy and pydantic.
"""

from analysis.paired import analyse
from analysis.spec import AnalysisResult, AnalysisSpec, Outcome, SegmentResult

__all__ = ["AnalysisResult", "AnalysisSpec", "Outcome", "SegmentResult", "analyse"]
