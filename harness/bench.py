"""`libkd bench`: student training throughput without KD, with cached and with online KD,
side by side in one process on the same data, models and batch size; plus the cost of
building the cache against raw teacher inference, its size on disk, and peak memory."""

from __future__ import annotations

import itertools
import json
import math
import resource
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any, TypedDict

import torch
from torch import nn

from harness._precision import resolve_precision
from harness.cache import CacheSpec, build_or_load
from harness.config import TrialConfig
from harness.data import Dataset, load_dataset
from harness.distill import (
    CachedTeachers,
    DistillationLoss,
    OnlineTeachers,
    StudentStep,
    TeacherSource,
    image_spec,
)
from harness.errors import LibKDError
from harness.models import build_teacher, train_step_flops
from harness.runner import environment, resolve_device
from harness.study import Study, load_study

# Dense bf16 tensor-core peaks from NVIDIA's datasheets (half the "with sparsity" figures).
BF16_PEAK_FLOPS = {"H100 PCIe": 756e12, "H100": 989e12, "H200": 989e12, "A100": 312e12}


def bf16_peak_flops(device: torch.device) -> float | None:
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    for key, peak in BF16_PEAK_FLOPS.items():  # most specific first
        if key in name:
            return peak
    return None


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _step_fn(
    config: TrialConfig,
    teachers: tuple[str, ...],
    source: TeacherSource | None,
    data: Dataset,
    batch_size: int,
    device: torch.device,
    *,
    labels_only: bool = False,
) -> Callable[[], None]:
    """One training step of a fresh student distilling from `teachers` (none: plain ViT),
    run by the training loop's own StudentStep on random batches.

    `labels_only`: the very network of the distilled student, distillation tokens included,
    trained on labels alone; what a distillation step would cost if teachers cost nothing.
    """
    trial = config.model_copy(
        update={
            "distill": config.distill.model_copy(update={"teachers": teachers}),
            "train": config.train.model_copy(update={"batch_size": batch_size}),
        }
    )
    train_step = StudentStep.build(config=trial, seed=0, data=data, teachers=source, device=device)
    if labels_only:
        train_step = replace(
            train_step,
            teachers=None,
            criterion=DistillationLoss(
                distill=trial.distill.model_copy(update={"teachers": ()}),
                shared=False,
                label_smoothing=trial.train.label_smoothing,
            ),
        )
    n = len(data.train_y)
    generator = torch.Generator().manual_seed(0)
    epochs = itertools.count()  # a new epoch each step: every view of the cache gets read

    def step() -> None:
        train_step(next(epochs), torch.randint(n, (batch_size,), generator=generator).to(device))

    return step


def _time_windows(
    steps: dict[str, Callable[[], None]],
    *,
    windows: int,
    per_window: int,
    batch_size: int,
    device: torch.device,
) -> dict[str, list[float]]:
    """Samples/s per window. Modes take turns window by window, in reversed order every
    other round, so drift and position in the round hit every mode alike."""
    for step in steps.values():
        for _ in range(3):  # warm-up
            step()
    rates: dict[str, list[float]] = {mode: [] for mode in steps}
    for round_ in range(windows):
        order = list(steps) if round_ % 2 == 0 else list(reversed(steps))
        for mode in order:
            _sync(device)
            start = time.perf_counter()
            for _ in range(per_window):
                steps[mode]()
            _sync(device)
            rates[mode].append(per_window * batch_size / (time.perf_counter() - start))
    return rates


class Ratio(TypedDict):
    """A throughput ratio over paired rounds: its median, 95% interval and range."""

    median: float
    ci95: list[float]
    min: float
    max: float


class StudentStepCost(TypedDict):
    flops: float
    tflops_per_second: float
    bf16_peak_tflops_per_second: float | None
    fraction_of_bf16_peak: float | None


class BatchResult(TypedDict):
    """One batch size: samples/s per mode (median, and every window), the student step's
    FLOP rate, the separately timed parts, and the paired ratios."""

    samples_per_second: dict[str, float]
    windows: dict[str, list[float]]
    student_step: StudentStepCost
    parts: dict[str, Any]
    ratios: dict[str, Ratio | float]


class CachePart(TypedDict):
    build_seconds: float
    build_entries_per_second: float
    raw_inference_samples_per_second: float
    bytes_on_disk: int
    bytes_per_sample: float


class BenchReport(TypedDict):
    """What `libkd bench` measured (also its JSON file)."""

    study: str
    teachers: list[str]
    environment: dict[str, Any]
    threads: int
    windows: int
    steps_per_window: int
    batch_sizes: dict[str, BatchResult]
    ratios: dict[str, Ratio | float]
    cache: dict[str, CachePart]
    peak_memory_mib: float
    peak_memory_kind: str


def paired_ratio(rates: dict[str, list[float]], mode: str, reference: str) -> Ratio:
    """Median, its 95% confidence interval and the range over rounds of mode/reference
    throughput within the same round: a slow spell of the machine hits both sides of each
    ratio. The interval is distribution-free (order statistics of Binomial(n, 1/2))."""
    ratios = sorted(a / b for a, b in zip(rates[mode], rates[reference], strict=True))
    n = len(ratios)
    spread = 1.96 * math.sqrt(n)
    low = max(0, math.floor((n - spread) / 2) - 1)
    high = min(n - 1, math.ceil(1 + (n + spread) / 2) - 1)
    return {
        "median": statistics.median(ratios),
        "ci95": [ratios[low], ratios[high]],
        "min": ratios[0],
        "max": ratios[-1],
    }


@torch.no_grad()
def _teacher_forward_seconds(
    model: nn.Module, data: Dataset, batch_size: int, device: torch.device, repeats: int = 10
) -> float:
    images = data.normalize(data.train_x[:batch_size])
    for _ in range(3):
        model(images)
    times = []
    for _ in range(repeats):
        _sync(device)
        start = time.perf_counter()
        model(images)
        _sync(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _student_step_seconds(
    step: Callable[[], None], device: torch.device, repeats: int = 10
) -> float:
    times = []
    for _ in range(repeats):
        _sync(device)
        start = time.perf_counter()
        step()
        _sync(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _bench_config(study: Study, study_file: Path) -> TrialConfig:
    """The study's first two-teacher configuration, one token per teacher if it has one."""
    pairs = [c.config for c in study.configs if len(c.config.distill.teachers) >= 2]
    if not pairs:
        raise LibKDError(f"{study_file}: bench needs a configuration with two teachers")
    per_teacher = [c for c in pairs if c.student.tokens == "per_teacher"]
    return (per_teacher or pairs)[0]


def run_bench(
    *,
    study_file: Path,
    device: str = "auto",
    batch_sizes: list[int],
    windows: int = 300,
    steps: int = 1,
    out: Path | None = None,
) -> BenchReport:
    config = _bench_config(load_study(study_file), study_file)
    names = tuple(config.distill.teachers)
    dev = resolve_device(device)
    torch.manual_seed(0)
    data = load_dataset(config.dataset).to(dev)
    precision = resolve_precision(config.train.precision, dev)
    # Untrained teachers cost exactly what trained ones cost; no training needed to time them.
    teachers = {
        n: build_teacher(config.teachers[n], image_spec(data)).to(dev).eval() for n in names
    }
    if dev.type == "cuda":
        teachers = {n: t.to(memory_format=torch.channels_last) for n, t in teachers.items()}
    spec_of = {
        n: CacheSpec.of(
            teacher_digest=f"bench-{n}",
            data=data,
            augment=config.augment,
            cache=config.cache,
            precision=precision,
        )
        for n in names
    }
    cache_parts: dict[str, CachePart] = {}
    tables = {}
    with tempfile.TemporaryDirectory() as tmp:
        for n in names:
            start = time.perf_counter()
            result = build_or_load(
                spec_of[n], teacher=teachers[n], teacher_name=n, data=data, root=Path(tmp)
            )
            build = time.perf_counter() - start
            tables[n] = result.cache.dense().to(dev)
            entries = len(data.train_y) * max(config.cache.views, 1)
            raw = _teacher_forward_seconds(teachers[n], data, 512, dev)
            cache_parts[n] = {
                "build_seconds": build,
                "build_entries_per_second": entries / build,
                "raw_inference_samples_per_second": min(512, len(data.train_y)) / raw,
                "bytes_on_disk": result.cache.bytes,
                "bytes_per_sample": result.cache.bytes / len(data.train_y),
            }
    results: dict[str, BatchResult] = {}
    for batch_size in batch_sizes:
        modes = {
            "plain": _step_fn(config, (), None, data, batch_size, dev),
            "plain_2_tokens": _step_fn(
                config, names, None, data, batch_size, dev, labels_only=True
            ),
            "cached_1": _step_fn(
                config,
                names[:1],
                CachedTeachers({names[0]: tables[names[0]]}),
                data,
                batch_size,
                dev,
            ),
            "cached_2": _step_fn(config, names, CachedTeachers(tables), data, batch_size, dev),
            "online_1": _step_fn(
                config,
                names[:1],
                OnlineTeachers({names[0]: teachers[names[0]]}, precision=precision),
                data,
                batch_size,
                dev,
            ),
            "online_2": _step_fn(
                config, names, OnlineTeachers(teachers, precision=precision), data, batch_size, dev
            ),
        }
        rates = _time_windows(
            modes, windows=windows, per_window=steps, batch_size=batch_size, device=dev
        )
        median = {mode: statistics.median(r) for mode, r in rates.items()}
        step_seconds = _student_step_seconds(modes["cached_2"], dev)
        step_flops = train_step_flops(modes["cached_2"])
        achieved = step_flops / step_seconds
        peak = bf16_peak_flops(dev)
        teacher_seconds = {
            n: _teacher_forward_seconds(teachers[n], data, batch_size, dev) for n in names
        }
        results[str(batch_size)] = {
            "samples_per_second": median,
            "windows": rates,
            "student_step": {
                "flops": step_flops,
                "tflops_per_second": achieved / 1e12,
                "bf16_peak_tflops_per_second": None if peak is None else peak / 1e12,
                "fraction_of_bf16_peak": None if peak is None else achieved / peak,
            },
            "parts": {
                "student_step_seconds": step_seconds,
                "teacher_forward_seconds": teacher_seconds,
            },
            "ratios": {
                "cached_over_plain": paired_ratio(rates, "cached_2", "plain"),
                "cached_over_plain_same_tokens": paired_ratio(rates, "cached_2", "plain_2_tokens"),
                # What the two distillation tokens cost with no teacher at all.
                "tokens_over_plain": paired_ratio(rates, "plain_2_tokens", "plain"),
                "cached_1_over_plain": paired_ratio(rates, "cached_1", "plain"),
                "online_over_plain": paired_ratio(rates, "online_2", "plain"),
                "cached_over_online": paired_ratio(rates, "cached_2", "online_2"),
                "ideal_cached_over_online": (step_seconds + sum(teacher_seconds.values()))
                / step_seconds,
            },
        }
    peak = (
        torch.cuda.max_memory_allocated(dev) / 2**20
        if dev.type == "cuda"
        else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    )
    first = results[str(batch_sizes[0])]
    report: BenchReport = {
        "study": str(study_file),
        "teachers": list(names),
        "environment": environment(dev),
        "threads": torch.get_num_threads(),
        "windows": windows,
        "steps_per_window": steps,
        "batch_sizes": results,
        "ratios": first["ratios"],
        "cache": cache_parts,
        "peak_memory_mib": peak,
        "peak_memory_kind": "cuda max allocated" if dev.type == "cuda" else "process max RSS",
    }
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=2))
    return report
