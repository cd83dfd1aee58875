"""`rollout review ...`: the reviewer page, verdict statistics and export."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Optional

import typer

from roomsight.cli_context import of
from roomsight.console import console, err, friendly
from roomsight.errors import UserError
from roomsight.listening import MAX_PORT

app = typer.Typer(help="The human review queue: serve the reviewer page, show verdict statistics, export labels.",
                  no_args_is_help=True)

FILL_EVERY_S = 15.0
PRUNE_EVERY_S = 3600.0


def _rollout_asked(engine: Any, rollout: str | None) -> str | None:  # Engine
    """`--rollout` resolved to a known rollout id (its first characters are enough), or None."""
    from monitoring.review import queue

    return None if rollout is None else queue.resolve_rollout(engine, rollout)


@app.command()
@friendly
def serve(
    ctx: typer.Context,
    host: Optional[str] = typer.Option(None, "--host", help="Bind address (default: review.host, 127.0.0.1)."),
    # Past the settings' validation, so the option checks its range itself (as `rollout serve` does).
    port: Optional[int] = typer.Option(None, "--port", min=1, max=MAX_PORT, help="Port (default: review.port, 8081)."),
    rollout: Optional[str] = typer.Option(None, "--rollout", help="Review this rollout's items (its id, or the id's first characters; default: the rollout in progress, or every rollout's when none is)."),
) -> None:
    """Serve the reviewer page; the queue is refilled from the prediction log every 15 s."""
    import threading
    import time

    from monitoring.review.photos import prune_photos
    from monitoring.review.queue import current_rollout, fill
    from monitoring.review.web import create_app
    from roomsight.db import engine_for
    from roomsight.listening import listen, serve_http

    settings = of(ctx).settings
    if not settings.review.tokens:
        raise UserError("no reviewer tokens configured: set review.tokens in the config file or "
                        "ROOMSIGHT_REVIEW__TOKENS='{\"reviewer-id\": \"token\"}'")
    bind_host, bind_port = host or settings.review.host, port or settings.review.port
    engine = engine_for(settings.db_url)
    rollout = _rollout_asked(engine, rollout)
    sock = listen(bind_host, bind_port, "review")
    stop = threading.Event()

    def refill() -> None:
        last_prune: float | None = None
        while not stop.is_set():
            try:
                target = rollout or current_rollout(engine)
                if target:
                    fill(engine, settings, target)
                if last_prune is None or time.monotonic() - last_prune > PRUNE_EVERY_S:
                    prune_photos(engine, settings)
                    last_prune = time.monotonic()
            except Exception as exc:  # a database hiccup must not stop refilling for the life of the page
                err.print(f"[yellow]review queue refill failed ({type(exc).__name__}); retrying[/]")
            stop.wait(FILL_EVERY_S)

    threading.Thread(target=refill, name="review-queue-filler", daemon=True).start()
    console.print(f"review page on http://{bind_host}:{bind_port}/ for {len(settings.review.tokens)} reviewer(s); "
                  "Ctrl-C stops")
    try:
        serve_http(create_app(settings, engine, rollout), sock)
    finally:
        stop.set()


@app.command()
@friendly
def stats(
    ctx: typer.Context,
    rollout: Optional[str] = typer.Option(None, "--rollout", help="Rollout id, or its first characters (default: the current rollout, else all verdicts)."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Each model's accuracy, precision and coverage on the traffic (weighted by inverse inclusion
    probability), next to the raw counts on the review queue (Wilson 95% intervals), who was right on
    disagreements, per region, and reviewers' agreement (Cohen's kappa)."""
    from rich.markup import escape
    from rich.table import Table

    from analysis.weighted import model_estimates, segment_estimates
    from monitoring.review import queue
    from monitoring.review.evidence import review_sample
    from monitoring.review.stats import Summary, by_region, cohen_kappa, gate_metrics, summarize
    from roomsight.db import engine_for

    settings = of(ctx).settings
    engine = engine_for(settings.db_url)
    target = _rollout_asked(engine, rollout) or queue.current_rollout(engine)
    if target:
        queue.fill(engine, settings, target)
    items = queue.as_reviewed(queue.reviewed(engine, target))
    overall, regions = summarize(items), by_region(items)
    prog = queue.progress(engine, rollout_id=target)
    pairs = queue.double_reviews(engine, target)
    kappa = cohen_kappa(pairs)
    sample = review_sample(engine, settings, target) if target else None
    weighted = model_estimates(sample) if sample else {}
    weighted_regions = segment_estimates(sample, "region") if sample else {}
    if as_json:
        print(json.dumps({
            "rollout_id": target, "progress": prog.to_dict(), "gates": gate_metrics(overall),
            "weighted": {"about": WEIGHTED_NOTE, "overall": {m: e.to_dict() for m, e in weighted.items()},
                         "regions": {r: {m: e.to_dict() for m, e in ms.items()} for r, ms in weighted_regions.items()}},
            "raw": {"about": RAW_NOTE},
            "overall": _summary_dict(overall), "regions": {r: _summary_dict(s) for r, s in regions.items()},
            "reviewers": {"double_reviewed": len(pairs), "kappa": kappa},
            "unseen": len(sample.unseen) if sample else 0}, indent=1))
        return
    console.print(f"rollout {target or '(all)'}: {overall.reviewed} reviewed ({overall.unusable} unusable or disputed); "
                  f"queue: {prog.pending} waiting, {prog.claimed} in review, {prog.done} done")
    if sample and sample.unseen:
        console.print(f"[yellow]{len(sample.unseen)} sampled photo(s) never kept for review[/yellow] (not in "
                      "review.photo_dir when the queue was filled: is it shared by every serving node?)")
    if weighted:
        covers = weighted["champion"].covers_to
        upto = "" if covers is None else time.strftime(" logged up to %Y-%m-%d %H:%M:%S UTC", time.gmtime(covers))
        table = Table("model", "accuracy", "95% interval", "precision", "95% interval", "coverage",
                      title=f"on the traffic{upto}: " + WEIGHTED_NOTE)
        for name, e in weighted.items():
            table.add_row(name, *_estimate(e.accuracy), *_estimate(e.precision), _pct(e.coverage))
        console.print(table)
    else:
        console.print("on the traffic: " + ("needs a rollout (--rollout)" if not target else
                                            "not yet: a sampling stratum with traffic has no verdict"))

    def precision_table(title: str, s: Summary) -> Table:
        table = Table("model", "class", "correct / answered", "precision", "95% interval", title=title)
        for name, mp in (("champion", s.champion), ("candidate", s.candidate)):
            for cls, p in [("(overall)", mp.overall), *mp.per_class.items()]:
                ci = p.interval
                table.add_row(name, escape(cls), f"{p.correct} / {p.n}", _pct(p.value),
                              f"{ci[0]:.1%} - {ci[1]:.1%}" if ci else "n/a")
        return table

    console.print(precision_table("raw counts on the review queue: " + RAW_NOTE, overall))
    console.print(f"disagreements reviewed: {overall.disagreements}; candidate right (champion wrong) "
                  f"{overall.candidate_right}, champion right (candidate wrong) {overall.champion_right}, both wrong "
                  f"{overall.both_wrong}; candidate win rate {_pct(overall.candidate_win_rate)}")
    table = Table("region", "reviewed", "champion precision (raw)", "candidate precision (raw)",
                  "champion accuracy (traffic)", "candidate accuracy (traffic)", "candidate win rate", title="per region")
    for region, s in regions.items():
        w = weighted_regions.get(region, {})
        # A region is what a /predict caller sent: printed as it is, never read as console markup.
        table.add_row(escape(region), str(s.reviewed), _pct(s.champion.overall.value), _pct(s.candidate.overall.value),
                      *(_pct(w[m].accuracy.value) if m in w and w[m].accuracy else "n/a" for m in ("champion", "candidate")),
                      _pct(s.candidate_win_rate))
    console.print(table)
    console.print(f"reviewer agreement: {len(pairs)} photos judged by two reviewers"
                  + (f", Cohen's kappa {kappa:.2f}" if kappa is not None else ""))


WEIGHTED_NOTE = ("each verdict weighted by the inverse of its photo's inclusion probability (ratio estimator per "
                 "sampling stratum), up to the oldest sampled photo of any stratum not reviewed yet (the queue serves "
                 "the oldest first, so later verdicts are no fair sample); coverage is the share of compared photos "
                 "the model answered, from the whole log")
RAW_NOTE = ("unweighted: disagreements and low-confidence answers are over-represented, so these are not "
            "estimates on the traffic")


@app.command()
@friendly
def export(
    ctx: typer.Context,
    out: Path = typer.Option(..., "--out", help="CSV manifest to write; photos go to a folder beside it."),
    rollout: Optional[str] = typer.Option(None, "--rollout", help="Only this rollout's verdicts (its id, or the id's first characters; default: all)."),
) -> None:
    """Write reviewed photos as a labelled CSV manifest for `rollout train --data` (unusable and disputed
    ones left out: neither has a room type to learn)."""
    import csv

    from monitoring.review import queue
    from monitoring.review.photos import PhotoStore
    from roomsight.db import engine_for
    from roomsight.userfiles import check_output_file
    from roomsight.verdicts import DISPUTED, UNUSABLE

    check_output_file(out, "--out", ".csv")
    settings = of(ctx).settings
    engine = engine_for(settings.db_url)
    store = PhotoStore.for_settings(settings)
    target = _rollout_asked(engine, rollout)
    rows = [r for r in queue.reviewed(engine, target) if r["truth"] not in (UNUSABLE, DISPUTED)]
    if not rows:
        raise UserError("nothing to export: no usable verdicts" + (f" for rollout {target}" if target else "")
                        + " yet; nothing written")
    out = out.resolve()
    photo_dir = out.with_name(out.stem + "_photos")
    photo_dir.mkdir(parents=True, exist_ok=True)
    written = missing = 0
    with out.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["path", "label", "region", "listing_id", "caption", "taken_at"])
        for r in rows:
            data = store.get(r["request_id"])
            if data is None:
                missing += 1
                continue
            (photo_dir / f"{r['request_id']}.jpg").write_bytes(data)
            writer.writerow([f"{photo_dir.name}/{r['request_id']}.jpg", r["truth"], r["region"], r["listing_id"],
                             r["caption"] or "", r["taken_at"] or ""])
            written += 1
    console.print(f"wrote {written} labelled photos to {out}" + (f" ({missing} skipped: photo no longer stored)" if missing else ""))


def _pct(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.1%}"


def _estimate(e: Any) -> tuple[str, str]:  # analysis.weighted.Estimate | None
    return ("n/a", "n/a") if e is None else (_pct(e.value), f"{e.lower:.1%} - {e.upper:.1%}")


def _summary_dict(s: Any) -> dict[str, Any]:  # stats.Summary
    def mp(m: Any) -> dict[str, Any]:
        return {"overall": _prec(m.overall), "per_class": {k: _prec(p) for k, p in m.per_class.items()}}

    return {"reviewed": s.reviewed, "unusable": s.unusable, "champion": mp(s.champion), "candidate": mp(s.candidate),
            "disagreements": s.disagreements, "candidate_right": s.candidate_right, "champion_right": s.champion_right,
            "both_wrong": s.both_wrong, "candidate_win_rate": s.candidate_win_rate}


def _prec(p: Any) -> dict[str, Any]:  # stats.Precision
    return {"correct": p.correct, "n": p.n, "precision": p.value, "interval": p.interval}
