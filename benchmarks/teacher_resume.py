"""What resumable teacher training costs: one write of a teacher's resume state (weights,
AdamW moments, schedule, random states) per teacher of a study, as `train_teacher` writes it
every `RESUME_EVERY_SECONDS`.

    python benchmarks/teacher_resume.py studies/premise_data_size.yaml
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from harness.data import load_dataset
from harness.distill import image_spec
from harness.distill._optim import make_optimizer
from harness.distill._teacher_training import RESUME_EVERY_SECONDS, _snapshot, _write_resume
from harness.models import build_teacher
from harness.study import load_study


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("study", type=Path)
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    configs = [point.config for point in load_study(args.study).configs]
    config = next((c for c in configs if c.distill.teachers), configs[0])
    data = load_dataset(config.dataset)
    cpu = torch.device("cpu")
    with tempfile.TemporaryDirectory() as folder:
        for name in config.distill.teachers:
            teacher = config.teachers[name]
            model = build_teacher(teacher, image_spec(data))
            optimizer, scheduler = make_optimizer(model, teacher.train, steps_per_epoch=10)
            model(data.normalize(data.train_x[:8])).sum().backward()
            optimizer.step()  # the moments exist, as after any training step
            scheduler.step()
            parts = {"model": model, "optimizer": optimizer, "scheduler": scheduler}
            path = Path(folder) / f"{name}.resume.pt"
            start = time.perf_counter()
            for _ in range(args.repeats):
                _write_resume(path, _snapshot(parts, torch.Generator(), cpu) | {"epoch": 1})
            seconds = (time.perf_counter() - start) / args.repeats
            print(
                f"{name} ({teacher.arch}): {seconds * 1000:.1f} ms per write, "
                f"{path.stat().st_size / 2**20:.2f} MiB, "
                f"{seconds / RESUME_EVERY_SECONDS:.3%} of training time"
            )


if __name__ == "__main__":
    main()
