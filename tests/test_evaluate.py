"""`rollout evaluate` and `rollout embed` on a registered model and a fresh synthetic dataset."""

import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from shell.cli import app
from training.evaluate import build_report as ev_report
from training.synthetic import write_dataset
from training.thresholds import thresholds_at_precision as ev_thresholds

runner = CliRunner()


@pytest.fixture(scope="module")
def fresh_photos(tmp_path_factory):
    # seed 11: photos the registered models never saw
    return write_dataset(tmp_path_factory.mktemp("eval") / "ds", 20, size=64, seed=11)


def test_evaluate_writes_report_with_thresholds_from_a_separate_part(settings, fresh_photos, tmp_path):
    out = tmp_path / "eval" / "report.json"
    result = runner.invoke(app, ["evaluate", "--model", "models:/roomtype@champion", "--data", str(fresh_photos),
                                 "--json", str(out)], env={"ROOMSIGHT_HOME": str(settings.home)})
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[0].strip(), result.output  # the table's title, not the progress bar's blank line
    rep = json.loads(out.read_text())
    classes = rep["confusion"]["labels"][:-1]
    assert rep["confusion"]["labels"][-1] == "unsure" and len(classes) == 8
    assert set(rep["per_class"]) == set(classes)
    assert 0.5 < rep["accuracy"] <= 1.0
    m = np.asarray(rep["confusion"]["matrix"])
    assert m.shape == (9, 9) and m.sum() == rep["n_test"] and m[-1].sum() == 0
    assert rep["n_valid"] + rep["n_test"] == 160 and rep["n_valid"] == 48
    # 6 validation photos a class cannot bound precision at 0.95 (6 of 6 right: lower bound 0.68), so every
    # class abstains and the report says so; the model's own thresholds still answer.
    assert rep["thresholding"]["method"] == "lcb" and rep["thresholding"]["abstaining"] == classes
    assert rep["coverage"] == 0.0 and rep["as_exported"]["coverage"] > 0.5
    assert "always unsure" in result.output and "as exported" in result.output
    # a class that answers nothing has no precision (null, n/a), not a precision of 0; its recall is 0
    assert rep["accuracy_at_thresholds"] is None and all(r["precision"] is None for r in rep["per_class"].values())
    assert all(t["precision"] is None for t in rep["thresholding"]["per_class"].values())
    assert "precision n/a" in " ".join(result.output.split()) and "0.000 │ 0.000" not in result.output
    assert rep["seen_in_training"] == {"photos": 0, "of": 160} and "trained on" not in result.output
    for c, row in rep["per_class"].items():
        assert set(row) == {"precision", "recall", "threshold", "ap", "support"}
        k = classes.index(c)
        # recall at the threshold is what the matrix says: the thresholds are applied in evaluation
        assert row["recall"] == pytest.approx(m[k, k] / m[k].sum())
        assert row["support"] == m[k].sum()
    for suffix in (".confusion.png", ".pr.png"):
        png = out.with_name("report" + suffix)
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads(out.with_name("report.confusion.json").read_text()) == rep["confusion"]


def test_thresholds_are_chosen_on_the_validation_part_only(settings, fresh_photos, tmp_path):
    from roomsight import registry
    from roomsight.modelpack import softmax
    from training import data
    from training.evaluate import evaluate, predict_items
    from training.thresholds import thresholds_at_precision

    pack = registry.load_model(registry.resolve("models:/roomtype/1"))
    ev = evaluate(pack, fresh_photos, tmp_path / "r.json", seed=4, method="point")
    pred = predict_items(pack, data.load_manifest(fresh_photos))
    parts = data.split(pred.items, seed=4, valid=0.3, test=0.0)
    pos = {it.path: k for k, it in enumerate(pred.items)}
    idx = [pos[it.path] for it in parts.valid]
    y = np.asarray([pack.classes.index(pred.items[k].label) for k in idx])
    expected = thresholds_at_precision(softmax(pred.logits[idx]), y, pack.classes, 0.95, method="point")
    assert {c: r["threshold"] for c, r in ev.report["per_class"].items()} == {c: t.threshold for c, t in expected.items()}


def test_evaluating_on_the_photos_the_model_trained_on_says_how_many_it_saw(settings, tmp_path):
    """Its own training folder used to give an accuracy near 1 with no word that the model had seen them."""
    from roomsight import registry

    run = registry.client().get_run(registry.client().get_model_version("roomtype", "1").run_id)
    own, seen = run.data.params["data"], int(run.data.params["n_train"]) + int(run.data.params["n_valid"])
    out = tmp_path / "r.json"
    result = runner.invoke(app, ["evaluate", "--model", "models:/roomtype/1", "--data", own, "--json", str(out)],
                           env={"ROOMSIGHT_HOME": str(settings.home)})
    said = " ".join(result.output.split())
    assert result.exit_code == 0, said
    assert json.loads(out.read_text())["seen_in_training"] == {"photos": seen, "of": 480}
    assert f"warning: {seen} of these 480 photos are ones the model trained on" in said
    assert "overstate how it does on new photos (its accuracy on its own test part: 0." in said


def test_seen_photos_are_recognised_by_content_and_older_models_by_their_data_hash(tmp_path):
    import shutil

    from roomsight.modelpack import PackMeta
    from roomsight.preprocess import Preprocessing
    from training import data
    from training.evaluate import seen_in_training

    items = data.load_manifest(write_dataset(tmp_path / "ds", 2, size=16, seed=5))
    shutil.copytree(tmp_path / "ds", tmp_path / "copy")  # the same photos elsewhere are still the same photos
    copied = data.load_manifest(tmp_path / "copy")
    meta = PackMeta(classes=sorted({i.label for i in items}), preprocessing=Preprocessing(size=16),
                    trained_on=sorted(data.load_images(items[:5]).digests), data_sha256=data.manifest_hash(items))
    evaluated = data.load_images(copied).digests
    assert seen_in_training(meta, copied, evaluated) == {"photos": 5, "of": len(items)}
    older = PackMeta.from_dict({k: v for k, v in meta.to_dict().items() if k != "trained_on"})
    assert older.trained_on == [] and seen_in_training(older, items, evaluated) == {"photos": None, "of": len(items)}
    assert seen_in_training(older, items[1:], evaluated[1:]) is None  # other data: nothing can be told


def test_evaluate_refuses_labels_the_model_does_not_know(settings, tmp_path):
    from PIL import Image

    for label in ("attic", "kitchen"):
        (tmp_path / "d" / label).mkdir(parents=True)
        for i in range(3):
            Image.new("RGB", (64, 64)).save(tmp_path / "d" / label / f"{i}.jpg")
    result = runner.invoke(app, ["evaluate", "--model", "models:/roomtype/1", "--data", str(tmp_path / "d"),
                                 "--json", str(tmp_path / "r.json")], env={"ROOMSIGHT_HOME": str(settings.home)})
    assert result.exit_code == 1 and "attic" in result.output


def test_a_gold_set_of_one_class_is_evaluated_and_a_class_of_one_photo_is_refused(settings, tmp_path):
    """Evaluate refused a gold set of kitchens alone with training's words ("need at least 2 classes to
    train a classifier"); the question it asks of the model is fair, and the other classes show no recall
    rather than a recall of 0."""
    from PIL import Image

    (tmp_path / "d" / "kitchen").mkdir(parents=True)
    for i in range(6):
        Image.new("RGB", (64, 64), (40 * i, 90, 200)).save(tmp_path / "d" / "kitchen" / f"{i}.jpg")
    out = tmp_path / "r.json"
    env = {"ROOMSIGHT_HOME": str(settings.home)}
    result = runner.invoke(app, ["evaluate", "--model", "models:/roomtype/1", "--data", str(tmp_path / "d"),
                                 "--json", str(out)], env=env)
    assert result.exit_code == 0, result.output
    per_class = json.loads(out.read_text())["per_class"]
    assert per_class["kitchen"]["support"] > 0 and per_class["kitchen"]["recall"] is not None
    assert per_class["bedroom"]["support"] == 0 and per_class["bedroom"]["recall"] is None
    assert per_class["bedroom"]["ap"] is None

    (tmp_path / "d" / "bedroom").mkdir()
    Image.new("RGB", (64, 64)).save(tmp_path / "d" / "bedroom" / "0.jpg")
    result = runner.invoke(app, ["evaluate", "--model", "models:/roomtype/1", "--data", str(tmp_path / "d"),
                                 "--json", str(out)], env=env)
    assert result.exit_code == 1 and "fewer than 2 photos" in result.output and "bedroom" in result.output


def test_embed_draws_the_pca_scatter(settings, fresh_photos, tmp_path):
    out = tmp_path / "pca.png"
    result = runner.invoke(app, ["embed", "--model", "models:/roomtype/2", "--data", str(fresh_photos), "--out", str(out)],
                           env={"ROOMSIGHT_HOME": str(settings.home)})
    assert result.exit_code == 0, result.output
    assert out.read_bytes()[:4] == b"\x89PNG" and "160 images" in result.output


@pytest.mark.parametrize("command,option,name,says", [
    ("embed", "--out", "folder", "is a folder; give a file name"),
    ("embed", "--out", "pca", "give a .png file name"),  # matplotlib would write pca.png and we would report `pca`
    ("evaluate", "--json", "folder", "is a folder; give a file name"),
])
def test_output_paths_that_cannot_be_written_are_refused_before_the_work(settings, tmp_path, command, option, name, says):
    (tmp_path / "folder").mkdir()
    result = runner.invoke(app, [command, "--model", "models:/roomtype/1", "--data", str(tmp_path / "no-photos-here"),
                                 option, str(tmp_path / name)], env={"ROOMSIGHT_HOME": str(settings.home)})
    out = " ".join(result.output.split())
    assert result.exit_code == 1 and says in out, out  # the missing data would have been the error after the check
    assert not list(tmp_path.glob("pca*"))


def test_pca_2d_finds_the_main_direction():
    from training.embedview import pca_2d

    rng = np.random.default_rng(0)
    x = np.c_[rng.normal(0, 10, 300), rng.normal(0, 1, 300), rng.normal(0, 0.1, 300)]
    pts, explained = pca_2d(x)
    assert pts.shape == (300, 2) and explained[0] > 0.95
    assert abs(np.corrcoef(pts[:, 0], x[:, 0])[0, 1]) > 0.99


def test_a_model_damaged_in_the_artifact_store_is_a_one_line_error_naming_it(tmp_path, fresh_photos, monkeypatch):
    """A lost or half-copied artifact store used to end in a BadZipFile or JSONDecodeError traceback, or in
    a temporary folder's path; and each load left its copy of the pack behind in the temp folder."""
    import tempfile

    from tests.conftest import settings_for
    from training.pipeline import TrainConfig, train

    home = tmp_path / "home"  # a private registry: the shared one's artifacts are read by every test
    train(settings_for(home), TrainConfig(seed=0, epochs=1))
    temp = tmp_path / "tmp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    (pack,) = home.glob("mlartifacts/**/pack")

    def evaluate(exit_code: int = 1) -> str:
        result = runner.invoke(app, ["evaluate", "--model", "models:/roomtype/1", "--data", str(fresh_photos),
                                     "--json", str(tmp_path / "e.json")], env={"ROOMSIGHT_HOME": str(home)})
        out = " ".join(result.output.split())
        assert result.exit_code == exit_code and "Traceback" not in out, out
        assert list(temp.iterdir()) == []  # the downloaded copy was removed
        return out

    assert "accuracy" in evaluate(exit_code=0)
    model = (pack / "model.pt2").read_bytes()
    (pack / "model.pt2").write_bytes(model[:1000])
    assert "cannot load models:/roomtype/1: its model.pt2 is damaged (not a complete archive)" in evaluate()
    (pack / "model.pt2").unlink()
    assert "cannot load models:/roomtype/1: its model.pt2 is missing from the artifact store" in evaluate()
    (pack / "model.pt2").write_bytes(model)
    meta = json.loads((pack / "meta.json").read_text())
    (pack / "meta.json").write_text(json.dumps({**meta, "classes": meta["classes"][:-1]}))
    named = len(meta["classes"]) - 1
    assert (f"cannot load models:/roomtype/1: its meta.json names {named} classes but its model.pt2 gives "
            f"{named + 1} scores per photo") in evaluate()
    (pack / "meta.json").write_text('{"classes":')
    assert "cannot load models:/roomtype/1: its meta.json is damaged" in evaluate()
    (pack / "meta.json").unlink()
    assert "cannot load models:/roomtype/1: its meta.json is missing" in evaluate()


class _MeanColour(torch.nn.Module):
    """A stand-in network: a photo's mean colour is its logits and its embedding."""

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z = x.mean(dim=(2, 3))
        return z, z


def test_a_photo_listed_twice_is_never_both_cut_on_and_measured(tmp_path, monkeypatch):
    from PIL import Image

    from roomsight.modelpack import ModelPack, PackMeta
    from roomsight.preprocess import Preprocessing
    from training import evaluate as ev

    rows = ["path,label"]
    for k in range(24):
        label = "abc"[k % 3]
        Image.new("RGB", (8, 8), (10 * k, 255 - 10 * k, 7 * k)).save(tmp_path / f"{k}.png")
        (tmp_path / f"copy{k}.png").write_bytes((tmp_path / f"{k}.png").read_bytes())
        rows += [f"{k}.png,{label}", f"copy{k}.png,{label}"]
    (tmp_path / "m.csv").write_text("\n".join(rows) + "\n")
    cut, measured = [], []
    monkeypatch.setattr(ev, "thresholds_at_precision",
                        lambda probs, *a, **k: cut.append(probs) or ev_thresholds(probs, *a, **k))
    monkeypatch.setattr(ev, "build_report", lambda probs, *a: measured.append(probs) or ev_report(probs, *a))
    pack = ModelPack(_MeanColour(), PackMeta(classes=["a", "b", "c"], preprocessing=Preprocessing(size=8)))
    report = ev.evaluate(pack, tmp_path / "m.csv", tmp_path / "r.json", method="point").report
    assert report["n_valid"] * 2 + report["n_test"] == 48  # the thresholds are cut on each photo once
    shared = {tuple(r) for r in cut[0].round(6)} & {tuple(r) for r in measured[0].round(6)}
    assert not shared, f"{len(shared)} photos are in both the part the thresholds were cut on and the one measured"


def test_a_photo_listed_twice_is_one_right_answer_to_the_lower_bound(tmp_path):
    """30 kitchens, each right, listed twice: 30 right answers cannot bound precision at 0.95 (the 90% bound
    needs 45 in a row), however many rows they fill."""
    from PIL import Image

    from roomsight.modelpack import ModelPack, PackMeta
    from roomsight.preprocess import Preprocessing
    from training import evaluate as ev

    rows = ["path,label"]
    for k in range(60):
        Image.new("RGB", (8, 8), (200 + k % 50, 20 + k, 10)).save(tmp_path / f"{k}.png")
        (tmp_path / f"copy{k}.png").write_bytes((tmp_path / f"{k}.png").read_bytes())
        rows += [f"{k}.png,kitchen", f"copy{k}.png,kitchen"]
    (tmp_path / "m.csv").write_text("\n".join(rows) + "\n")
    pack = ModelPack(_MeanColour(), PackMeta(classes=["kitchen", "bedroom", "bathroom"], preprocessing=Preprocessing(size=8)))
    report = ev.evaluate(pack, tmp_path / "m.csv", tmp_path / "r.json", valid_share=0.5).report
    assert report["n_valid"] == 30 and "kitchen" in report["thresholding"]["abstaining"]
