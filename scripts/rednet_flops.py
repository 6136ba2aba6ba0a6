"""RedNet FLOPs of the shipped studies' teachers, before (torch's FlopCounterMode alone) and
after (plus the involution's analytic multiply-adds): `python scripts/rednet_flops.py`."""

from __future__ import annotations

from pathlib import Path

import torch
import yaml
from torch.utils.flop_counter import FlopCounterMode

from harness.config import TeacherConfig
from harness.models import ImageSpec, build_teacher, forward_flops

IMAGES = {"digits": (1, 8, 10), "fashion-mnist": (1, 28, 10), "cifar10": (3, 32, 10)}
IMAGES["cifar100"] = (3, 32, 100)


def main() -> None:
    seen = set()
    for path in sorted(Path("studies").glob("*.yaml")):
        study = yaml.safe_load(path.read_text())
        dataset = study.get("dataset", {}).get("name", "digits")
        for teacher in study.get("teachers", {}).values():
            key = (dataset, teacher.get("width", 32), teacher.get("depth", 1))
            if teacher["arch"] != "rednet" or dataset not in IMAGES or key in seen:
                continue
            seen.add(key)
            channels, side, classes = IMAGES[dataset]
            config = TeacherConfig(arch="rednet", width=key[1], depth=key[2])
            model = build_teacher(config, ImageSpec(channels, side, classes)).eval()
            images = torch.randn(2, channels, side, side)
            with torch.no_grad(), FlopCounterMode(display=False) as counter:
                model(images)
            before, after = counter.get_total_flops() // 2, forward_flops(model, images)
            print(
                f"{dataset} ({side}x{side}), rednet width {key[1]} depth {key[2]} ({path}): "
                f"before {before:,}, after {after:,} FLOPs per image ({after / before:.2f}x)"
            )


if __name__ == "__main__":
    main()
