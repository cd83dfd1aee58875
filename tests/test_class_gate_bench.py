"""The class_gate benchmark (benchmarks.bench_class_gate) reads the gate its own, faster way: only the class that
got a verdict is read again, and the rule before commit 0699fd2 is reimplemented there. Both checked here
against the code they stand for, so its figures are the gate's."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.bench_class_gate import FAMILIES, AnyTimeBounds, class_value_before_0699fd2, first_fail, world
from monitoring.review.stats import Reviewed, gate_metrics, summarize
from rollout import conditions
from rollout.plan import Gate


def test_the_rule_before_0699fd2_reads_a_class_as_that_code_did() -> None:
    # Values of gate_metrics' per-class reading at 0699fd2^ (Clopper-Pearson 95% below 20 answers).
    old = {(0, 1): 0.95, (1, 1): 1.0, (4, 5): 0.9897937816869885, (12, 19): 0.8124956884945995, (19, 19): 1.0,
           (15, 20): 0.75, (27, 40): 0.675}
    for (correct, n), value in old.items():
        assert class_value_before_0699fd2(correct, n) == pytest.approx(value, abs=1e-12)


def gate_first_fail(cls: list[int], right: list[bool], gate: float) -> int | None:
    """The verdict at which the watched gate on the code's own metric first fails, read after every verdict."""
    g = Gate(metric="min_class_precision", min=gate)
    items: list[Reviewed] = []
    for t, (c, r) in enumerate(zip(cls, right), 1):
        items.append(Reviewed(f"c{c}" if r else "other", None, f"c{c}", "r", False))
        if conditions.gate(g, gate_metrics(summarize(items))).outcome == "fail":
            return t
    return None


def bench_first_fail(cls: list[int], right: list[bool], gate: float) -> int | None:
    return first_fail(cls, right, gate, AnyTimeBounds(len(cls), 12), True)[0]


@pytest.mark.parametrize("seed", range(8))
def test_the_first_fail_is_where_the_gate_on_gate_metrics_first_fails(seed: int) -> None:
    rng = np.random.default_rng([7, seed])
    shares, precision, gate = world(rng, FAMILIES["A" if seed % 2 else "B"], 0.3 if seed % 3 else None)
    cls = rng.choice(len(shares), size=150, p=shares).tolist()
    right = (rng.random(150) < precision[cls]).tolist()
    assert bench_first_fail(cls, right, gate) == gate_first_fail(cls, right, gate)


def test_a_class_named_later_rereads_the_classes_named_before() -> None:
    # Five right of 15 is below 0.72 at alpha 0.05, above it at 0.05 / 3: once two more classes are named
    # before the gate judges, the first class no longer fails it.
    cls = [0] * 15 + [1, 2] * 8
    right = [True] * 5 + [False] * 10 + [True] * 16
    assert gate_first_fail(cls, right, 0.72) is None
    assert bench_first_fail(cls, right, 0.72) is None
