"""`rollout train --workers 2`: data-parallel training with Ray Train on the CPU (gloo), small and synthetic."""

import pytest

from tests.conftest import settings_for


@pytest.mark.ray
def test_two_ray_train_workers_train_and_register(ray_session, tmp_path):
    from roomsight import registry
    from training import data
    from training.pipeline import TrainConfig, synthetic_dataset, train

    settings = settings_for(tmp_path / "home", ROOMSIGHT_RAY__TRAIN_STORAGE=str(tmp_path / "shared" / "ray-train"))
    registry.configure(settings)
    epochs = []
    result = train(settings, TrainConfig(synthetic_per_class=24, epochs=5, workers=2, seed=3),
                   progress=lambda event, info: epochs.append(info) if event == "epoch" else None)
    # the epochs ran in the workers and came back to the driver
    assert [int(e["epoch"]) for e in epochs] == list(range(1, len(epochs) + 1)) and len(epochs) >= 2
    run = registry.client().get_run(result.registered.run_id)
    assert run.data.params["workers"] == "2"
    # the exported model holds the best epoch's weights from the workers: on the validation split it
    # scores what the workers measured (untrained weights would score about 1/8)
    pack = registry.load_model(result.registered.ref)
    loaded = data.load_images(data.load_manifest(synthetic_dataset(settings, 24, 64)))
    valid = data.split(loaded.items, seed=3).valid
    image_of = {it.path: im for it, im in zip(loaded.items, loaded.images)}
    outs = pack.predict([image_of[it.path] for it in valid])
    accuracy = sum(o.top_class == it.label for o, it in zip(outs, valid)) / len(valid)
    assert accuracy == pytest.approx(result.metrics["valid_accuracy"], abs=0.05)
    assert result.metrics["valid_accuracy"] > 0.25
    # Ray Train persisted its run where ray.train_storage says (on a cluster, storage every node reaches)
    assert list((tmp_path / "shared" / "ray-train").rglob("model.pt"))
    assert not (settings.home / "ray-train").exists()
