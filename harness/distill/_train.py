"""The student training loop and evaluation of every head."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch.nn import functional as F

from harness._precision import autocast, resolve_precision
from harness.config import TrialConfig
from harness.data import Dataset, ViewSchedule
from harness.distill._loss import DistillationLoss
from harness.distill._optim import batches, make_optimizer
from harness.distill._resume import Resumable
from harness.distill._teacher_logits import TeacherSource
from harness.errors import TrialError
from harness.models import DistilledViT, ImageSpec, StudentOutput, build_student


@dataclass(frozen=True)
class EpochReport:
    epoch: int
    metrics: dict[str, float]


@dataclass
class StudentResult:
    model: DistilledViT
    history: list[EpochReport] = field(default_factory=list)
    train_seconds: float = 0.0
    eval_seconds: float = 0.0
    compile_seconds: float = 0.0  # the first step with torch.compile (tracing + codegen)
    resumed_epochs: int = 0  # epochs put back from a resume state, not trained by this call
    # Where those epochs were trained: each earlier sitting's `origin`, with its "epochs".
    resumed_from: list[dict[str, Any]] = field(default_factory=list)

    @property
    def final(self) -> dict[str, float]:
        return self.history[-1].metrics if self.history else {}


def image_spec(data: Dataset) -> ImageSpec:
    return ImageSpec(channels=data.channels, size=data.image_size, num_classes=data.num_classes)


@torch.no_grad()
def evaluate(
    model: DistilledViT,
    data: Dataset,
    *,
    split: str = "val",
    batch_size: int = 512,
    precision: str = "fp32",
) -> dict[str, float]:
    """`<split>/top1` of the combined prediction, of the class head and of each distillation
    head, and `<split>/loss`. Training evaluates "val" every epoch; the runner evaluates
    "test" once, on the final model."""
    model.eval()
    split_x, split_y = data.split(split)
    correct: dict[str, torch.Tensor] = {}
    loss_sum = torch.zeros((), device=split_x.device)
    for start in range(0, len(split_y), batch_size):
        images = data.normalize(split_x[start : start + batch_size])
        labels = split_y[start : start + batch_size]
        with autocast(precision, images.device):
            out = model.forward_heads(images)
        combined = out.combined(model.inference)
        loss_sum += F.cross_entropy(combined, labels, reduction="sum")
        heads = {"top1": combined, "top1_cls": out.cls}
        heads.update({f"top1_{name}": logits for name, logits in out.dist.items()})
        for key, logits in heads.items():
            hits = (logits.argmax(dim=-1) == labels).sum()
            correct[key] = correct.get(key, 0) + hits
    n = len(split_y)
    metrics = {f"{split}/{key}": float(value) / n for key, value in correct.items()}
    metrics[f"{split}/loss"] = float(loss_sum) / n
    return metrics


@dataclass
class StudentStep:
    """One optimisation step of a student, exactly as training runs it: views, teacher
    logits, forward, named loss terms, backward, clipping, optimiser and schedule.
    `libkd bench` times this very object, so its numbers are the training loop's."""

    model: DistilledViT
    forward: Callable[[torch.Tensor], StudentOutput]
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    criterion: DistillationLoss
    schedule: ViewSchedule
    data: Dataset
    teachers: TeacherSource | None
    precision: str
    grad_clip: float | None

    @classmethod
    def build(
        cls,
        *,
        config: TrialConfig,
        seed: int,
        data: Dataset,
        teachers: TeacherSource | None,
        device: torch.device,
    ) -> StudentStep:
        archs = {name: teacher.arch for name, teacher in config.teachers.items()}
        model = build_student(
            config.student, config.distill, image_spec(data), seed=seed, teacher_archs=archs
        )
        model = model.to(device)
        recipe = config.train
        steps = math.ceil(len(data.train_y) / recipe.batch_size)
        optimizer, scheduler = make_optimizer(model, recipe, steps_per_epoch=steps)
        return cls(
            model=model,
            forward=torch.compile(model.forward_heads) if recipe.compile else model.forward_heads,
            optimizer=optimizer,
            scheduler=scheduler,
            criterion=DistillationLoss(
                distill=config.distill,
                shared=config.student.tokens == "shared",
                label_smoothing=recipe.label_smoothing,
            ),
            schedule=ViewSchedule(policy=config.augment, views=config.cache.views),
            data=data,
            teachers=teachers,
            precision=resolve_precision(recipe.precision, device),
            grad_clip=recipe.grad_clip,
        )

    def __call__(self, epoch: int, indices: torch.Tensor) -> dict[str, torch.Tensor]:
        views = self.schedule.views_for(epoch, indices)
        images = self.data.normalize(self.schedule.images(self.data.train_x, indices, views))
        teacher_logits = self.teachers.logits(indices, views, images) if self.teachers else {}
        with autocast(self.precision, images.device):
            output = self.forward(images)
        terms = self.criterion(output, self.data.train_y[indices], teacher_logits)
        self.optimizer.zero_grad(set_to_none=True)
        terms["loss"].backward()
        if self.grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.grad_clip)
        self.optimizer.step()
        self.scheduler.step()
        return terms


def train_student(
    *,
    config: TrialConfig,
    seed: int,
    data: Dataset,
    teachers: TeacherSource | None,
    device: torch.device,
    on_epoch: Callable[[EpochReport], None] | None = None,
    resume: Path | None = None,
    resume_every: float | None = None,
    origin: dict[str, Any] | None = None,
) -> StudentResult:
    """Train a ViT student on `data` (already on `device`), distilling from `teachers`.

    With `resume`, the training state (`harness.distill._resume`) and the epochs' reports
    are written there at the end of an epoch every `resume_every` seconds (default
    `RESUME_EVERY_SECONDS`) and after the last epoch. A later call with the same file goes
    on from the epoch it names, first handing the stored epochs' reports to `on_epoch`
    again: its result is an uninterrupted call's, bit for bit, on the same machine. The
    caller names the file after everything the training depends on, holds it alone, and
    removes it once the result is kept (after the last epoch a call reads it and trains
    nothing). `origin` (JSON values: where this call runs, e.g. its commit) is kept with the
    state for each sitting, with how many epochs it trained; a resumed result's
    `resumed_from` lists the earlier sittings'."""
    train_step = StudentStep.build(
        config=config, seed=seed, data=data, teachers=teachers, device=device
    )
    model, recipe, n = train_step.model, config.train, len(data.train_y)
    per_epoch = math.ceil(n / recipe.batch_size)
    epochs, left = recipe.epochs_for(per_epoch), recipe.total_steps(per_epoch)
    generator = torch.Generator().manual_seed(seed)
    result = StudentResult(model=model)
    first, state = 0, None
    if resume is not None:
        parts = {
            "model": model,
            "optimizer": train_step.optimizer,
            "scheduler": train_step.scheduler,
        }
        state = Resumable(resume, parts, generator, device, epochs, per_epoch, resume_every)
        if (stored := state.load()) is not None:
            first, left = int(stored["epoch"]), int(stored["left"])
            result.history = [EpochReport(r["epoch"], r["metrics"]) for r in stored["history"]]
            result.train_seconds = float(stored["train_seconds"])
            result.eval_seconds = float(stored["eval_seconds"])
            result.compile_seconds = float(stored["compile_seconds"])
            result.resumed_epochs = first
            result.resumed_from = list(stored.get("sittings", []))
            for report in result.history:
                if on_epoch is not None:
                    on_epoch(report)
    for epoch in range(first, epochs):
        start = time.perf_counter()
        model.train()
        sums: dict[str, torch.Tensor] = {}
        seen = 0
        # A step budget ends the last epoch part-way: its loss averages the batches it ran.
        epoch_batches = batches(n, recipe.batch_size, generator=generator, device=device)
        for step, indices in enumerate(epoch_batches[:left]):
            step_start = time.perf_counter()
            terms = train_step(epoch, indices)
            seen += len(indices)
            # Loss terms stay on the device until the epoch ends: no per-step synchronisation.
            for name, value in terms.items():
                sums[name] = sums.get(name, 0) + value.detach().float() * len(indices)
            if recipe.compile and epoch == 0 and step == 0:
                if device.type == "cuda":
                    torch.cuda.synchronize(device)
                result.compile_seconds = time.perf_counter() - step_start
                start += result.compile_seconds
        left -= len(epoch_batches)
        train_seconds = time.perf_counter() - start
        metrics = {f"train/{name}": float(total) / seen for name, total in sums.items()}
        if not math.isfinite(metrics["train/loss"]):
            raise TrialError(f"training loss became {metrics['train/loss']} in epoch {epoch}")
        eval_start = time.perf_counter()
        if recipe.validates(epoch, per_epoch):
            metrics.update(evaluate(model, data, precision=train_step.precision))
        eval_seconds = time.perf_counter() - eval_start
        metrics.update(
            {
                "lr": train_step.optimizer.param_groups[0]["lr"],
                "epoch_seconds": train_seconds,
                "samples_per_second": seen / train_seconds,
            }
        )
        result.train_seconds += train_seconds
        result.eval_seconds += eval_seconds
        report = EpochReport(epoch=epoch, metrics=metrics)
        result.history.append(report)
        if state is not None:  # before `on_epoch`, which may stop training here
            state.save(
                epoch=epoch + 1,
                left=left,
                extra={
                    "history": [{"epoch": r.epoch, "metrics": r.metrics} for r in result.history],
                    "train_seconds": result.train_seconds,
                    "eval_seconds": result.eval_seconds,
                    "compile_seconds": result.compile_seconds,
                    "sittings": [
                        *result.resumed_from,
                        {**(origin or {}), "epochs": epoch + 1 - result.resumed_epochs},
                    ],
                },
                force=epoch + 1 == epochs,
            )
        if on_epoch is not None:
            on_epoch(report)
    return result
