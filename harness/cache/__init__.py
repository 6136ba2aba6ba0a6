"""The augmentation-consistent, content-addressed logit cache."""

from harness.cache._admin import (
    prune_candidates,
    prune_entries,
    remove_abandoned_staging,
    verify_caches,
)
from harness.cache._logits import (
    CACHE_FORMAT,
    CacheResult,
    CacheSpec,
    LogitCache,
    VerifyReport,
    build_or_load,
    compute_all,
    hold_entry,
    list_caches,
    open_cache,
    teacher_logits,
    verify,
)

__all__ = [
    "CACHE_FORMAT",
    "CacheResult",
    "CacheSpec",
    "LogitCache",
    "VerifyReport",
    "build_or_load",
    "compute_all",
    "hold_entry",
    "list_caches",
    "open_cache",
    "prune_candidates",
    "prune_entries",
    "remove_abandoned_staging",
    "teacher_logits",
    "verify",
    "verify_caches",
]
