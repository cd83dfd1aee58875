"""The human review queue: shadow disagreements and spot checks, labelled by reviewers, whose
verdicts gate promotion."""
