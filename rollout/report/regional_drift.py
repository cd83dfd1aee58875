"""The drift headline per region: `monitoring.drift.check` over the rollout's window in each region, the
same check (and alarm thresholds) as the `drift_alarm` gate evidence. A region without enough traffic
for a check says why, in the check's own words."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine

from monitoring.drift import DriftResult, Window, check
from roomsight.config import Settings
from roomsight.errors import DriftError


@dataclass(frozen=True)
class RegionDrift:
    region: str
    result: DriftResult | None
    message: str | None = None  # why there is no result


def per_region(settings: Settings, engine: Engine, rollout_id: str, requests: dict[str, int]) -> list[RegionDrift]:
    """`requests`: the rollout's logged requests per region (from the traffic series)."""
    out = []
    need = settings.monitoring.min_window
    for region, n in requests.items():
        if n < need:
            out.append(RegionDrift(region, None, f"{n} requests logged; a drift check needs {need} (monitoring.min_window)"))
            continue
        try:
            result, _ = check(settings, engine, Window(rollout_id=rollout_id, region=region))
        except DriftError as exc:
            out.append(RegionDrift(region, None, str(exc)))
            continue
        out.append(RegionDrift(region, result))
    return out
