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

import torch
from torch import nn
from torch.nn import functional as F

from harness.config import DistillConfig
from harness.distill._loss_kinds import LOSSES
from harness.models import SHARED_TOKEN, StudentOutput


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
