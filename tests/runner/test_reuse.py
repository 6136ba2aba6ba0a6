"""A run is copied into another study only when it read what a run trained here would read:
the same data as loaded, the same teacher checkpoints, the same device kind and precision,
and the same training behaviour (`harness.inputs`)."""

from __future__ import annotations

import shutil

import pytest
import torch

from harness.data import load_dataset
from harness.inputs import inputs_key, legacy_inputs_key
from harness.runner import run_identity, run_study
from harness.runner._context import RunContext
from harness.store import Store
from harness.study import study_from_dict
from tests.helpers import fake_trainer, record_run, tiny_dict, write_image_folder


def _folder_study(root, name):
    dataset = {"name": "imagefolder", "path": str(root), "image_size": 8, "val_fraction": 0.34}
    return study_from_dict(tiny_dict(name=name, dataset=dataset, grid={}, seeds=[0]))


@pytest.mark.e2e
def test_a_run_whose_dataset_folder_changed_is_trained_not_copied(tmp_path, monkeypatch):
    """The finding: two class folders swapped, and a new study copied the old run's 0.76."""
    data_root = tmp_path / "data"
    write_image_folder(data_root, train=6, val=3, shape=(20, 20))
    url = f"sqlite:///{tmp_path / 'libkd.db'}"
    store = Store(url)
    first = _folder_study(data_root, "first")
    [spec] = first.trials()
    load_dataset.cache_clear()
    cpu = torch.device("cpu")
    ctx = RunContext(store=store, cache_dir=tmp_path / "cache", device=cpu, study="x")
    key = ctx.inputs_keys(spec.config.for_seed(0))
    assert len(key) == 1  # a dataset folder: no legacy key
    record_run(
        store,
        run_identity(spec, study="trained", trial_number=0),  # trained from this folder
        metrics={"val/top1": 0.76, "test/top1": 0.76},
        inputs=key[0],
    )
    trained = fake_trainer(monkeypatch)
    summary = run_study(first, store=store, cache_dir=tmp_path / "cache")
    assert (summary.copied, trained) == (1, [])  # same folder: copied
    for split in ("train", "val"):
        (data_root / split / "cat").rename(data_root / split / "tmp")
        (data_root / split / "dog").rename(data_root / split / "cat")
        (data_root / split / "tmp").rename(data_root / split / "dog")
    load_dataset.cache_clear()
    summary = run_study(_folder_study(data_root, "second"), store=store, cache_dir=tmp_path / "c")
    assert summary.copied == 0 and len(trained) == 1  # the labels changed: trained again
    load_dataset.cache_clear()


def test_a_replaced_teacher_checkpoint_changes_the_key(tmp_path):
    checkpoint = tmp_path / "conv.pt"
    checkpoint.write_bytes(b"first weights")
    data = tiny_dict()
    data["teachers"]["conv"]["checkpoint"] = str(checkpoint)
    config = study_from_dict(data).trials()[-1].config  # conv+inv
    ctx = RunContext(
        store=Store(f"sqlite:///{tmp_path / 'db'}"),
        cache_dir=tmp_path / "cache",
        device=torch.device("cpu"),
        study="x",
    )
    before = ctx.inputs_keys(config)
    shutil.copy(checkpoint, tmp_path / "old.pt")
    checkpoint.write_bytes(b"other weights, same path")
    after = ctx.inputs_keys(config)
    assert len(before) == len(after) == 1 and before != after
    # Without the checkpoint the run reads no user file: runs stored before keys match it.
    plain = study_from_dict(tiny_dict()).trials()[-1].config
    assert ctx.inputs_keys(plain)[1] == legacy_inputs_key(device_kind="cpu", precision="auto")


def test_device_kind_and_resolved_precision_are_part_of_the_key():
    key = {"data": "d", "checkpoints": {}}
    cpu = inputs_key(device_kind="cpu", precision="auto", **key)
    cuda = inputs_key(device_kind="cuda", precision="auto", **key)
    assert cpu != cuda
    assert cpu == inputs_key(device_kind="cpu", precision="fp32", **key)  # auto is fp32 there
    assert cuda == inputs_key(device_kind="cuda", precision="bf16", **key)
    assert legacy_inputs_key(device_kind="cpu", precision="auto") != legacy_inputs_key(
        device_kind="cuda", precision="auto"
    )


@pytest.mark.e2e
def test_local_workers_count_copied_runs_as_copied_not_as_run(tmp_path, cache_dir):
    """`libkd run --workers 2` counted every trial completed by any worker as run now,
    copies included."""
    import torch

    from harness.runner import RunnerSession, run_local_workers

    url = f"sqlite:///{tmp_path / 'libkd.db'}"
    store = Store(url)
    study = study_from_dict(tiny_dict(seeds=[0, 1], grid={"distill.teachers": [[], ["conv"]]}))
    ctx = RunContext(store=store, cache_dir=cache_dir, device=torch.device("cpu"), study="x")
    for spec in study.trials():  # every run trained by another study, from the same inputs
        record_run(
            store,
            run_identity(spec, study="trained", trial_number=0),
            metrics={"val/top1": 0.5, "test/top1": 0.5},
            inputs=ctx.inputs_keys(spec.config.for_seed(spec.seed))[0],
        )
    session = RunnerSession(study, store=store)
    session.prepare()
    summary = run_local_workers(session, cache_dir=cache_dir, device="cpu", workers=2)
    assert (summary.complete, summary.ran, summary.copied) == (4, 0, 4)
