"""Gate checks, pure: plan gates + evidence numbers -> pass/fail per gate with the numbers."""

from __future__ import annotations

from dataclasses import dataclass

from rollout.plan import Gate


@dataclass(frozen=True)
class GateResult:
    metric: str
    bound: str  # "min" | "max"
    threshold: float
    value: float | None  # None: no evidence yet
    passed: bool

    def describe(self) -> str:
        op = ">=" if self.bound == "min" else "<="
        shown = "no evidence" if self.value is None else f"{self.value:.4g}"
        return f"{'PASS' if self.passed else 'FAIL'} {self.metric} {op} {self.threshold:g}: {shown}"

    def to_dict(self) -> dict[str, object]:
        return {"metric": self.metric, "bound": self.bound, "threshold": self.threshold, "value": self.value,
                "passed": self.passed}


def check(gates: tuple[Gate, ...], evidence: dict[str, float | None]) -> list[GateResult]:
    results = []
    for g in gates:
        value = evidence.get(g.metric)
        if g.min is not None:
            results.append(GateResult(g.metric, "min", g.min, value, value is not None and value >= g.min))
        else:
            assert g.max is not None
            results.append(GateResult(g.metric, "max", g.max, value, value is not None and value <= g.max))
    return results


def all_passed(results: list[GateResult]) -> bool:
    return all(r.passed for r in results)
