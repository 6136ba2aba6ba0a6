from __future__ import annotations

import math

import pytest
import torch

from harness.config import DistillConfig, StudentConfig
from harness.data import load_dataset
from harness.distill import agreement, attention_distance, evaluate, image_spec
from harness.models import build_student, build_teacher, forward_flops, parameter_count
from harness.study import study_from_dict
from tests.helpers import tiny_dict


def _student_and_data(teachers=("conv", "inv")):
    config = study_from_dict(tiny_dict()).configs[-1].config
    data = load_dataset(config.dataset)
    torch.manual_seed(0)
    student = build_student(
        StudentConfig(patch_size=2, embed_dim=16, depth=2, num_heads=2),
        DistillConfig(teachers=teachers),
        image_spec(data),
    )
    return config, data, student


def test_agreement_with_labels_is_top1_and_with_itself_is_one():
    config, data, student = _student_and_data()
    teacher = build_teacher(config.teachers["conv"], image_spec(data)).eval()
    values = agreement(student, data, {"conv": teacher})
    top1 = evaluate(student, data)
    assert values["diag/agree/combined/labels"] == pytest.approx(top1["val/top1"])
    assert values["diag/agree/cls/labels"] == pytest.approx(top1["val/top1_cls"])
    assert set(values) >= {"diag/agree/conv/conv", "diag/agree/inv/conv", "diag/agree/cls/conv"}

    class Echo(torch.nn.Module):  # a "teacher" that is the student's class head
        def forward(self, images):
            return student.forward_heads(images).cls

    assert agreement(student, data, {"echo": Echo()})["diag/agree/cls/echo"] == 1.0


def test_attention_distance_is_bounded_and_restores_fused_attention():
    _, data, student = _student_and_data()
    fused_before = [b.attn.fused_attn for b in student.blocks]
    layers = attention_distance(student, data.normalize(data.val_x[:8]))
    assert len(layers) == 2
    max_distance = math.hypot(6, 6)  # 4x4 patches of 2 pixels on an 8x8 image
    assert all(0 < d <= max_distance for d in layers)
    assert [b.attn.fused_attn for b in student.blocks] == fused_before


def test_attention_distance_of_uniform_attention_is_the_mean_pairwise_distance():
    _, data, student = _student_and_data(teachers=())
    for block in student.blocks:  # zero queries and keys: softmax gives uniform attention
        torch.nn.init.zeros_(block.attn.qkv.weight)
        torch.nn.init.zeros_(block.attn.qkv.bias)
    ys, xs = torch.meshgrid(torch.arange(4), torch.arange(4), indexing="ij")
    coords = torch.stack([ys.flatten(), xs.flatten()], -1).float() * 2
    expected = torch.cdist(coords, coords).mean().item()
    layers = attention_distance(student, data.normalize(data.val_x[:4]))
    assert layers == pytest.approx([expected, expected], rel=1e-5)


def test_flops_and_parameters():
    _, data, student = _student_and_data()
    flops = forward_flops(student, data.normalize(data.val_x[:2]))
    linear = torch.nn.Linear(10, 5)
    assert forward_flops(linear, torch.zeros(3, 10)) == 2 * 10 * 5
    assert flops > 2 * parameter_count(student.blocks)  # every block weight used per token
