from __future__ import annotations

import math

import pytest
import torch

from harness.config import DistillConfig
from harness.distill import DistillationLoss, hard_kd, soft_kd
from harness.models import StudentOutput


def test_soft_kd_matches_hand_computed_value():
    student = torch.tensor([[1.0, 0.0]])
    teacher = torch.tensor([[0.0, 1.0]])
    t = 2.0
    p = [math.exp(0) / (math.exp(0) + math.exp(0.5)), math.exp(0.5) / (math.exp(0) + math.exp(0.5))]
    q = [p[1], p[0]]  # student at T=2 is the mirror image
    kl = sum(pi * math.log(pi / qi) for pi, qi in zip(p, q))
    assert soft_kd(student, teacher, t).item() == pytest.approx(kl * t * t, rel=1e-6)


def test_soft_kd_is_batchmean_and_zero_for_equal_logits():
    logits = torch.randn(5, 7)
    assert soft_kd(logits, logits, 3.0).item() == pytest.approx(0.0, abs=1e-6)
    one = soft_kd(logits[:1], logits[1:2].flip(-1), 1.0)
    doubled = soft_kd(logits[:1].repeat(4, 1), logits[1:2].flip(-1).repeat(4, 1), 1.0)
    assert doubled.item() == pytest.approx(one.item(), rel=1e-5)


def test_hard_kd_uses_teacher_argmax():
    student = torch.tensor([[2.0, 0.0, 0.0]])
    teacher = torch.tensor([[0.0, 0.0, 5.0]])
    expected = -math.log(math.exp(0) / (math.exp(2) + 2))
    assert hard_kd(student, teacher).item() == pytest.approx(expected, rel=1e-6)


def _two_teacher_batch() -> tuple[StudentOutput, dict[str, torch.Tensor], torch.Tensor]:
    """A student's heads, two teachers' logits and labels for 4 samples of 3 classes."""
    torch.manual_seed(0)
    out = StudentOutput(
        cls=torch.randn(4, 3), dist={"conv": torch.randn(4, 3), "inv": torch.randn(4, 3)}
    )
    teachers = {"conv": torch.randn(4, 3), "inv": torch.randn(4, 3)}
    return out, teachers, torch.tensor([0, 1, 2, 0])


def test_per_teacher_terms_are_named_and_weighted():
    out, teachers, y = _two_teacher_batch()
    config = DistillConfig(
        teachers=("conv", "inv"),
        temperature={"conv": 2.0, "inv": 4.0},
        weights={"cls": 0.5, "conv": 2.0, "inv": 1.0},
    )
    terms = DistillationLoss(distill=config, shared=False, label_smoothing=0.0)(out, y, teachers)
    assert set(terms) == {"cls", "kd/conv", "kd/inv", "loss"}
    assert terms["kd/conv"] == pytest.approx(soft_kd(out.dist["conv"], teachers["conv"], 2.0))
    assert terms["kd/inv"] == pytest.approx(soft_kd(out.dist["inv"], teachers["inv"], 4.0))
    expected = 0.5 * terms["cls"] + 2.0 * terms["kd/conv"] + 1.0 * terms["kd/inv"]
    assert terms["loss"].item() == pytest.approx(expected.item(), rel=1e-6)


def test_shared_token_learns_the_weighted_ensemble():
    out = StudentOutput(cls=torch.zeros(1, 2), dist={"shared": torch.tensor([[0.0, 0.0]])})
    teachers = {"conv": torch.tensor([[10.0, -10.0]]), "inv": torch.tensor([[-10.0, 10.0]])}
    config = DistillConfig(
        teachers=("conv", "inv"), temperature=1.0, weights={"conv": 3.0, "inv": 1.0}
    )
    terms = DistillationLoss(distill=config, shared=True, label_smoothing=0.0)(
        out, torch.tensor([0]), teachers
    )
    ensemble = torch.tensor([0.75, 0.25])  # weights 3:1 over two near one-hot teachers
    kl = (ensemble * (ensemble / 0.5).log()).sum()
    assert terms["kd/shared"].item() == pytest.approx(kl.item(), rel=1e-4)
    assert terms["loss"].item() == pytest.approx(terms["cls"].item() + 2.0 * kl.item(), rel=1e-4)


def test_no_teachers_is_cross_entropy_only():
    out = StudentOutput(cls=torch.randn(3, 4), dist={})
    terms = DistillationLoss(distill=DistillConfig(), shared=False, label_smoothing=0.1)(
        out, torch.tensor([0, 1, 2]), {}
    )
    assert set(terms) == {"cls", "loss"}
    assert terms["loss"] == terms["cls"]


def test_normalised_weights_give_every_teacher_set_the_same_total():
    """With normalize_weights, conv+inv at weights 2:1 distils with 2/3 and 1/3 (total 1,
    as conv alone at weight 1); the shared token's term gets weight 1."""
    out, teachers, y = _two_teacher_batch()
    config = DistillConfig(
        teachers=("conv", "inv"),
        temperature=2.0,
        weights={"cls": 1.0, "conv": 2.0, "inv": 1.0},
        normalize_weights=True,
    )
    terms = DistillationLoss(distill=config, shared=False, label_smoothing=0.0)(out, y, teachers)
    expected = terms["cls"] + 2 / 3 * terms["kd/conv"] + 1 / 3 * terms["kd/inv"]
    assert terms["loss"].item() == pytest.approx(expected.item(), rel=1e-6)
    alone = DistillConfig(teachers=("conv",), temperature=2.0, normalize_weights=True)
    assert alone.teacher_weight("conv") == 1.0
    shared_out = StudentOutput(cls=out.cls, dist={"shared": out.dist["conv"]})
    shared = DistillationLoss(distill=config, shared=True, label_smoothing=0.0)(
        shared_out, y, teachers
    )
    assert shared["loss"].item() == pytest.approx((shared["cls"] + shared["kd/shared"]).item())


def test_shared_hard_distillation_takes_the_argmax_of_the_mixture_at_t():
    """At T = 1 the mixture of [3, 3, -3] and [1, 0, 3] peaks at class 2, at T = 4 at class
    0: the temperature matters to a shared token's hard label, so it is kept (per-teacher
    hard distillation ignores it and canonicalises it to 1)."""
    from harness.distill import temperature_matters

    teachers = {"conv": torch.tensor([[3.0, 3.0, -3.0]]), "inv": torch.tensor([[1.0, 0.0, 3.0]])}
    student = StudentOutput(cls=torch.zeros(1, 3), dist={"shared": torch.tensor([[0.0, 1.0, 2.0]])})
    for temperature, label in ((1.0, 2), (4.0, 0)):
        config = DistillConfig(teachers=("conv", "inv"), loss="hard", temperature=temperature)
        terms = DistillationLoss(distill=config, shared=True, label_smoothing=0.0)(
            student, torch.tensor([0]), teachers
        )
        expected = torch.nn.functional.cross_entropy(student.dist["shared"], torch.tensor([label]))
        assert terms["kd/shared"].item() == pytest.approx(expected.item())
    assert temperature_matters("hard", "shared", 2)
    assert not temperature_matters("hard", "shared", 1)  # one teacher: its own token
    assert not temperature_matters("hard", "per_teacher", 2)
    assert temperature_matters("soft", "per_teacher", 1)
