"""The cache directory: the teacher store and the augmentation-consistent logit caches,
both content-addressed and built or read through one rule (`harness._atomic.build_or_load`)."""

from harness.cache._admin import (
    prune_candidates,
    prune_entries,
    remove_abandoned_staging,
    verify_caches,
)
from harness.cache._logits import (
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
from harness.cache._teacher_store import (
    TeacherArtifact,
    obtain_teacher,
)

__all__ = [
    "CacheResult",
    "CacheSpec",
    "LogitCache",
    "TeacherArtifact",
    "VerifyReport",
    "build_or_load",
    "compute_all",
    "hold_entry",
    "list_caches",
    "obtain_teacher",
    "open_cache",
    "prune_candidates",
    "prune_entries",
    "remove_abandoned_staging",
    "teacher_logits",
    "verify",
    "verify_caches",
]
