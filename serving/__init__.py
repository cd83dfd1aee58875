"""serving: the Ray Serve app that answers with the champion, runs the candidate in shadow or on a
traffic slice, and logs every prediction.

Routing decisions are pure (`routing.py`); Ray, HTTP and SQL live in `app.py`, `models.py` and
`predlog.py`. The app reads the rollout state the control plane writes; it never imports `training`.
"""
