"""Names of the metrics a run stores: the one place they are spelled (a leaf module).

Per-epoch metrics are `train/<term>` (every loss term) and `val/<head>`; a finished run's
metrics add `test/<head>` (the final model on the test split, evaluated once), the split
sizes, costs, sizes and diagnostics. Studies name their objectives from `OBJECTIVE_METRICS`,
which holds validation metrics only: selection never reads the test split.
"""

from __future__ import annotations

VAL_TOP1 = "val/top1"  # the student's prediction (mean of its heads, or the class head)
VAL_TOP1_CLS = "val/top1_cls"  # the class head alone
VAL_LOSS = "val/loss"
VAL_PREFIX = "val/"
TEST_TOP1 = "test/top1"  # the final model (last epoch) on the test split
TEST_TOP1_CLS = "test/top1_cls"
TEST_LOSS = "test/loss"
TEST_PREFIX = "test/"
SPLIT_PREFIX = "split/"  # split/train, split/val, split/test: images in each split
SPLIT_TEST = "split/test"  # present on every run stored since the three-way split
TRAIN_PREFIX = "train/"
TRAIN_LOSS = "train/loss"
SAMPLES_PER_SECOND = "samples_per_second"

COST_TRAIN_SECONDS = "cost/train_seconds"
COST_EVAL_SECONDS = "cost/eval_seconds"
COST_TEACHER_SECONDS = "cost/teacher_seconds"
COST_CACHE_SECONDS = "cost/cache_seconds"
COST_TOTAL_SECONDS = "cost/total_seconds"
# CPU time of the run's process (all its threads) over cost/total_seconds: where other work
# shares the cores the wall-clock seconds grow and this does not (this sitting's alone).
COST_CPU_SECONDS = "cost/cpu_seconds"
COST_COMPILE_SECONDS = "cost/compile_seconds"
# On a run whose student went on from an interrupted trial's resume state: the epochs put
# back (their times are in cost/train_seconds; cost/total_seconds is this run's own).
COST_RESUMED_EPOCHS = "cost/resumed_epochs"

STUDENT_PARAMS = "student/params"
STUDENT_FLOPS = "student/flops"
STUDENT_COMPRESSION = "student/compression"
TEACHERS_PARAMS = "teachers/params"
TEACHERS_FLOPS = "teachers/flops"

DIAG_PREFIX = "diag/"
ATTENTION_DISTANCE_PREFIX = "diag/attention_distance/"
ATTENTION_UNIFORM = "diag/attention_uniform"  # the distance uniform attention would give
AGREE_COMBINED_PREFIX = "diag/agree/combined/"

OBJECTIVE_METRICS = (
    VAL_TOP1,
    VAL_TOP1_CLS,
    VAL_LOSS,
    COST_TRAIN_SECONDS,
    COST_TOTAL_SECONDS,
    STUDENT_PARAMS,
)
"""Metrics a study may optimise."""

CURVE_METRICS = (VAL_TOP1, VAL_TOP1_CLS, VAL_LOSS)
"""Metrics reported every evaluated epoch: the ones pruning can follow."""

SIZE_METRICS = (STUDENT_FLOPS, TEACHERS_PARAMS, TEACHERS_FLOPS, STUDENT_COMPRESSION)
"""Per-run sizes the report averages over seeds."""
