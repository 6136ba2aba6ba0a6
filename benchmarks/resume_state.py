"""What resumable training costs: one write of a resume state (weights, AdamW moments,
schedule, random states; a student's also carries its epochs' reports) for each teacher of a
study and for its student, as training writes it every `RESUME_EVERY_SECONDS`.

    python benchmarks/resume_state.py studies/premise_data_size.yaml
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

from harness.data import load_dataset
from harness.distill import image_spec
from harness.distill._optim import make_optimizer
from harness.distill._resume import RESUME_EVERY_SECONDS, snapshot, write_state
from harness.models import build_student, build_teacher
from harness.study import load_study


def _time_writes(
    model: nn.Module,
    recipe: Any,
    x: torch.Tensor,
    extra: dict,
    folder: Path,
    name: str,
    repeats: int,
) -> str:
    optimizer, scheduler = make_optimizer(model, recipe, steps_per_epoch=10)
    model(x).sum().backward()
    optimizer.step()  # the moments exist, as after any training step
    scheduler.step()
    parts = {"model": model, "optimizer": optimizer, "scheduler": scheduler}
    path = folder / f"{name}.resume.pt"
    cpu = torch.device("cpu")
    start = time.perf_counter()
    for _ in range(repeats):
        write_state(path, snapshot(parts, torch.Generator(), cpu) | {"epoch": 1} | extra)
    seconds = (time.perf_counter() - start) / repeats
    return (
        f"{name}: {seconds * 1000:.1f} ms per write, {path.stat().st_size / 2**20:.2f} MiB, "
        f"{seconds / RESUME_EVERY_SECONDS:.3%} of training time"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("study", type=Path)
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    configs = [point.config for point in load_study(args.study).configs]
    config = next((c for c in configs if c.distill.teachers), configs[0])
    data = load_dataset(config.dataset)
    spec, x = image_spec(data), data.normalize(data.train_x[:8])
    with tempfile.TemporaryDirectory() as folder:
        for name in config.distill.teachers:
            teacher = config.teachers[name]
            model = build_teacher(teacher, spec)
            line = _time_writes(model, teacher.train, x, {}, Path(folder), name, args.repeats)
            print(f"teacher {line} ({teacher.arch})")
        archs = {name: config.teachers[name].arch for name in config.distill.teachers}
        student = build_student(config.student, config.distill, spec, teacher_archs=archs)
        per_epoch = math.ceil(len(data.train_y) / config.train.batch_size)
        epochs = config.train.epochs_for(per_epoch)
        # Every epoch's report, as many metrics as a distilled student's epoch has.
        report = {f"metric/{i}": 0.5 for i in range(6 + 4 * len(archs))}
        history = [{"epoch": e, "metrics": report} for e in range(epochs)]
        line = _time_writes(
            student,
            config.train,
            x,
            {"history": history},
            Path(folder),
            "student",
            args.repeats,
        )
        print(f"{line} ({epochs} epochs of reports)")


if __name__ == "__main__":
    main()
