"""Soak: the Serve app in shadow stage (the champion answers every request, the candidate runs on every
one too) under an open loop at ~70% of its measured capacity for 10 minutes (60 s with --quick).

Claims checked: no request fails; the resident memory of the Serve replicas (ingress and both model
deployments) grows by less than 10% from the end of the first segment to the end; and the prediction
log has a row for every request that got an answer. Latency and memory are sampled per segment of the run (a plot)."""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

from roomsight.regions import REGIONS

PORT = 8791  # not bench_serving's 8790: the two may run at once in separate processes
LOAD = 0.7  # of the capacity measured with 8 closed-loop clients


def run(quick: bool = False, out_dir: Path | None = None) -> dict:
    import httpx
    import ray
    from ray import serve

    from benchmarks.bench_serving import _bodies
    from benchmarks.loadgen import closed_loop, open_loop
    from roomsight.config import load_settings
    from rollout.control import ControlPlane
    from rollout.plan import load_plan
    from serving.runner import APP_NAME, start_serve
    from training.pipeline import TrainConfig, train

    duration_s, segments = (60, 4) if quick else (600, 10)
    home = Path(tempfile.mkdtemp(prefix="roomsight-bench-soak-"))
    settings = load_settings(environ={"ROOMSIGHT_HOME": str(home), "ROOMSIGHT_SERVE__PORT": str(PORT),
                                      "ROOMSIGHT_SERVE__STATE_POLL_S": "0.3"})
    cfg = dict(backbone="efficientnet_lite0", head_only=True, epochs=1, synthetic_per_class=20)
    train(settings, TrainConfig(seed=0, **cfg))
    cand = train(settings, TrainConfig(seed=1, **cfg)).registered.ref
    bodies = _bodies(32)

    if ray.is_initialized():
        serve.shutdown()  # an earlier benchmark in this process left Serve's proxy bound to its own port
    ControlPlane(settings, load_plan(), actor="bench").current()
    url = start_serve(settings)
    cp = ControlPlane(settings, load_plan().unconditional(), actor="bench")
    cp.start(cand.uri)
    _wait_for_stage(url, "shadow")
    closed_loop(url, bodies, 16, 1, REGIONS)  # warm-up: both models loaded, calibrations fetched

    n_capacity = 80 if quick else 240
    capacity = closed_loop(url, bodies, n_capacity, 8, REGIONS).summary()
    rate = round(LOAD * capacity["throughput_rps"], 2)
    pids = _replica_pids(APP_NAME)
    results: dict = {"model": "efficientnet_lite0 at 256 px (head-only, synthetic), shadow stage, 100% sampled",
                     "duration_s": duration_s, "capacity_c8": capacity, "rate_rps": rate, "replicas": sorted(pids)}

    request_ids: list[str] = []
    timeline, failures, n = [], 0, 0
    t0 = time.monotonic()
    for _ in range(segments):
        seg = open_loop(url, bodies, rate, duration_s / segments, REGIONS, ids=True)
        request_ids += seg.request_ids
        failures += seg.failures
        n += seg.n + seg.failures
        timeline.append({"t_min": round((time.monotonic() - t0) / 60, 2), **seg.summary(), "rss_mb": _rss_mb(pids)})
    rss_end = _rss_mb(pids)
    # The baseline is taken after the first segment, not before the soak: an idle-priority candidate runs
    # its first full batches (and allocates for them) only once the capacity probe has let go of the CPU.
    rss_start = timeline[0]["rss_mb"]
    health = httpx.get(url + "/healthz", timeout=10).json()

    missing, shadow = _log_check(settings.db_url, request_ids)
    growth = {name: (round(100 * (rss_end[name] - rss_start[name]) / rss_start[name], 2)
                     if rss_start[name] and rss_end.get(name) is not None else None) for name in rss_start}
    results.update({
        "requests": n, "answered": len(request_ids), "failures": failures,
        "p50_ms_first_segment": timeline[0]["p50_ms"], "p99_ms_first_segment": timeline[0]["p99_ms"],
        "p50_ms_last_segment": timeline[-1]["p50_ms"], "p99_ms_last_segment": timeline[-1]["p99_ms"],
        "rss_mb_start": rss_start, "rss_mb_end": rss_end, "rss_growth_pct": growth,
        "log_missing": missing, "log_shadow_status": shadow, "ingress_log": health["log"], "ingress_shadow": health["shadow"],
        "timeline": timeline,
    })
    serve.delete(APP_NAME)
    serve.shutdown()
    shutil.rmtree(home, ignore_errors=True)
    if out_dir is not None:
        _plot(timeline, out_dir / "soak_timeline.png")
        results["plot"] = "soak_timeline.png"
    return results


def _wait_for_stage(url: str, stage: str, timeout: float = 120.0) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/healthz", timeout=5).json().get("stage") == stage:
                return
        except (httpx.HTTPError, ValueError):
            pass  # the proxy or the ingress is still starting
        time.sleep(0.3)
    raise TimeoutError(f"the app did not reach stage {stage!r} within {timeout:.0f} s")


def _replica_pids(app: str) -> dict[str, int]:
    """The process of every live Serve replica of `app`, named by deployment (`champion#2` for a second).
    Read from the GCS actor table: the state API (ray.util.state) needs the dashboard, which is off here."""
    from ray._private.state import actors

    prefix = f"ServeReplica:{app}:"
    out: dict[str, int] = {}
    for actor in sorted(actors(actor_state_name="ALIVE").values(), key=lambda a: a["Pid"]):
        if actor["ActorClassName"].startswith(prefix):
            name = actor["ActorClassName"][len(prefix):]
            k = sum(1 for key in out if key.split("#")[0] == name)
            out[f"{name}#{k + 1}" if k else name] = actor["Pid"]
    if not out:
        raise RuntimeError(f"no live Serve replica of {app!r} found")
    return out


def _rss_mb(pids: dict[str, int]) -> dict[str, float | None]:
    """Resident memory per process from /proc (None: the process is gone, i.e. the replica restarted)."""
    out: dict[str, float | None] = {}
    for name, pid in pids.items():
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except FileNotFoundError:
            out[name] = None
            continue
        kb = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:"))
        out[name] = round(kb / 1024, 1)
    return out


def _log_check(db_url: str, request_ids: list[str], timeout: float = 30.0) -> tuple[int, dict[str, int]]:
    """How many answered requests have no row in the prediction log, once the ingress has flushed (it
    writes every 0.5 s; shadow results arrive up to the shadow timeout later); and the rows' shadow
    outcomes. Polls until nothing is missing and no shadow result is pending, or `timeout`."""
    from sqlalchemy import func, select

    from roomsight.db import engine_for
    from roomsight.tables import predictions

    engine = engine_for(db_url)
    ids = list(dict.fromkeys(request_ids))
    deadline = time.monotonic() + timeout
    while True:
        found, shadow = 0, {}
        with engine.connect() as conn:
            for i in range(0, len(ids), 500):
                chunk = ids[i:i + 500]
                q = (select(predictions.c.shadow_status, func.count()).where(predictions.c.request_id.in_(chunk))
                     .group_by(predictions.c.shadow_status))
                for status, count in conn.execute(q):
                    found += count
                    shadow[status or "pending"] = shadow.get(status or "pending", 0) + count
        missing = len(ids) - found
        if (missing == 0 and "pending" not in shadow) or time.monotonic() > deadline:
            return missing, shadow
        time.sleep(1.0)


def _plot(timeline: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = [seg["t_min"] for seg in timeline]
    fig, (mem, lat) = plt.subplots(1, 2, figsize=(10, 4))
    for name in timeline[0]["rss_mb"]:
        mem.plot(t, [seg["rss_mb"].get(name) for seg in timeline], "o-", label=name)
    mem.set_xlabel("minutes into the soak")
    mem.set_ylabel("resident memory (MB)")
    mem.set_ylim(bottom=0)
    mem.legend()
    lat.plot(t, [seg["p50_ms"] for seg in timeline], "o-", label="p50")
    lat.plot(t, [seg["p99_ms"] for seg in timeline], "s-", label="p99")
    lat.set_xlabel("minutes into the soak")
    lat.set_ylabel("latency (ms)")
    lat.set_ylim(bottom=0)
    lat.legend()
    fig.suptitle("roomsight soak at 70% of capacity, shadow stage")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def targets(r: dict) -> list:
    from benchmarks.run import Target

    growth = r["rss_growth_pct"]
    known = [g for g in growth.values() if g is not None]
    worst = max(known) if len(known) == len(growth) else None
    return [
        Target(f"no failed request in {r['duration_s']} s at 70% of capacity ({r['rate_rps']} req/s, shadow stage)",
               f"{r['failures']} failed of {r['requests']}", r["failures"] == 0),
        Target("resident memory of every Serve replica grows by less than 10% over the soak",
               "a replica restarted" if worst is None else
               f"largest growth {worst:+.1f}% ({', '.join(f'{k} {v:+.1f}%' for k, v in growth.items())})",
               worst is not None and worst < 10),
        Target("the prediction log has a row for every answered request",
               f"{r['log_missing']} missing of {r['answered']}", r["log_missing"] == 0),
    ]
