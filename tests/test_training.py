"""Training on the embedded synthetic photos, export to MLflow, loading in a fresh process."""

import json
import subprocess
import sys

import numpy as np
import pytest

from roomsight import registry
from roomsight.errors import DataError
from roomsight.registry import ModelRef
from training import data
from training.thresholds import apply_thresholds, thresholds_at_precision


def test_first_version_is_champion_and_both_load_in_a_fresh_process(settings):
    assert registry.alias_version("roomtype", "champion") == "1"
    code = (
        "import json; from roomsight.config import load_settings; from roomsight import registry;"
        "s=load_settings(); registry.configure(s);"
        "ref=registry.resolve('models:/roomtype@champion'); p=registry.load_model(ref);"
        "from training.synthetic import render; import numpy as np;"
        "imgs=[render(c, np.random.default_rng(5), 64) for c in p.classes];"
        "outs=p.predict(imgs);"
        "print(json.dumps({'version': ref.version, 'classes': p.classes, 'top': [o.top_class for o in outs],"
        " 'thresholds': p.meta.thresholds, 'reference': sorted(p.meta.reference), 'sha': p.meta.data_sha256}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env={**__import__("os").environ, "ROOMSIGHT_HOME": str(settings.home)})
    assert out.returncode == 0, out.stderr[-2000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["version"] == "1"
    assert len(got["classes"]) == 8 and "swimming_pool" in got["classes"]
    # the model learned something: most freshly drawn photos get their own class
    assert sum(t == c for t, c in zip(got["top"], got["classes"])) >= 5
    assert set(got["thresholds"]) == set(got["classes"])
    assert "embedding" in got["reference"] and len(got["sha"]) == 64


def test_pyfunc_flavour_answers_a_dataframe_of_encoded_images(settings):
    """The version also loads as a plain MLflow pyfunc, for tools that know nothing of roomsight."""
    import mlflow.pyfunc
    import pandas as pd

    from tests.test_skeleton_e2e import jpeg

    classes = registry.load_model(ModelRef("roomtype", "1")).classes
    images = [jpeg(c, 7) for c in classes]
    out = mlflow.pyfunc.load_model("models:/roomtype/1").predict(pd.DataFrame({"image": images}))
    assert list(out.columns) == ["label", "score"] and len(out) == len(classes)
    assert set(out["label"]) <= set(classes) | {"unsure"}
    assert sum(label == c for label, c in zip(out["label"], classes)) >= 4
    assert out["score"].between(0, 1).all()


def test_registered_metrics_are_real(settings):
    mv = registry.client().get_model_version("roomtype", "2")
    run = registry.client().get_run(mv.run_id)
    assert run.data.metrics["test_accuracy"] > 0.6
    assert run.data.params["backbone"] == "tiny_cnn"
    assert registry.version_tags(ModelRef("roomtype", "2"))["stage"] == "registered"


def test_thresholds_reach_target_precision():
    rng = np.random.default_rng(0)
    n, c = 2000, 3
    y = rng.integers(c, size=n)
    logits = rng.normal(size=(n, c))
    logits[np.arange(n), y] += rng.normal(1.5, 1.5, size=n)  # informative but noisy
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    chosen = thresholds_at_precision(probs, y, ["a", "b", "c"], target=0.95)
    decided = apply_thresholds(probs, ["a", "b", "c"], {k: v.threshold for k, v in chosen.items()})
    for k, name in enumerate(["a", "b", "c"]):
        mask = decided == k
        assert chosen[name].reached
        assert (y[mask] == k).mean() >= 0.95
        assert abs(chosen[name].recall - (mask & (y == k)).sum() / (y == k).sum()) < 1e-9
    # without thresholds precision is far lower: the thresholds did the work
    assert (probs.argmax(1) == y).mean() < 0.9


def test_unreachable_precision_means_always_unsure():
    probs = np.array([[0.6, 0.4], [0.6, 0.4], [0.4, 0.6]])
    y = np.array([1, 1, 1])
    chosen = thresholds_at_precision(probs, y, ["a", "b"], target=0.95)
    assert not chosen["a"].reached and chosen["a"].threshold > 1.0
    assert chosen["b"].reached


def test_manifest_errors_are_clear(tmp_path):
    bad = tmp_path / "m.csv"
    bad.write_text("file,label\nx.jpg,kitchen\n")
    with pytest.raises(DataError, match="missing column.*path"):
        data.load_manifest(bad)
    one = tmp_path / "one"
    (one / "kitchen").mkdir(parents=True)
    from PIL import Image

    for i in range(3):
        Image.new("RGB", (8, 8)).save(one / "kitchen" / f"{i}.jpg")
    with pytest.raises(DataError, match="at least 2 classes"):
        data.check_trainable(data.load_manifest(one))
    # Answers are logged under their class's name, which PostgreSQL's label column holds to 64 characters.
    long = "k" * 65
    (one / long).mkdir()
    for i in range(3):
        Image.new("RGB", (8, 8)).save(one / long / f"{i}.jpg")
    with pytest.raises(DataError, match=f"longer than 64 characters cannot be logged: {long}"):
        data.check_trainable(data.load_manifest(one))
    with pytest.raises(DataError, match="not found"):
        data.load_manifest(tmp_path / "nope")


def test_a_class_named_as_the_abstention_is_refused():
    """A labeller's folder of photos they could not place, named `unsure`, trained as a class: the model then
    answered `unsure` when it named that class at the target precision, which a client, the review queue
    and the analyses all read as the model abstaining."""
    from pathlib import Path

    items = [data.Item(Path(f"{c}{i}.jpg"), c) for c in ("kitchen", "unsure") for i in range(3)]
    with pytest.raises(DataError, match="unsure"):
        data.check_trainable(items)


def test_manifests_saved_by_a_spreadsheet_load_and_binary_ones_are_refused(tmp_path):
    excel = tmp_path / "excel.csv"
    excel.write_bytes("path,label\r\nx.jpg,kitchen\r\n".encode("utf-8-sig"))  # BOM and CRLF, as Excel writes
    assert [(i.path.name, i.label) for i in data.load_manifest(excel)] == [("x.jpg", "kitchen")]
    latin = tmp_path / "latin.csv"
    latin.write_bytes("path,label\nsalle_à_manger.jpg,dining_room\n".encode("latin-1"))
    with pytest.raises(DataError, match="not UTF-8 text"):
        data.load_manifest(latin)


def test_unreadable_images_are_skipped_and_listed(tmp_path):
    from PIL import Image

    (tmp_path / "a").mkdir()
    Image.new("RGB", (8, 8)).save(tmp_path / "a" / "ok.jpg")
    (tmp_path / "a" / "broken.jpg").write_bytes(b"\xff\xd8 not really")
    loaded = data.load_images(data.load_manifest(tmp_path))
    assert len(loaded.items) == 1 and loaded.skipped[0][0].name == "broken.jpg"


def test_split_is_seeded_and_stratified(tmp_path):
    items = [data.Item(path=tmp_path / f"{c}{i}.jpg", label=c) for c in "abc" for i in range(40)]
    s1, s2, s3 = data.split(items, seed=1), data.split(items, seed=1), data.split(items, seed=2)
    assert s1.valid == s2.valid and s1.valid != s3.valid
    assert sorted(i.label for i in s1.valid) == ["a"] * 6 + ["b"] * 6 + ["c"] * 6
    assert not set(s1.train) & set(s1.valid) and not set(s1.valid) & set(s1.test)


def test_copies_of_one_photo_go_to_one_part_whatever_the_order_they_are_listed_in(tmp_path):
    items = [data.Item(path=tmp_path / f"{c}{i}.jpg", label=c) for c in "ab" for i in range(40)]
    digests = [f"photo{k % 40}" for k in range(80)]  # each photo twice: once as a, once as b
    s = data.split(items, seed=1, digests=digests)
    part = {it: name for name in ("train", "valid", "test") for it in getattr(s, name)}
    assert len(part) == 80 and all(part[items[k]] == part[items[k + 40]] for k in range(40))
    assert data.split(items[::-1], seed=1, digests=digests[::-1]) == s
    assert data.split(items, seed=1, digests=[str(k) for k in range(80)]) == data.split(items, seed=1)


def test_thresholds_are_cut_on_the_first_copy_of_each_photo():
    assert data.first_copies(["p", "q", "p", "r", "q"]) == [0, 1, 3]


def test_a_model_every_class_of_which_abstains_is_refused_naming_the_cause_and_the_remedies():
    from training.abstaining import check_answers
    from training.pipeline import TrainConfig

    # 9 right answers in a row a class: the 90% lower bound stays below 0.95 (it needs 45)
    probs = np.repeat(np.eye(3) * 0.8 + 0.1, 9, axis=0)
    chosen = thresholds_at_precision(probs, np.repeat(np.arange(3), 9), ["a", "b", "c"], 0.95, method="lcb",
                                     confidence=0.9)
    assert not any(t.reached for t in chosen.values()) and chosen["a"].precision is None
    with pytest.raises(DataError) as info:
        check_answers(chosen, TrainConfig(folds=1), "lcb", "the 27 validation photos", cross_fits=True)
    says = str(info.value)
    for part in ("would answer only 'unsure'", "no class reaches 0.95 precision on the 27 validation photos (9 photos a class)",
                 "after 45 right answers in a row", "--folds 5", "--threshold-method point",
                 "--target-precision", "--allow-always-unsure"):
        assert part in says, says
    check_answers(chosen, TrainConfig(folds=1, allow_always_unsure=True), "lcb", "them", cross_fits=True)
    # one class that answers is a model: the others' abstaining is reported, not refused
    chosen["b"] = thresholds_at_precision(probs, np.repeat(np.arange(3), 9), ["a", "b", "c"], 0.95)["b"]
    check_answers(chosen, TrainConfig(folds=1), "lcb", "them", cross_fits=True)


def test_train_refuses_to_register_a_model_that_answers_nothing_unless_told_to(tmp_path):
    """`--folds 1` on few photos a class: the lower bound can reach the target for no class. That model used
    to be registered with 'precision 0.000' and exit 0."""
    from typer.testing import CliRunner

    from shell.cli import app
    from tests.conftest import settings_for
    from training.synthetic import write_dataset

    photos = write_dataset(tmp_path / "ds", 10, size=32, seed=2)
    home = tmp_path / "home"
    args = ["train", "--data", str(photos), "--backbone", "tiny_cnn", "--no-pretrained", "--tune", "head",
            "--folds", "1", "--epochs", "1"]
    runner = CliRunner()
    refused = runner.invoke(app, args, env={"ROOMSIGHT_HOME": str(home)})
    out = " ".join(refused.output.split())
    assert refused.exit_code == 1 and "not registered" in out and "--allow-always-unsure" in out, out
    assert "Traceback" not in out and "models:/" not in out
    registry.configure(settings_for(home))
    assert registry.client().search_model_versions("name='roomtype'") == []

    forced = runner.invoke(app, [*args, "--allow-always-unsure"], env={"ROOMSIGHT_HOME": str(home)})
    out = " ".join(forced.output.split())
    assert forced.exit_code == 0 and "this model answers only 'unsure'" in out, out
    assert "precision n/a" in out and "precision 0.000" not in out
    pack = registry.load_model(ModelRef("roomtype", "1"))
    assert pack.meta.metrics["test_precision_at_thresholds"] is None
    assert all(t["precision"] is None for t in pack.meta.thresholding["per_class"].values())
    run = registry.client().get_run(registry.client().get_model_version("roomtype", "1").run_id)
    assert "test_precision_at_thresholds" not in run.data.metrics and "test_accuracy" in run.data.metrics


def test_a_model_that_could_only_abstain_is_refused_before_any_fitting(tmp_path):
    """Under the lower bound a class answers only after 45 right answers in a row: with fewer photos a class
    to cut on, no fit can change the outcome, so the refusal comes before the minutes of fitting."""
    from tests.conftest import settings_for
    from training.abstaining import check_answerable
    from training.pipeline import TrainConfig, train
    from training.synthetic import write_dataset

    seen: list[str] = []
    cfg = TrainConfig(data=write_dataset(tmp_path / "ds", 10, size=32, seed=2), backbone="tiny_cnn", pretrained=False,
                      tune="head", folds=1, epochs=1)
    with pytest.raises(DataError, match=r"no class can reach 0\.95 precision on the \d+ validation photos"):
        train(settings_for(tmp_path / "home"), cfg, progress=lambda event, _info: seen.append(event))
    assert "split" in seen and "fit-start" not in seen, seen
    check_answerable({"a": 45, "b": 3}, TrainConfig(), "lcb", "them", cross_fits=True)  # one class may answer
    check_answerable({"a": 3}, TrainConfig(), "point", "them", cross_fits=True)  # a point estimate may answer
    with pytest.raises(DataError, match=r"\(3 to 44 photos a class\).*after 45 right answers in a row"):
        check_answerable({"a": 44, "b": 3}, TrainConfig(), "lcb", "them", cross_fits=True)
