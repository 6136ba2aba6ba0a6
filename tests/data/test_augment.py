from __future__ import annotations

import torch

from harness.config import AugmentConfig
from harness.data import ViewSchedule, augment_views, view_params
from harness.data._augment import ViewParams

POLICY = AugmentConfig(pad_crop=2, hflip=True, aug_seed=7)


def test_view_params_are_a_pure_function_of_seed_index_view():
    idx = torch.arange(100)
    views = idx % 5
    a, b = view_params(POLICY, idx, views), view_params(POLICY, idx.flip(0), views.flip(0))
    assert torch.equal(a.dy, b.dy.flip(0)) and torch.equal(a.flip, b.flip.flip(0))
    other_seed = view_params(AugmentConfig(pad_crop=2, hflip=True, aug_seed=8), idx, views)
    assert not torch.equal(a.dy, other_seed.dy)
    assert a.dy.min() >= 0 and a.dy.max() <= 4 and a.dx.max() <= 4
    assert 0.3 < a.flip.float().mean() < 0.7


def test_schedule_is_deterministic_and_varies_by_epoch():
    schedule = ViewSchedule(policy=POLICY, views=8)
    idx = torch.arange(500)
    assert torch.equal(schedule.views_for(3, idx), schedule.views_for(3, idx))
    assert not torch.equal(schedule.views_for(3, idx), schedule.views_for(4, idx))
    assert set(schedule.views_for(0, idx).tolist()) == set(range(8))
    assert torch.equal(
        ViewSchedule(policy=POLICY, views=0).views_for(5, idx), torch.zeros(500, dtype=torch.int64)
    )


def test_crop_and_flip_move_pixels_as_specified():
    image = torch.arange(16, dtype=torch.uint8).view(1, 1, 4, 4)
    # Offset (pad, pad) with no flip is the identity.
    same = ViewParams(dy=torch.tensor([1]), dx=torch.tensor([1]), flip=torch.tensor([False]))
    assert torch.equal(augment_views(image, same, pad=1), image)
    # Offset (0, 0) shifts the image down-right by one and pads with zeros.
    shifted = augment_views(
        image, ViewParams(torch.tensor([0]), torch.tensor([0]), torch.tensor([False])), pad=1
    )
    assert torch.equal(shifted[0, 0, 1:, 1:], image[0, 0, :3, :3])
    assert shifted[0, 0, 0].sum() == 0
    flipped = augment_views(
        image, ViewParams(torch.tensor([1]), torch.tensor([1]), torch.tensor([True])), pad=1
    )
    assert torch.equal(flipped, image.flip(-1))


def test_same_views_give_same_pixels_in_any_batch_order():
    images = torch.randint(0, 255, (10, 1, 8, 8), dtype=torch.uint8)
    schedule = ViewSchedule(policy=POLICY, views=4)
    idx = torch.tensor([3, 1, 7])
    views = schedule.views_for(2, idx)
    batch = schedule.images(images, idx, views)
    one = schedule.images(images, idx[1:2], views[1:2])
    assert torch.equal(batch[1:2], one)


def test_a_sample_views_are_distinct_until_the_view_space_is_used_up():
    """pad 1 and flips: 3 x 3 crops x 2 flips = 18 distinct views; a sample's first 18 views
    are all different (drawn with replacement, 8 views held 5.49 distinct ones on average)."""
    from harness.data import view_space

    policy = AugmentConfig(pad_crop=1, hflip=True, aug_seed=3)
    assert view_space(policy) == 18
    indices = torch.arange(200).repeat_interleave(18)
    views = torch.arange(18).repeat(200)
    p = view_params(policy, indices, views)
    combos = (p.dy * 3 + p.dx + 9 * p.flip.long()).view(200, 18)
    assert all(len(set(row.tolist())) == 18 for row in combos)
    # Samples start at different views, so a batch mixes crops.
    assert len(set(combos[:, 0].tolist())) > 9


def test_the_schedule_uses_every_stored_view_once_per_cycle():
    schedule = ViewSchedule(policy=AugmentConfig(pad_crop=1, hflip=True), views=8)
    indices = torch.arange(64)
    for block in range(3):
        used = torch.stack([schedule.views_for(8 * block + e, indices) for e in range(8)])
        assert all(sorted(column.tolist()) == list(range(8)) for column in used.T)
    # Each cycle has an order of its own, and samples differ within an epoch.
    first = torch.stack([schedule.views_for(e, indices) for e in range(8)])
    second = torch.stack([schedule.views_for(8 + e, indices) for e in range(8)])
    assert not torch.equal(first, second)
    assert len(set(schedule.views_for(0, indices).tolist())) == 8
