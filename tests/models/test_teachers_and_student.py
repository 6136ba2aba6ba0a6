from __future__ import annotations

import pytest
import torch
from timm.models.vision_transformer import VisionTransformer

from harness.config import DistillConfig, StudentConfig, TeacherConfig
from harness.models import ImageSpec, build_student, build_teacher, teacher_arch_known

IMAGE = ImageSpec(channels=1, size=8, num_classes=10)


@pytest.mark.parametrize("arch", ["resnet", "rednet", "timm:resnet10t"])
def test_teachers_predict_classes(arch):
    model = build_teacher(TeacherConfig(arch=arch, width=16), IMAGE)
    assert model(torch.randn(2, 1, 8, 8)).shape == (2, 10)


def test_teacher_names_are_checked():
    assert teacher_arch_known("resnet") and teacher_arch_known("timm:vit_tiny_patch16_224")
    assert not teacher_arch_known("timm:no_such_model") and not teacher_arch_known("vgg")


@pytest.mark.parametrize(
    ("tokens", "teachers", "heads"),
    [
        ("none", (), []),
        ("per_teacher", ("conv", "inv"), ["conv", "inv"]),
        ("per_teacher", ("conv",), ["conv"]),
        ("shared", ("conv", "inv"), ["shared"]),
    ],
)
def test_student_token_modes(tokens, teachers, heads):
    student = build_student(
        StudentConfig(tokens=tokens, embed_dim=16, depth=1, num_heads=2, patch_size=2),
        DistillConfig(teachers=teachers),
        IMAGE,
    )
    assert isinstance(student, VisionTransformer)
    assert student.num_prefix_tokens == 1 + len(heads)
    assert student.pos_embed.shape[1] == 16 + 1 + len(heads)
    out = student.forward_heads(torch.randn(3, 1, 8, 8))
    assert out.cls.shape == (3, 10)
    assert list(out.dist) == heads
    mean = torch.stack([out.cls, *out.dist.values()]).mean(0)
    assert torch.allclose(out.combined("mean"), mean)
    assert student(torch.randn(3, 1, 8, 8)).shape == (3, 10)
    assert torch.equal(out.combined("cls"), out.cls)


def test_distillation_tokens_read_their_own_positions():
    student = build_student(
        StudentConfig(embed_dim=16, depth=1, num_heads=2),
        DistillConfig(teachers=("conv", "inv")),
        IMAGE,
    )
    student.eval()
    x = torch.randn(2, 1, 8, 8)
    tokens = student.forward_features(x)
    out = student.forward_heads(x)
    assert torch.allclose(out.dist["inv"], student.dist_heads["inv"](tokens[:, 2]))
    assert torch.allclose(out.cls, student.head(tokens[:, 0]))


def test_students_paired_by_seed_share_their_body_whatever_their_tokens():
    from harness.config import DistillConfig, StudentConfig
    from harness.models import ImageSpec, build_student

    image = ImageSpec(channels=1, size=8, num_classes=10)
    config = StudentConfig(patch_size=2, embed_dim=16, depth=2, num_heads=2)
    students = [
        build_student(config, DistillConfig(teachers=teachers), image, seed=3)
        for teachers in ((), ("conv",), ("conv", "inv"))
    ]
    plain = students[0].state_dict()
    patches = students[0].patch_embed.num_patches
    for student in students[1:]:
        own = student.state_dict()
        for name, value in plain.items():
            if name == "pos_embed":  # class and patch positions; token positions are extra
                assert torch.equal(own[name][:, :1], value[:, :1])
                assert torch.equal(own[name][:, -patches:], value[:, -patches:])
            else:
                assert torch.equal(own[name], value), name
    # Another seed is another network; the tokens differ from the body's stream.
    other = build_student(config, DistillConfig(), image, seed=4).state_dict()
    assert not torch.equal(other["blocks.0.attn.qkv.weight"], plain["blocks.0.attn.qkv.weight"])
    two = students[2].state_dict()
    assert not torch.equal(two["reg_token"][:, 0], two["reg_token"][:, 1])


def test_timm_teachers_that_would_see_nothing_are_refused_and_resizing_fits_them():
    from harness.config import TeacherConfig
    from harness.errors import StudyError
    from harness.models import ImageSpec, build_teacher
    from harness.study import study_from_dict
    from tests.helpers import tiny_dict

    def study(teacher: dict) -> object:
        data = tiny_dict(teachers={"t": teacher}, distill={"teachers": ["t"]}, grid={})
        return study_from_dict(data)

    # Stride-32 convolution networks on 8x8 digits: a padded 1x1 map still sees the image
    # (test_resnet learns them); refusing them ("nothing is left") was wrong.
    study({"arch": "timm:lcnet_035"})
    study({"arch": "timm:test_resnet"})
    study({"arch": "timm:lcnet_035", "input_size": 64})
    # A timm ViT with 16-pixel patches sees nothing of 8 pixels: built for the declared
    # side, fed resized digits.
    with pytest.raises(
        StudyError,
        match=r"teachers\.t\.arch: timm:vit_tiny_patch16_224 cannot take 8x8 images "
        r"\(.*\); set input_size to 32 or more",
    ):
        study({"arch": "timm:vit_tiny_patch16_224"})
    vit = build_teacher(
        TeacherConfig(arch="timm:vit_tiny_patch16_224", input_size=32),
        ImageSpec(channels=1, size=8, num_classes=10),
    )
    assert vit(torch.randn(2, 1, 8, 8)).shape == (2, 10)
    with pytest.raises(StudyError, match=r"teachers\.t\.input_size: 32 resizes images for timm"):
        study({"arch": "resnet", "input_size": 32})


def test_stem_tokens_come_from_the_image_through_each_teacher_kind():
    """CivT-style tokens: the conv teacher's token from a convolution stem, the inv
    teacher's from an involution stem; a token now depends on the image (a learned token
    does not), and every head trains through the student's blocks."""
    from harness.config import DistillConfig, StudentConfig
    from harness.models import ImageSpec, Involution2d, build_student

    image = ImageSpec(channels=1, size=8, num_classes=10)
    config = StudentConfig(patch_size=2, embed_dim=16, depth=1, num_heads=2, tokens="stem")
    student = build_student(
        config,
        DistillConfig(teachers=("conv", "inv")),
        image,
        seed=0,
        teacher_archs={"conv": "resnet", "inv": "rednet"},
    )
    assert student.reg_token is None and list(student.stems) == ["conv", "inv"]
    assert not any(isinstance(m, Involution2d) for m in student.stems["conv"].modules())
    assert any(isinstance(m, Involution2d) for m in student.stems["inv"].modules())
    student.eval()
    images = torch.randn(2, 1, 8, 8)
    features = student.forward_features(images)
    assert features.shape == (2, 3 + 16, 16)  # class, two stem tokens, 4x4 patches
    # The token each stem feeds in depends on the image (a learned token is one constant).
    tokens = student.stems["conv"](images)
    assert tokens.shape == (2, 16) and not torch.allclose(tokens[0], tokens[1])
    out = student.forward_heads(images)
    assert set(out.dist) == {"conv", "inv"} and out.cls.shape == (2, 10)
    out.dist["inv"].sum().backward()
    assert student.stems["inv"][1].span.weight.grad is not None
