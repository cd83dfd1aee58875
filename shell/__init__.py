"""shell: what a person runs around the platform, not the platform itself: the root `rollout` command line
(`cli`, composing the sub-commands training/, monitoring/ and `cli_plan` contribute, with the settings in a
typed context, roomsight.cli_context) and `rollout demo` with its parts (`demo`: the story as named steps;
`traffic`: listing photos replayed over HTTP; `reviewers`: simulated reviewers answering through the
reviewer page's API; `mailbox`: a local SMTP inbox). So rollout/ keeps the control plane only, and nothing
in it imports training.
"""
