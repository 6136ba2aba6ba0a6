"""Pydantic models of a study file. Frozen, unknown keys rejected, numbers finite.

The bottom layer of the configuration: it imports nothing of harness, so data, models and
every layer above can depend on it. Names in it (datasets, teacher architectures, samplers)
are checked against the registries by `harness.study`, the resolve step above them.
"""

from __future__ import annotations

from enum import Enum
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class DatasetConfig(_Frozen):
    """Which data, and how much of it: the low-data regime is the point of LIB-KD.

    Three splits, always: validation (`val_fraction` of the training images) is what
    selection reads; test (the official split, or `test_fraction` of the images where a
    dataset has none) is evaluated once on the final model, for reporting only.
    """

    name: str = "digits"
    val_fraction: float = Field(0.2, gt=0, lt=1)
    test_fraction: float = Field(0.2, gt=0, lt=1)  # datasets without an official test split
    train_per_class: int | None = Field(None, gt=0)
    train_fraction: float | None = Field(None, gt=0, le=1)
    split_seed: int = 0
    subset_seed: int = 0  # which images the subset options keep (the splits stay put)
    path: str | None = None  # imagefolder: the folder holding train/ and val/
    image_size: int = Field(64, ge=8)  # imagefolder: images are resized and cropped to this


class AugmentConfig(_Frozen):
    """Replayable augmentation: view parameters are a pure function of (aug_seed, index, view)."""

    pad_crop: int = Field(1, ge=0)
    hflip: bool = False
    aug_seed: int = 0

    @property
    def distinct_views(self) -> int:
        """How many distinct views the policy allows: crop offsets x flips."""
        span = 2 * self.pad_crop + 1
        return span * span * (2 if self.hflip else 1)


class TrainRecipe(_Frozen):
    """How long and how a network trains. `steps` (optimiser steps) instead of `epochs`
    gives configurations with different amounts of data equal training: the last epoch
    stops part-way, and the schedule (warm-up `warmup_steps`, cosine decay) counts steps."""

    epochs: int = Field(30, ge=1)
    steps: int | None = Field(None, ge=1)
    warmup_steps: int = Field(0, ge=0)
    batch_size: int = Field(64, ge=1)
    lr: float = Field(2e-3, gt=0)
    weight_decay: float = Field(0.05, ge=0)
    warmup_epochs: int = Field(0, ge=0)
    label_smoothing: float = Field(0.0, ge=0, lt=1)
    grad_clip: float | None = Field(1.0, gt=0)
    precision: Literal["auto", "fp32", "bf16"] = "auto"  # auto: bf16 autocast on CUDA only
    compile: bool = False  # torch.compile the student (compile time is recorded apart)
    eval_every: int = Field(1, ge=1)  # validate every k epochs (and after the last one)
    # Validate after each epoch that reaches a multiple of k optimiser steps (and after the
    # last one): with `steps`, the same validations whatever the data size; `eval_every`
    # counts epochs, so a small subset's many short epochs would each be validated.
    eval_every_steps: int | None = Field(None, ge=1)

    @model_validator(mode="after")
    def _one_length(self) -> TrainRecipe:
        # epochs stays at its default under a step budget (which it would not change), so
        # a dumped and re-read recipe validates alike and hashes alike.
        if self.steps is not None and self.epochs != type(self).model_fields["epochs"].default:
            raise ValueError(
                f"epochs ({self.epochs}) and steps ({self.steps}) both set; give one "
                "(steps: equal training whatever the data size)"
            )
        if self.eval_every_steps is not None and self.eval_every != 1:
            raise ValueError(
                f"eval_every ({self.eval_every}) and eval_every_steps ({self.eval_every_steps}) "
                "both set; give one (eval_every_steps: the same validations whatever the "
                "data size)"
            )
        if self.warmup_steps and self.warmup_epochs:
            raise ValueError(
                f"warmup_epochs ({self.warmup_epochs}) and warmup_steps ({self.warmup_steps}) "
                "both set; give one (with steps, warmup_steps)"
            )
        return self

    def total_steps(self, steps_per_epoch: int) -> int:
        """Optimiser steps of the whole training."""
        return self.steps if self.steps is not None else self.epochs * steps_per_epoch

    def epochs_for(self, steps_per_epoch: int) -> int:
        """Epochs (passes over the data, the last one maybe part-way) training takes."""
        return -(-self.total_steps(steps_per_epoch) // steps_per_epoch)

    def validates(self, epoch: int, steps_per_epoch: int) -> bool:
        """Whether epoch `epoch` (0-based) ends with a validation: every `eval_every`
        epochs, or each epoch that reaches a multiple of `eval_every_steps` optimiser steps;
        always the last."""
        total = self.total_steps(steps_per_epoch)
        if epoch + 1 >= self.epochs_for(steps_per_epoch):
            return True
        if self.eval_every_steps is None:
            return (epoch + 1) % self.eval_every == 0
        before, after = epoch * steps_per_epoch, min(total, (epoch + 1) * steps_per_epoch)
        return after // self.eval_every_steps > before // self.eval_every_steps

    def warmup(self, steps_per_epoch: int) -> int:
        """Warm-up steps."""
        return self.warmup_steps or self.warmup_epochs * steps_per_epoch


class StudentConfig(_Frozen):
    arch: Literal["vit"] = "vit"
    patch_size: int = Field(2, ge=1)
    embed_dim: int = Field(64, ge=8)
    depth: int = Field(4, ge=1)
    num_heads: int = Field(4, ge=1)
    mlp_ratio: float = Field(2.0, gt=0)
    drop_path: float = Field(0.0, ge=0, lt=1)
    tokens: Literal["none", "per_teacher", "shared", "stem"] = "per_teacher"
    inference: Literal["mean", "cls"] = "mean"


BORN_AGAIN = "student"
"""The teacher architecture that is the student's own ViT."""

TIMM_PREFIX = "timm:"
"""How a teacher architecture names any model timm knows: `timm:<name>`."""


def plain_student(student: StudentConfig) -> StudentConfig:
    """A student's ViT as a born-again teacher trains it: no distillation token, so the
    teacher (and its cache key) is the same whatever token mode its own students use."""
    return student.model_copy(update={"tokens": "none", "inference": "mean"})


class TeacherConfig(_Frozen):
    """A named teacher: architecture, size, its own training recipe, or a local checkpoint.

    `arch: student` is a born-again teacher: the student's own ViT (its `student` fields,
    filled from the configuration's student unless given), trained without distillation."""

    arch: str
    width: int = Field(32, ge=4)
    depth: int = Field(1, ge=1)
    seed: int = 0
    checkpoint: str | None = None
    train: TrainRecipe = TrainRecipe(epochs=20)
    # timm teachers: images are resized to this side first (small images through networks
    # built for 224 px); None feeds them as they are.
    input_size: int | None = Field(None, ge=8)
    # arch: student only; unless given, the configuration's student (`harness.study`
    # fills it in when it makes a configuration canonical).
    student: StudentConfig | None = None

    @model_validator(mode="after")
    def _student_fields(self) -> TeacherConfig:
        if self.student is not None and self.arch != BORN_AGAIN:
            raise ValueError(
                f"student fields are for arch: {BORN_AGAIN} (a born-again teacher); "
                f"arch {self.arch!r} takes width and depth; remove them"
            )
        return self


class DistillConfig(_Frozen):
    """Which teachers teach, how (soft KL * T^2 or hard CE), at which temperatures and weights."""

    teachers: tuple[str, ...] = ()
    loss: Literal["soft", "hard"] = "soft"
    temperature: float | dict[str, float] = 1.0
    weights: dict[str, float] = Field(default_factory=dict)
    # Teachers' weights rescaled to sum to 1, so a set of two teachers distils with the
    # same total weight as one (a fair comparison of teacher sets).
    normalize_weights: bool = False

    def temperature_of(self, teacher: str) -> float:
        if isinstance(self.temperature, dict):
            return self.temperature[teacher]
        return self.temperature

    def weight_of(self, term: str) -> float:
        return self.weights.get(term, 1.0)

    def teacher_weight(self, teacher: str) -> float:
        """The weight the teacher's term is trained with (normalised if asked)."""
        if not self.normalize_weights:
            return self.weight_of(teacher)
        return self.weight_of(teacher) / sum(self.weight_of(t) for t in self.teachers)


class CacheConfig(_Frozen):
    """Precomputed teacher logits for `views` replayable views per sample (0: clean images)."""

    enabled: bool = False
    views: int = Field(8, ge=0)
    dtype: Literal["float16", "float32"] = "float16"
    top_k: int | None = Field(None, ge=1)
    # Where teachers and logit caches live for this study, unless --cache-dir or
    # $LIBKD_CACHE_DIR name a folder; not part of the configuration's hash.
    dir: str | None = None


class Objective(_Frozen):
    metric: str = "val/top1"  # one of harness.metrics.OBJECTIVE_METRICS (checked on load)
    direction: Literal["maximize", "minimize"] = "maximize"


class FloatParam(_Frozen):
    type: Literal["float"]
    low: float
    high: float
    log: bool = False


class IntParam(_Frozen):
    type: Literal["int"]
    low: int
    high: int
    log: bool = False


class CategoricalParam(_Frozen):
    type: Literal["categorical"]
    choices: tuple[Any, ...] = Field(min_length=1)


class SearchConfig(_Frozen):
    """An Optuna search: each trial is one configuration evaluated on every seed."""

    sampler: Literal["tpe", "gp", "random", "grid", "nsga2"] = "tpe"
    sampler_seed: int = 0
    n_trials: int = Field(20, ge=1)
    pruner: Literal["median", "hyperband", "none"] = "median"
    space: dict[str, FloatParam | IntParam | CategoricalParam] = Field(min_length=1)


SeedScope = Literal["student", "augment", "subset", "teacher"]

RESERVED_TEACHER_NAMES = ("cls", "combined", "labels", "loss", "shared")
"""Names libkd's own heads, loss terms and diagnostics go by (`val/top1_cls`,
`diag/agree/<head>/labels`, the `cls` weight): a teacher under one would overwrite them."""


def _free_name(name: str) -> str:
    if name in RESERVED_TEACHER_NAMES:
        raise ValueError(
            f"teacher name {name!r} is reserved for libkd's own metrics "
            f"({', '.join(RESERVED_TEACHER_NAMES)}); rename the teacher"
        )
    return name


TeacherName = Annotated[str, AfterValidator(_free_name)]


class TrialConfig(_Frozen):
    """Everything that defines one experiment; its hash identifies the configuration.

    `seed_scope` says what a run's seed varies besides the student's initialisation and
    batch order: the augmentation views (`augment.aug_seed`), the training subset
    (`dataset.subset_seed`) and the teachers' instances (`teachers.*.seed`); each is offset
    by the run's seed (`for_seed`), so the teachers and caches it needs are keyed by what
    they really are and reused by any study that needs the same.
    """

    dataset: DatasetConfig = DatasetConfig()
    augment: AugmentConfig = AugmentConfig()
    teachers: dict[TeacherName, TeacherConfig] = Field(default_factory=dict)
    student: StudentConfig = StudentConfig()
    train: TrainRecipe = TrainRecipe()
    distill: DistillConfig = DistillConfig()
    cache: CacheConfig = CacheConfig()
    seed_scope: tuple[SeedScope, ...] = ("student",)

    def for_seed(self, seed: int) -> TrialConfig:
        """The configuration a run with `seed` trains: the seed added to what it scopes."""
        scope = set(self.seed_scope)
        update: dict[str, object] = {}
        if "augment" in scope:
            update["augment"] = self.augment.model_copy(
                update={"aug_seed": self.augment.aug_seed + seed}
            )
        if "subset" in scope:
            update["dataset"] = self.dataset.model_copy(
                update={"subset_seed": self.dataset.subset_seed + seed}
            )
        if "teacher" in scope:
            update["teachers"] = {
                name: teacher.model_copy(update={"seed": teacher.seed + seed})
                for name, teacher in self.teachers.items()
            }
        return self.model_copy(update=update) if update else self


ComparedMetric = Literal["test/top1", "test/top1_cls", "val/top1", "val/top1_cls"]
"""What a contrast or trend compares: the final model's top-1, of the combined prediction
(`top1`: the mean of every head) or of the class head alone (`top1_cls`, the same head
whatever the number of teachers), on the test split (reports) or validation."""


class PrecisionTarget(_Frozen):
    """When a contrast is decided: the 95% interval of its paired delta on `metric` is no
    wider than +-`halfwidth`. `metric` is validation top-1 or the test top-1 that reports
    compare. The plan reads only the spread of the first stage's deltas, never their mean,
    so aiming at test sets how many seeds run and chooses nothing (no configuration, epoch
    or hyperparameter) from the test split."""

    halfwidth: float = Field(gt=0, lt=1)
    metric: ComparedMetric = "val/top1"
    # The contrasts and trends it applies to; empty: every contrast. On a trend the target
    # is the half-width of its slope's interval.
    contrasts: tuple[str, ...] = ()


class SeedPlan(_Frozen):
    """Seeds spent until the answer is clear: every configuration runs seeds 0..min-1; a
    configuration in a contrast whose interval is still wider than the target gets the next
    seed, a round at a time, until the target or `max` seeds."""

    min: int = Field(3, ge=2)
    max: int = Field(20, ge=2)
    target: PrecisionTarget


class Contrast(_Frozen):
    """A named comparison of two grid configurations, paired by seed: each side gives the
    grid factors (dotted path -> value) that pick its configuration."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")
    treatment: dict[str, Any] = Field(min_length=1)
    control: dict[str, Any] = Field(min_length=1)
    margin: float | None = Field(None, gt=0, lt=1)  # equivalence margin (top-1 points / 100)
    metric: ComparedMetric | None = None  # None: the report's (test top-1 of the prediction)


class Trend(_Frozen):
    """How a paired delta (treatment minus control, by seed) changes along a numeric grid
    factor: the slope of the delta against the factor (or its log), estimated per seed and
    summarised across seeds. `treatment` and `control` pick the two configurations at every
    level of `factor` (which they do not give)."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")
    factor: str
    treatment: dict[str, Any] = Field(min_length=1)
    control: dict[str, Any] = Field(min_length=1)
    scale: Literal["linear", "log"] = "log"
    metric: ComparedMetric | None = None


Seed = Annotated[int, Field(ge=0, le=2**31 - 1)]
"""A run's seed: stored as a database integer and offset into the seeds it scopes."""


class StudyFile(TrialConfig):
    """A whole study file: the base configuration plus seeds, grid or search, objectives."""

    # A study's name names files (its dashboard, its published folder) and database rows.
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", max_length=100)
    description: str = ""
    device: Literal["auto", "cpu", "cuda"] = "auto"
    seeds: Annotated[tuple[Seed, ...], Field(min_length=1)] | SeedPlan = (0,)
    grid: dict[str, list[Any]] = Field(default_factory=dict)
    # Configurations added beside the grid's crossing, each by its factors (dotted path ->
    # value): a control that no crossing gives, without running every crossing it would need.
    include: tuple[dict[str, Any], ...] = ()
    search: SearchConfig | None = None
    objectives: tuple[Objective, ...] = Field((Objective(),), min_length=1)
    contrasts: tuple[Contrast, ...] = ()  # default: each configuration vs the plain ViT
    trends: tuple[Trend, ...] = ()
    equivalence_margin: float | None = Field(None, gt=0, lt=1)  # for every contrast
    # A complete run of the same configuration and seed that another study of the database
    # trained is copied in, not trained again (false: every run of this study trains here).
    reuse_runs: bool = True


TRIAL_FIELDS = tuple(TrialConfig.model_fields)


class StudyKind(str, Enum):
    """A grid study enqueues every (configuration, seed); a search study samples points."""

    GRID = "grid"
    SEARCH = "search"

    def __str__(self) -> str:
        return self.value
