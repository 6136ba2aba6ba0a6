"""A teacher's inference (its logit cache, its top-1) at several batch sizes: seconds per
1,000 images and whether every image's logits equal those of 512-image batches, bit for
bit, for each teacher of a study on its own dataset, one thread.

    python benchmarks/teacher_inference.py studies/premise_data_size.yaml
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

import torch

from harness._precision import teacher_batch_size
from harness.cache import CacheSpec, compute_all
from harness.data import load_dataset
from harness.distill import image_spec
from harness.models import build_teacher
from harness.study import load_study

REFERENCE = 512


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("study", type=Path)
    parser.add_argument("--images", type=int, default=2048)
    parser.add_argument("--batches", type=int, nargs="+", default=[REFERENCE, 128, 64, 32, 16])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    configs = [point.config for point in load_study(args.study).configs]
    # Every teacher, on the largest training set (up to --images of it).
    config = max(configs, key=lambda c: (len(c.distill.teachers), c.dataset.train_fraction or 1.0))
    data = load_dataset(config.dataset)
    data = dataclasses.replace(
        data, train_x=data.train_x[: args.images], train_y=data.train_y[: args.images]
    )
    cache = config.cache.model_copy(update={"views": 1, "dtype": "float32", "top_k": None})
    spec = CacheSpec.of(teacher_digest="bench", data=data, augment=config.augment, cache=cache)
    n = len(data.train_y)
    default = teacher_batch_size(torch.device("cpu"))
    print(f"{n} images of {config.dataset.name}, 1 thread; libkd's CPU batch: {default}")
    for name in config.distill.teachers:
        torch.manual_seed(0)
        teacher = build_teacher(config.teachers[name], image_spec(data)).eval()
        reference = None
        for batch in [REFERENCE, *(b for b in args.batches if b != REFERENCE)]:
            compute_all(teacher, data, spec, batch_size=batch)  # warm-up
            best = float("inf")
            for _ in range(args.repeats):
                start = time.perf_counter()
                logits = compute_all(teacher, data, spec, batch_size=batch)
                best = min(best, time.perf_counter() - start)
            reference = logits if reference is None else reference
            same = "identical" if torch.equal(logits, reference) else "DIFFERENT"
            print(
                f"{name} ({config.teachers[name].arch}) batch {batch:4d}: "
                f"{best / n * 1000:.3f} s per 1,000 images, logits {same} to batch {REFERENCE}"
            )


if __name__ == "__main__":
    main()
