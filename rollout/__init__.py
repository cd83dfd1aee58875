"""rollout: the control plane. It moves a candidate through shadow -> limited -> gradual -> full
according to a rollout plan (data, `plans/*.yaml`), behind gates evaluated on the evidence in the
prediction log, writes the routing state the Serve app follows, records every step in MLflow, and
rolls back. It also hosts the `rollout` command line.

Pure parts: `plan.py` (the plan format), `stages.py` (transitions), `gates.py` (gate checks).
Edges: `evidence.py` (reads the log), `control.py` (writes state, MLflow, events), `cli.py`.
"""
