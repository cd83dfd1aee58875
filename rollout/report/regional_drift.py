"""The drift headline per region: `monitoring.drift.check` over each region's latest
`monitoring.drift_check_window` predictions of the rollout, the check (and alarm thresholds) the
`drift_alarm` gate reads on its current step's latest, so a shift that began mid-rollout shows on its
region's card as on the gate. A region without enough traffic for a check says why, in the check's own words."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine

from monitoring.drift import DriftResult, Window, check
from roomsight.config import Settings
from roomsight.errors import DriftError, RegistryError


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
            result, _ = check(settings, engine, Window(rollout_id=rollout_id, region=region,
                                                       last=settings.monitoring.drift_check_window))
        except (DriftError, RegistryError) as exc:  # MLflow out of reach: the champion's reference is there
            out.append(RegionDrift(region, None, str(exc)))
            continue
        out.append(RegionDrift(region, result))
    return out
