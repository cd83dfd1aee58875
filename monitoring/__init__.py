"""monitoring: what the live traffic looks like against the model's training reference.

It owns per-image descriptors and out-of-domain flags, drift reports (Evidently) with their email,
and the human review queue whose verdicts gate promotion. It reads the prediction log; it never
routes traffic.
"""
