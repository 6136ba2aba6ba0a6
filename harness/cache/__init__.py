"""The cache directory: the teacher store and the augmentation-consistent logit caches,
both content-addressed and built or read through one rule (`harness._atomic.build_or_load`)."""

from harness.cache._admin import (
    cutoff_time,
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
from harness.cache._unfinished import STUDENTS_DIR, remove_unfinished, unfinished

__all__ = [
    "STUDENTS_DIR",
    "CacheResult",
    "CacheSpec",
    "LogitCache",
    "TeacherArtifact",
    "VerifyReport",
    "build_or_load",
    "compute_all",
    "cutoff_time",
    "hold_entry",
    "list_caches",
    "obtain_teacher",
    "open_cache",
    "prune_candidates",
    "prune_entries",
    "remove_abandoned_staging",
    "remove_unfinished",
    "teacher_logits",
    "unfinished",
    "verify",
    "verify_caches",
]
