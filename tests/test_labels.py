"""Caption rules: the shipped YAML on the synthetic generator's host-style captions, and `rollout labels`."""

import csv

import numpy as np
import pytest
from typer.testing import CliRunner

from rollout.cli import app
from training.labels import RulesError, label_csv, load_rules, score
from training.synthetic import CLASSES, caption_for, write_dataset

runner = CliRunner()


@pytest.mark.parametrize("caption", [
    "view of the living room from the kitchen", "stairs to bedroom and kitchen", "bedroom 2, bathroom ensuite",
    "open plan living room", "off the second bedroom", "garden and house", "4 bedroom villa", "", "Balcony"])
def test_misleading_or_empty_captions_abstain(caption):
    assert load_rules().label(caption) == ""


@pytest.mark.parametrize("caption,label", [
    ("Cosy double bedroom", "bedroom"), ("MODERN BATHROOM WITH WALK-IN SHOWER", "bathroom"),
    ("Panoramic views", "view"), ("Pool with sun loungers", "swimming_pool"), ("Cosy lounge with sofa bed", "living_room"),
    ("The house from the street", "exterior"), ("dining table for eight", "dining_room")])
def test_clean_captions_get_their_class(caption, label):
    assert load_rules().label(caption) == label


def test_rules_are_precise_on_synthetic_captions():
    rules = load_rules()
    gold = [c for c in CLASSES for _ in range(150)]
    pred = [rules.label(caption_for(c, np.random.default_rng([7, k, i]))) for k, c in enumerate(CLASSES) for i in range(150)]
    rep = score(pred, gold)
    # about 1 in 4 captions is empty or misleading: abstaining on them is the point
    assert rep.precision >= 0.98 and 0.6 <= rep.coverage <= 0.85
    assert all(s.precision >= 0.95 and s.coverage >= 0.5 for s in rep.per_class.values())


def test_custom_rules_file_with_max_length_and_excludes(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text("classes:\n  pool: {include: [pool], exclude: [indoor], max_length: 12}\n  spa: {include: [spa]}\n")
    rules = load_rules(path)
    assert rules.label("Outdoor pool") == "pool"
    assert rules.label("Indoor pool") == ""  # excluded
    assert rules.label("Lovely big outdoor pool") == ""  # too long for the pool rule
    assert rules.label("pool and spa") == ""  # two classes
    path.write_text("classes:\n  pool: {keywords: [pool]}\n")
    with pytest.raises(RulesError, match="unknown key"):
        load_rules(path)


@pytest.mark.parametrize("yaml_text,says", [
    ("max_length: short\nclasses: {pool: {include: [pool]}}", "`max_length` must be a whole number of characters"),
    ("classes: {pool: {include: [pool], max_length: 0}}", "`pool.max_length` must be a whole number"),
    ("exlude: [indoor]\nclasses: {pool: {include: [pool]}}", "unknown key(s) ['exlude']"),
    ("classes: {pool: {include: [pool]}, spa: {include: [hot tub, Pool]}}",
     "keyword 'Pool' is included by both 'pool' and 'spa'"),
])
def test_rules_that_would_label_nothing_or_crash_are_refused_naming_the_key(tmp_path, yaml_text, says):
    """A text max_length was a ValueError traceback; a negative one, a misspelt top-level `exclude` and a
    keyword two classes include silently labelled less."""
    path = tmp_path / "r.yaml"
    path.write_text(yaml_text + "\n")
    with pytest.raises(RulesError) as info:
        load_rules(path)
    assert says in str(info.value)


def test_labels_command_adds_label_and_reports_against_gold(tmp_path):
    manifest = write_dataset(tmp_path / "ds", 6, size=16, seed=3)
    out = tmp_path / "labelled.csv"
    result = runner.invoke(app, ["labels", "--captions", str(manifest), "--out", str(out), "--gold", str(manifest)],
                           env={"ROOMSIGHT_HOME": str(tmp_path / "home")})
    assert result.exit_code == 0, result.output
    assert "precision" in result.output and "coverage" in result.output
    with out.open() as f:
        rows = list(csv.DictReader(f))
    with manifest.open() as f:
        given = list(csv.DictReader(f))
    assert len(rows) == len(given)
    assert {"path", "caption", "region", "label_given", "label"} <= set(rows[0])
    labelled = [r for r in rows if r["label"]]
    assert 0 < len(labelled) < len(rows)
    assert all(r["label"] == r["label_given"] for r in labelled)
    empty = [r for r in rows if not r["caption"]]
    assert all(r["label"] == "" for r in empty)
    # the output is a training manifest: its relative paths still point at the photos
    from training.data import load_manifest

    items = load_manifest(out)
    assert len(items) == len(labelled) and all(i.path.exists() for i in items)


def test_labels_command_needs_a_caption_column(tmp_path):
    bad = tmp_path / "x.csv"
    bad.write_text("path,text\na.jpg,kitchen\n")
    result = runner.invoke(app, ["labels", "--captions", str(bad), "--out", str(tmp_path / "o.csv")],
                           env={"ROOMSIGHT_HOME": str(tmp_path / "home")})
    assert result.exit_code == 1 and "caption" in result.output


def test_gold_without_join_key_must_align(tmp_path):
    caps = tmp_path / "c.csv"
    caps.write_text("caption\nKitchen\nBedroom\n")
    gold = tmp_path / "g.csv"
    gold.write_text("label\nkitchen\n")
    with pytest.raises(RulesError, match="rows"):
        label_csv(caps, tmp_path / "o.csv", load_rules(), gold)
    gold.write_text("label\nkitchen\nbathroom\n")
    rep = label_csv(caps, tmp_path / "o.csv", load_rules(), gold).report
    assert rep.per_class["kitchen"].precision == 1.0 and rep.per_class["bedroom"].precision == 0.0


def test_labels_reads_spreadsheet_csv_and_refuses_binary_with_a_message(tmp_path):
    excel = tmp_path / "excel.csv"
    excel.write_bytes("caption,listing_id\r\nCosy double bedroom,7\r\n".encode("utf-8-sig"))
    result = runner.invoke(app, ["labels", "--captions", str(excel), "--out", str(tmp_path / "out.csv")])
    assert result.exit_code == 0, result.output
    with open(tmp_path / "out.csv", newline="") as f:
        assert list(csv.DictReader(f)) == [{"caption": "Cosy double bedroom", "listing_id": "7", "label": "bedroom"}]
    junk = tmp_path / "photo.csv"
    junk.write_bytes(b"\xff\xd8\xff\xe0\x00\x10JFIF\x00")
    result = runner.invoke(app, ["labels", "--captions", str(junk), "--out", str(tmp_path / "junk-out.csv")])
    out = " ".join(result.output.split())  # Rich wraps long lines
    assert result.exit_code == 1 and f"captions file {junk} is not UTF-8 text" in out and "Traceback" not in out
    assert not (tmp_path / "junk-out.csv").exists()
