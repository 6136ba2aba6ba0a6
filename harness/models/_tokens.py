"""Token modes (the distillation tokens a student gives its teachers) and the student's
patch rule: facts a study file is checked against, with no network built."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from harness._registry import Registry
from harness.config import DistillConfig, StudentConfig

SHARED_TOKEN = "shared"


@dataclass(frozen=True)
class TokenMode:
    """A registered token mode: the distillation tokens it gives a set of teachers, and the
    mode it runs as with `n` teachers (so equal experiments hash equal)."""

    tokens: Callable[[tuple[str, ...]], tuple[str, ...]]
    runs_as: Callable[[int], str]
    takes_teachers: bool = True


TOKEN_MODES: Registry[TokenMode] = Registry("token mode")
TOKEN_MODES.register("none")(
    TokenMode(tokens=lambda teachers: (), runs_as=lambda n: "none", takes_teachers=False)
)
# One learned token and head per teacher: DeiT's distillation token, one per teacher.
TOKEN_MODES.register("per_teacher")(
    TokenMode(tokens=tuple, runs_as=lambda n: "per_teacher" if n else "none")
)
# Co-advise/CivT: each teacher's token is computed from the image by a stem of that
# teacher's kind (a convolution stem for a CNN, an involution stem for a RedNet).
TOKEN_MODES.register("stem")(TokenMode(tokens=tuple, runs_as=lambda n: "stem" if n else "none"))
# One token taught by the ensemble; the ensemble of one teacher is that teacher.
TOKEN_MODES.register("shared")(
    TokenMode(
        tokens=lambda teachers: (SHARED_TOKEN,) if teachers else (),
        runs_as=lambda n: "shared" if n > 1 else ("per_teacher" if n else "none"),
    )
)


def token_names(student: StudentConfig, distill: DistillConfig) -> tuple[str, ...]:
    """The distillation tokens of a student: its token mode applied to its teachers."""
    return TOKEN_MODES.get(student.tokens).tokens(tuple(distill.teachers))


def patch_problem(student: StudentConfig, image_size: int) -> str | None:
    """Why the student's patches cannot tile images of this side, or None."""
    if image_size % student.patch_size:
        return (
            f"student.patch_size: {student.patch_size} does not divide the image size "
            f"{image_size}; pick a divisor"
        )
    return None
