"""rollout: the control plane. It moves a candidate through the steps of a rollout plan (data,
`plans/*.yaml`: shadow, limited, gradual, pause, full), judging each step's conditions (gates on the
evidence in the prediction log, analyses of the review verdicts) to leave it and, in the background, what
it watches; it writes the routing state the Serve app follows, records every change in MLflow, and rolls
back. The command line that drives it is in shell/.

Pure parts: `plan.py` (the plan format; `plan_text`, `plan_legacy`), `stages.py` (step transitions),
`conditions.py` (gates, analyses and budget judged), `guard.decide` (what the background analysis does).
Edges: `evidence.py` (reads the log), `assess.py` (evidence meets conditions), `control.py` (writes state),
`records.py` (MLflow), `guard.py` (the loop), `replay.py`, `api.py` (the control plane over HTTP, with
`api_models` its contract and `api_metrics` its Prometheus series).
"""
