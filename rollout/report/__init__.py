"""The rollout report: one self-contained HTML page that says whether the candidate is ready, with the
plan, each condition's outcome and numbers, segments, plots over time, drift per region and the photos
that decided it; as a file (`rollout report`), attached to each recorded event's MLflow run, and live on
the read-only page of `rollout api`.

inputs  what the decision was (ReportInput: state, plan steps, condition outcomes, evidence, events)
series  traffic over time, by SQL GROUP BY over time buckets
reviews reviewed precision over time and per segment (monitoring.review.stats)
thumbs  the photos that decided it, downscaled and inlined
regional_drift  the drift headline per region (monitoring.drift)
plots   matplotlib figures as data: URIs
render  the template (autoescaped)
build   gathering it all; write_report, attach_report, attach_event_report
live, web  the live page
"""

from rollout.report.build import attach_event_report, attach_report, gather, html_for, report_input, write_report
from rollout.report.inputs import Condition, ReportInput, Segment, Verdict, verdict

__all__ = ["Condition", "ReportInput", "Segment", "Verdict", "attach_event_report", "attach_report", "gather",
           "html_for", "report_input", "verdict", "write_report"]
