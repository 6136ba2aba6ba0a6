"""Width rules of the involution networks: which channel counts an involution can split into
kernel-sharing groups (checked when a study file loads, without building anything)."""

from __future__ import annotations

GROUP_CHANNELS = 16
STAGE_MULTIPLIERS = (1, 2, 4)  # RedNet stage widths, in units of `width`


def splits_into_groups(channels: int, group_channels: int = GROUP_CHANNELS) -> bool:
    """Whether an involution over `channels` can share kernels in groups of `group_channels`
    (fewer channels than one group make a single group)."""
    return channels <= group_channels or channels % group_channels == 0


def mid_channels(channels: int) -> int:
    """Channels of the involution inside a RedNet block (or stem) of `channels`."""
    return max(16, channels // 2)


def rednet_width_problem(width: int) -> str | None:
    """Why a RedNet of this width cannot be built (its involutions split channels into
    groups of 16), or None."""
    # The stem's involution has the first stage's channels.
    if all(splits_into_groups(mid_channels(width * m)) for m in STAGE_MULTIPLIERS):
        return None
    return f"{width} gives involutions whose channels are not multiples of {GROUP_CHANNELS}"
