"""`rollout evaluate`'s figures for the model as exported, the thresholds serving applies: per class, as the
answer contract is, with the classes it never names. No registry: a stand-in model answers from the photos'
colours."""

import numpy as np
from PIL import Image

from roomsight.modelpack import PackMeta
from roomsight.preprocess import Preprocessing

CLASSES = ["attic", "bathroom", "cellar"]


class ColourModel:
    """Calls each photo by its brightest channel, surely: red photos `attic`, green `bathroom`, blue `cellar`."""

    def __init__(self, thresholds: dict[str, float]) -> None:
        self.meta = PackMeta(classes=CLASSES, preprocessing=Preprocessing(size=8), thresholds=thresholds)
        self.classes = CLASSES

    def forward(self, batch):  # noqa: ANN001, ANN201
        means = batch.mean(dim=(2, 3)).numpy()
        return (means * 20).astype(np.float32), means.astype(np.float32)


def test_the_as_exported_figures_name_the_classes_it_never_answers_and_each_class_precision(tmp_path, monkeypatch):
    """A model that never names `cellar` (its threshold above every score) read as one answering 2/3 of
    the photos at some overall precision: which room types it names, and how precisely each, was not said."""
    from training import evaluate as module

    colours = {"attic": (250, 0, 0), "bathroom": (0, 250, 0), "cellar": (0, 0, 250)}
    for label, rgb in colours.items():
        (tmp_path / "d" / label).mkdir(parents=True)
        # Each photo a shade of its own: copies of one photo would be split as one (training.data.split).
        for i in range(4):
            Image.new("RGB", (8, 8), tuple(max(0, c - i) for c in rgb)).save(tmp_path / "d" / label / f"{i}.png")
        # green attics, called bathrooms: a class wrong half the time, which the overall figure hides
        Image.new("RGB", (8, 8), (0, 240 - len(label), 0)).save(tmp_path / "d" / "attic" / f"green-{i}.png")
    monkeypatch.setattr(module, "plot_confusion", lambda *a: None)  # the pictures are not the question here
    monkeypatch.setattr(module, "plot_pr", lambda *a: None)
    pack = ColourModel({"attic": 0.5, "bathroom": 0.5, "cellar": 1.000001})
    report = module.evaluate(pack, tmp_path / "d", tmp_path / "r.json", method="point").report
    exported = report["as_exported"]
    assert exported["abstaining"] == ["cellar"]
    assert exported["per_class"]["cellar"] == {"answered": 0, "precision": None}
    assert exported["per_class"]["attic"]["precision"] == 1.0
    assert exported["per_class"]["bathroom"]["precision"] < 0.95
