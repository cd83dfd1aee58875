"""Thresholds that hold: the lower-bound method, cross-fitting's out-of-fold predictions, and the ensemble
of members on one trunk that the cross-fitted default exports."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from training.thresholds import apply_thresholds, describe_method, thresholds_at_precision


class Linear(nn.Module):
    """A head on random features: a member cross-fitting trains, with the features as its embedding."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(64, 2)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.fc(x), x


def _population(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Two classes; class-0 candidates' confidence s is right with probability s ** 0.8."""
    s = 0.5 + 0.5 * rng.beta(2.5, 1.2, n)
    right = rng.random(n) < s ** 0.8
    return np.stack([s, 1 - s], axis=1), np.where(right, 0, 1)


def test_lower_bound_thresholds_hold_on_new_photos_where_point_ones_do_not():
    """Thresholds cut on 300 photos, judged on 200,000 more from the same population: the point estimate
    falls short of 0.95 most of the time (it picks the luckiest cut), the lower bound rarely."""
    rng = np.random.default_rng(0)
    probs, y = _population(rng, 200_000)
    misses = {"point": 0, "lcb": 0}
    for _ in range(40):
        p, t = _population(rng, 300)
        for method in misses:
            chosen = thresholds_at_precision(p, t, ["a", "b"], 0.95, method=method, confidence=0.9)["a"]
            said = apply_thresholds(probs, ["a", "b"], {"a": chosen.threshold, "b": 2.0}) == 0
            misses[method] += chosen.reached and (y[said] == 0).mean() < 0.95
    assert misses["point"] >= 15 and misses["lcb"] <= 6


def test_a_class_that_cannot_reach_the_target_abstains_and_says_how_close_it_came():
    probs = np.array([[0.9, 0.1]] * 20 + [[0.8, 0.2]] * 20)
    y = np.array([0] * 18 + [1] * 2 + [0] * 20)
    chosen = thresholds_at_precision(probs, y, ["a", "b"], 0.95, method="lcb", confidence=0.9)
    assert not chosen["a"].reached and chosen["a"].threshold > 1 and 0.8 < chosen["a"].lower < 0.95
    point = thresholds_at_precision(probs, y, ["a", "b"], 0.95, method="point")
    assert point["a"].reached and point["a"].answered == 40


def test_out_of_fold_predictions_come_from_members_that_never_saw_the_photo():
    """Random labels on random features: each member fits its own training folds, so a leak (a member that
    saw the photo, or chose its epoch on it) would show as out-of-fold accuracy above chance."""
    from training.crossfit import cross_fit, folds
    from training.trainer import FitConfig

    gen = torch.Generator().manual_seed(0)
    x, y = torch.randn(120, 64, generator=gen), torch.randint(2, (120,), generator=gen)
    net = Linear()
    start = {k: v.clone() for k, v in net.state_dict().items()}
    cf = cross_fit(net, lambda seed: net.load_state_dict(start), x, y, None, 4,
                   FitConfig(epochs=60, lr=0.05, augment=False, patience=60))
    assert len(cf.members) == 4 and np.ptp(np.bincount(cf.fold)) <= 2 and cf.epochs == [60] * 4
    assert np.bincount(folds(np.array([0] * 10 + [1] * 6), 2, seed=1)).tolist() == [8, 8]  # each class split evenly
    in_sample = np.mean([(m(x[cf.fold != f])[0].argmax(1) == y[cf.fold != f]).float().mean().item()
                         for f, m in enumerate(cf.members)])
    out_of_fold = (cf.out_of_fold.argmax(1) == y.numpy()).mean()
    assert in_sample > 0.9 and out_of_fold < 0.7


def test_the_ensemble_exports_as_one_program_answering_the_mean_of_its_members(tmp_path):
    from roomsight.modelpack import PackMeta, load_pack, save_pack
    from roomsight.preprocess import Preprocessing
    from training.ensemble import Ensemble

    torch.manual_seed(0)
    trunk = nn.Sequential(nn.Conv2d(3, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten())

    class Head(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(4, 3)

        def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            return self.fc(z), z * 2

    members = [Head(), Head(), Head()]
    ens = Ensemble(trunk, members).eval()
    x = torch.randn(5, 3, 16, 16)
    with torch.no_grad():
        logits, emb = ens(x)
        z = trunk(x)
        assert torch.allclose(logits, torch.stack([m(z)[0] for m in members]).mean(0))
        assert torch.allclose(emb, 2 * z)
    meta = PackMeta(classes=["a", "b", "c"], preprocessing=Preprocessing(size=16))
    pack = load_pack(save_pack(tmp_path / "pack", ens, meta, x[:2]))
    got, _ = pack.forward(x)
    assert np.allclose(got, logits.numpy(), atol=1e-5)


@pytest.mark.parametrize("k", [1, 3])
def test_the_model_records_how_its_thresholds_were_cut(tmp_path, k):
    """Cross-fitted (k members, cut on out-of-fold predictions of train + validation) or one model (cut on
    validation): the pack's metadata and the MLflow run say which, with the coverage it leaves."""
    from roomsight import registry
    from tests.conftest import settings_for
    from training.pipeline import TrainConfig, train

    settings = settings_for(tmp_path / "home")
    result = train(settings, TrainConfig(backbone="tiny_cnn", tune="head", folds=k, views=1, epochs=3,
                                         synthetic_per_class=10, threshold_method="lcb", threshold_confidence=0.6,
                                         allow_always_unsure=True))
    registry.configure(settings)
    pack = registry.load_model(result.registered.ref)
    th = pack.meta.thresholding
    assert th["method"] == "lcb" and th["members"] == k
    assert th["cut_on"] == ("the 16 validation photos, which also picked the training epoch" if k == 1 else f"out-of-fold predictions of the 64 training and validation photos ({k} folds)")
    assert set(th["abstaining"]) == {c for c, t in pack.meta.thresholds.items() if t > 1}
    assert set(th["per_class"]) == set(pack.classes) and 0 <= th["coverage_cut_on"] <= 1
    run = registry.client().get_run(result.registered.run_id)
    assert run.data.params["threshold_method"] == "lcb" and run.data.params["members"] == str(k)
    assert "coverage_at_thresholds_cut_on" in run.data.metrics


def test_a_photo_without_a_finite_score_cannot_set_its_class_threshold():
    """A NaN score is never answered (NaN >= t is false), so it is no candidate for a cut: counted as one it
    was the last, lowest cut, and the class threshold became NaN, a class claiming to answer that never did."""
    probs = np.array([[0.99, 0.01]] * 30 + [[np.nan, np.nan]])
    chosen = thresholds_at_precision(probs, np.zeros(31, dtype=int), ["a", "b"], 0.95)["a"]
    said = apply_thresholds(probs, ["a", "b"], {"a": chosen.threshold, "b": 2.0}) == 0
    assert chosen.reached and chosen.threshold == pytest.approx(0.99) and chosen.answered == said.sum() == 30


def test_an_abstaining_class_says_how_close_a_cut_came_not_a_point_inside_tied_scores():
    """Forty tied scores are one cut, 37 right of 40; the 37 right ones sorted first are no cut of their own,
    so an abstaining class must not report their precision of 1 as how close it came."""
    probs = np.array([[0.9, 0.1]] * 40)
    chosen = thresholds_at_precision(probs, np.array([0] * 37 + [1] * 3), ["a", "b"], 0.95, method="point")["a"]
    assert not chosen.reached and chosen.lower == pytest.approx(37 / 40)


def test_copies_of_one_photo_share_a_fold_so_no_member_predicts_a_photo_it_learned():
    """Random labels on random features, every photo listed twice: a member that learned one copy and
    predicted the other would show as out-of-fold accuracy far above chance, and thresholds cut on it."""
    from training.crossfit import cross_fit, folds
    from training.trainer import FitConfig

    gen = torch.Generator().manual_seed(0)
    x, y = torch.randn(60, 64, generator=gen), torch.randint(2, (60,), generator=gen)
    x, y, digests = torch.cat([x, x]), torch.cat([y, y]), [f"photo{i}" for i in range(60)] * 2
    net = Linear()
    start = {k: v.clone() for k, v in net.state_dict().items()}
    cf = cross_fit(net, lambda seed: net.load_state_dict(start), x, y, None, 4,
                   FitConfig(epochs=60, lr=0.05, augment=False, patience=60), digests=digests)
    assert (cf.fold[:60] == cf.fold[60:]).all()
    assert (cf.out_of_fold.argmax(1) == y.numpy()).mean() < 0.7
    # without copies the folds are the ones they always were
    assert (folds(y.numpy(), 4, 3, [str(i) for i in range(120)]) == folds(y.numpy(), 4, 3)).all()


def test_a_fold_left_without_photos_is_refused_naming_the_option_not_a_crash():
    """Two photos a class over five folds leave a fold with nothing to predict: that was a torch.cat error."""
    from roomsight.errors import DataError
    from training.crossfit import cross_fit
    from training.trainer import FitConfig

    class Linear(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(8, 2)

        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            return self.fc(x), x

    with pytest.raises(DataError, match="--folds"):
        cross_fit(Linear(), lambda seed: None, torch.randn(4, 8), torch.tensor([0, 0, 1, 1]), None, 5,
                  FitConfig(epochs=1, augment=False))


def test_the_method_is_described_with_the_target_and_confidence_it_used():
    """The model's metadata said a 0.999 bound was a "100%" one and a 0.975 target "0.97"."""
    assert describe_method("lcb", 0.95, 0.9, "x").startswith("per-class thresholds where the 90% Clopper-Pearson")
    assert "the 99.9% Clopper-Pearson lower bound on precision reaches 0.975," in describe_method("lcb", 0.975, 0.999, "x")
    assert "precision reaches 0.975," in describe_method("point", 0.975, 0.9, "x")


def test_thresholds_cut_on_the_photos_that_picked_the_epoch_say_so():
    """With one model (`--folds 1`), early stopping picks the epoch on the validation photos the thresholds
    are then cut on; the metadata and `rollout evaluate` said only "the N validation photos"."""
    from training.fitting import cut_on_words

    assert cut_on_words(16, 1) == "the 16 validation photos, which also picked the training epoch"
    assert cut_on_words(16, 1, fitted=False) == "the 16 validation photos"  # a refusal before any fitting
    assert cut_on_words(64, 5) == cut_on_words(64, 5, fitted=False) == (
        "out-of-fold predictions of the 64 training and validation photos (5 folds)")


def test_the_refusal_of_an_always_unsure_model_states_the_target_and_confidence_it_used():
    """It said a 0.999 bound was a "100%" one claiming "0.97" when the target was 0.975."""
    from roomsight.errors import DataError
    from training.abstaining import check_answers
    from training.pipeline import TrainConfig

    probs = np.repeat(np.eye(2) * 0.8 + 0.1, 9, axis=0)
    chosen = thresholds_at_precision(probs, np.repeat(np.arange(2), 9), ["a", "b"], 0.975, method="lcb", confidence=0.999)
    cfg = TrainConfig(folds=5, target_precision=0.975, threshold_confidence=0.999)
    with pytest.raises(DataError, match=r"no class reaches 0\.975 precision.*the 99\.9% lower bound claims 0\.975 only"):
        check_answers(chosen, cfg, "lcb", "them", cross_fits=True)


def test_a_class_threshold_reports_recall_over_the_class_not_over_what_it_answers():
    """Eight photos of `a`, four of them called `b`: at any cut, `a` answers at most the four it calls, all
    right, so its precision is 1 and its recall is 4 of 8."""
    probs = np.array([[0.9, 0.1], [0.85, 0.15], [0.8, 0.2], [0.75, 0.25]] + [[0.2, 0.8]] * 4)
    chosen = thresholds_at_precision(probs, np.zeros(8, dtype=int), ["a", "b"], 0.95)["a"]
    assert chosen.reached and (chosen.precision, chosen.recall, chosen.answered, chosen.support) == (1.0, 0.5, 4, 8)


def test_a_target_of_one_under_the_lower_bound_is_refused_before_fitting_not_a_crash():
    # No run of right answers makes a lower bound reach 1: `--target-precision 1.0` with lcb must say so.
    from roomsight.errors import DataError
    from training.abstaining import check_answerable
    from training.pipeline import TrainConfig

    with pytest.raises(DataError, match="only when no answer can be wrong"):
        check_answerable({"a": 10_000}, TrainConfig(target_precision=1.0), "lcb", "them", cross_fits=True)


def test_more_folds_are_suggested_only_where_they_would_change_what_thresholds_are_cut_on():
    from roomsight.errors import DataError
    from training.abstaining import check_answers
    from training.pipeline import TrainConfig

    probs = np.repeat(np.eye(2) * 0.8 + 0.1, 9, axis=0)
    chosen = thresholds_at_precision(probs, np.repeat(np.arange(2), 9), ["a", "b"], 0.95, method="lcb", confidence=0.9)
    for cross_fits in (True, False):
        with pytest.raises(DataError) as info:
            check_answers(chosen, TrainConfig(folds=1), "lcb", "them", cross_fits=cross_fits)
        assert ("--folds 5" in str(info.value)) is cross_fits


def test_a_class_without_a_threshold_answers_unsure_in_serving_and_in_evaluate():
    """A class whose threshold the metadata does not carry (a hand-made or older meta.json, a class left
    out) was answered at any score: the one answer no cut ever vouched for. It must abstain, as a class
    that never reached the target does, in serving and in `rollout evaluate`'s "as exported" alike."""
    from roomsight.modelpack import UNSURE, ModelPack, PackMeta
    from roomsight.preprocess import Preprocessing

    meta = PackMeta.from_dict({"classes": ["a", "b"], "preprocessing": Preprocessing(size=16).to_dict(),
                               "thresholds": {"a": 0.5}})
    pack = ModelPack(nn.Identity(), meta)
    assert pack.label_for(np.array([0.9, 0.1]))[0] == "a"
    assert pack.label_for(np.array([0.01, 0.99]))[0] == UNSURE
    older = ModelPack(nn.Identity(), PackMeta.from_dict({"classes": ["a", "b"], "preprocessing": {"size": 16}}))
    assert older.label_for(np.array([0.9, 0.1]))[0] == UNSURE
    probs = np.array([[0.55, 0.45], [0.9, 0.1], [0.4, 0.6], [0.01, 0.99]])
    assert apply_thresholds(probs, ["a", "b"], meta.thresholds).tolist() == [0, 0, -1, -1]
