"""The LIB-KD objective as a module that returns named loss terms.

Convention (one everywhere, so temperatures compare across studies):
  soft: D_t = KL(softmax(z_t / T) || softmax(z_s / T)) * T^2, reduction batchmean;
  hard: D_t = CE(z_s, argmax z_t)  (DeiT hard distillation).
  loss = w_cls * CE(cls_head, y) + sum_t w_t * D_t.
Terms are returned unweighted by name ("cls", "kd/<teacher>" or "kd/shared"); "loss" is the
weighted sum that is optimised. In `shared` mode the one distillation head learns the
ensemble distribution (teacher probabilities at one temperature, mixed in proportion to the
teachers' weights), and that term's weight is the mean of the teachers' weights. A hard loss
in shared mode takes the argmax of that mixture, so its temperature matters there. With
`distill.normalize_weights` the teachers' weights sum to 1 (each term w_t / sum w), and the
shared term's weight is 1: every teacher set distils with the same total weight.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from harness._registry import Registry
from harness.config import DistillConfig
from harness.models import SHARED_TOKEN, TOKEN_MODES, StudentOutput


def soft_kd(student: torch.Tensor, teacher: torch.Tensor, temperature: float) -> torch.Tensor:
    """KL(teacher || student) at temperature T, times T^2, averaged over the batch."""
    return soft_kd_from_log_probs(
        student, F.log_softmax(teacher / temperature, dim=-1), temperature
    )


def soft_kd_from_log_probs(
    student: torch.Tensor, teacher_log_probs: torch.Tensor, temperature: float
) -> torch.Tensor:
    log_p_student = F.log_softmax(student / temperature, dim=-1)
    kl = F.kl_div(log_p_student, teacher_log_probs, reduction="batchmean", log_target=True)
    return kl * temperature**2


def hard_kd(student: torch.Tensor, teacher: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """CE against the teacher's argmax; the temperature cannot change an argmax."""
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


class DistillationLoss(nn.Module):
    """Named loss terms of one student output against labels and teacher logits."""

    def __init__(self, *, distill: DistillConfig, shared: bool, label_smoothing: float) -> None:
        super().__init__()
        self.distill = distill
        self.shared = shared and bool(distill.teachers)
        self.label_smoothing = label_smoothing

    def forward(
        self,
        output: StudentOutput,
        targets: torch.Tensor,
        teacher_logits: dict[str, torch.Tensor],
    ) -> dict[str, torch.Tensor]:
        d = self.distill
        # Losses in float32 even when the student ran under bf16 autocast.
        output = StudentOutput(
            cls=output.cls.float(), dist={k: v.float() for k, v in output.dist.items()}
        )
        terms = {"cls": F.cross_entropy(output.cls, targets, label_smoothing=self.label_smoothing)}
        total = d.weight_of("cls") * terms["cls"]
        if self.shared:
            term = self._ensemble_term(output.dist[SHARED_TOKEN], teacher_logits)
            terms[f"kd/{SHARED_TOKEN}"] = term
            weights = [d.teacher_weight(t) for t in d.teachers]
            weight = sum(weights) if d.normalize_weights else sum(weights) / len(weights)
            total = total + weight * term
        else:
            kind = LOSSES.get(d.loss)
            for name in d.teachers:
                term = kind.term(output.dist[name], teacher_logits[name], d.temperature_of(name))
                terms[f"kd/{name}"] = term
                total = total + d.teacher_weight(name) * term
        terms["loss"] = total
        return terms

    def _ensemble_term(
        self, student: torch.Tensor, teacher_logits: dict[str, torch.Tensor]
    ) -> torch.Tensor:
        d = self.distill
        temperature = d.temperature_of(d.teachers[0])
        # Mixture weights as Python floats: no tensor built on the device at every step.
        total = sum(d.weight_of(t) for t in d.teachers)
        ensemble = functools.reduce(
            operator.add,
            (
                d.weight_of(t) / total * F.softmax(teacher_logits[t].float() / temperature, dim=-1)
                for t in d.teachers
            ),
        )
        log_ensemble = ensemble.clamp_min(1e-12).log()
        return LOSSES.get(d.loss).ensemble_term(student, log_ensemble, temperature)
