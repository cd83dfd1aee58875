"""How often thresholds chosen on a sample miss their precision target on the population the sample was
drawn from, by method (training.thresholds): a simulation with a known truth, for the training section of
BENCHMARKS.md.

Seven classes, shaped like the real rooms' out-of-fold predictions: each class's candidates (the photos
whose top class it is) number as many as there (50 to 200) and have a confidence s drawn from a Beta
distribution of the class's own; a candidate is right with probability s ** gamma (gamma < 1: a little
over-confident near the top). Easy classes have most candidates confident, hard ones (living and dining
rooms) spread out. The population's precision above any threshold comes from one large seeded sample per
class. Each run draws a calibration sample, picks thresholds by a method, and scores them on the
population: the precision of all answers together (a miss: below the target), each answering class's
precision (a miss: below the target; also counted: below 0.93), and coverage.

    python -m benchmarks.threshold_sim
"""

from __future__ import annotations

import json

import numpy as np

from training.thresholds import thresholds_at_precision

TARGET = 0.95
POPULATION = 100_000  # per class
# name: (candidates in a calibration sample, beta a, beta b, gamma)
CLASSES = {"easy_1": (200, 6.0, 1.0, 0.6), "easy_2": (200, 5.0, 1.0, 0.7), "easy_3": (100, 8.0, 1.0, 0.5),
           "medium": (200, 3.5, 1.0, 0.8), "hard_1": (150, 2.5, 1.2, 0.9), "hard_2": (150, 2.0, 1.5, 1.0),
           "small": (50, 3.0, 1.2, 0.8)}
METHODS = (("point", 0.9), ("lcb", 0.7), ("lcb", 0.8), ("lcb", 0.9), ("lcb", 0.95))


def _draw(rng: np.random.Generator, n: int, a: float, b: float, gamma: float) -> tuple[np.ndarray, np.ndarray]:
    s = 0.5 + 0.5 * rng.beta(a, b, n)  # a top-class probability the answer is made on is at least 1/2 here
    return s, rng.random(n) < s ** gamma


def simulate(runs: int = 1000, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    names = list(CLASSES)
    weights = np.array([CLASSES[c][0] for c in names], dtype=float)
    curves = []  # per class: population scores sorted high to low, cumulative precision
    for c in names:
        s, ok = _draw(rng, POPULATION, *CLASSES[c][1:])
        order = np.argsort(-s)
        curves.append((s[order], np.cumsum(ok[order])))

    def population(thresholds: dict[str, float]) -> tuple[float, list[float], float]:
        right, answered, per_class = 0.0, 0.0, []
        for k, c in enumerate(names):
            scores, cum = curves[k]
            n = int(np.searchsorted(-scores, -thresholds[c], side="right"))
            per_class.append(cum[n - 1] / n if n else 1.0)
            right += weights[k] * (cum[n - 1] if n else 0) / POPULATION
            answered += weights[k] * n / POPULATION
        return (right / answered if answered else 1.0), per_class, answered / weights.sum()

    out: dict = {"target": TARGET, "runs": runs, "seed": seed, "classes": CLASSES, "methods": {}}
    for method, conf in METHODS:
        overall_misses, class_misses, class_misses_093, answering_classes, coverage = 0, 0, 0, 0, []
        for _ in range(runs):
            cols, ys = [], []
            for k, c in enumerate(names):
                s, ok = _draw(rng, *CLASSES[c])
                p = np.full((len(s), len(names)), 0.0)
                p[:, k] = s
                p[:, (k + 1) % len(names)] = 1 - s
                cols.append(p)
                ys.append(np.where(ok, k, (k + 1) % len(names)))
            chosen = thresholds_at_precision(np.concatenate(cols), np.concatenate(ys), names, TARGET,
                                             method=method, confidence=conf)
            prec, per_class, cov = population({c: t.threshold for c, t in chosen.items()})
            overall_misses += prec < TARGET
            answering = [p for c, p in zip(names, per_class) if chosen[c].reached]
            class_misses += sum(p < TARGET for p in answering)
            class_misses_093 += sum(p < 0.93 for p in answering)
            answering_classes += len(answering)
            coverage.append(cov)
        label = method if method == "point" else f"{method} {conf:.0%}"
        out["methods"][label] = {"overall_miss_rate": round(overall_misses / runs, 4),
                                 # of the classes that answered at all (an abstaining class cannot miss)
                                 "class_miss_rate": round(class_misses / max(1, answering_classes), 4),
                                 "class_below_093_rate": round(class_misses_093 / max(1, answering_classes), 4),
                                 "classes_answering": round(answering_classes / runs, 2),
                                 "coverage": round(float(np.mean(coverage)), 4)}
    return out


if __name__ == "__main__":
    print(json.dumps(simulate(), indent=1))
