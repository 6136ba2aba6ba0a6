"""The distillation loss kinds: each one's term against one teacher and against an
ensemble, and whether its temperature can matter (read without torch when a study file is
checked; torch is imported when a term is computed)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from harness._registry import Registry
from harness.models import TOKEN_MODES

if TYPE_CHECKING:
    import torch


def soft_kd(student: torch.Tensor, teacher: torch.Tensor, temperature: float) -> torch.Tensor:
    """KL(teacher || student) at temperature T, times T^2, averaged over the batch."""
    from torch.nn import functional as F

    return soft_kd_from_log_probs(
        student, F.log_softmax(teacher / temperature, dim=-1), temperature
    )


def soft_kd_from_log_probs(
    student: torch.Tensor, teacher_log_probs: torch.Tensor, temperature: float
) -> torch.Tensor:
    from torch.nn import functional as F

    log_p_student = F.log_softmax(student / temperature, dim=-1)
    kl = F.kl_div(log_p_student, teacher_log_probs, reduction="batchmean", log_target=True)
    return kl * temperature**2


def hard_kd(student: torch.Tensor, teacher: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """CE against the teacher's argmax; the temperature cannot change an argmax."""
    from torch.nn import functional as F

    return F.cross_entropy(student, teacher.argmax(dim=-1))


@dataclass(frozen=True)
class LossKind:
    """A registered distillation loss: its term against one teacher's logits, its term
    against an ensemble's log-probabilities, and whether its temperature can matter."""

    term: Callable[[torch.Tensor, torch.Tensor, float], torch.Tensor]
    ensemble_term: Callable[[torch.Tensor, torch.Tensor, float], torch.Tensor]
    uses_temperature: bool


def _hard_ensemble(
    student: torch.Tensor, log_ensemble: torch.Tensor, temperature: float
) -> torch.Tensor:
    from torch.nn import functional as F

    return F.cross_entropy(student, log_ensemble.argmax(dim=-1))


LOSSES: Registry[LossKind] = Registry("distillation loss")
LOSSES.register("soft")(
    LossKind(term=soft_kd, ensemble_term=soft_kd_from_log_probs, uses_temperature=True)
)
LOSSES.register("hard")(
    LossKind(term=hard_kd, ensemble_term=_hard_ensemble, uses_temperature=False)
)


def temperature_matters(loss: str, tokens: str, teachers: int) -> bool:
    """Whether T can change training: a soft loss always; a hard loss only through a shared
    token's mixture of two or more teachers, whose argmax depends on T."""
    mixes = TOKEN_MODES.get(tokens).runs_as(teachers) == "shared"
    return LOSSES.get(loss).uses_temperature or mixes
