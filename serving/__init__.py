"""serving: the Ray Serve app that answers with the champion, runs the candidate in shadow or on a
traffic slice, and logs every prediction.

Routing decisions are pure (`routing.py`), as is the shadow admission policy (`shadowing.py`). The
ingress is in parts: `app.py` (the Serve deployments), `api.py` (the HTTP routes and the published
schema), `request.py` (the typed, validated form), `pipeline.py` (one answer: OOD check, route, call,
fallback, record), `shadow_dispatch.py` (shadow calls), `calls.py` (calls to the model replicas) and
`service.py` (builds and closes them). Model replicas are `models.py`; the log is `predlog.py` (its
records `log_records.py`, its statements and journal replay `log_sql.py`). The app reads the rollout
state the control plane writes; it never imports `training`.
"""
