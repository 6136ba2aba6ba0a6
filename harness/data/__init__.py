"""Dataset registry and replayable augmentation (imported, with torch, on first use)."""

from typing import TYPE_CHECKING

from harness._lazy import lazy_exports
from harness.data import _sources  # noqa: F401  (registers the bundled datasets)
from harness.data._dataset import (
    DATASETS,
    Dataset,
    DatasetInfo,
    RawData,
    dataset_sizes,
    load_dataset,
    register_dataset,
)
from harness.data._download import download
from harness.data._sources import data_search_path, read_idx

if TYPE_CHECKING:
    from harness.data._augment import (
        AUGMENT_VERSION,
        ViewSchedule,
        augment_views,
        view_params,
        view_space,
    )

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        name: "_augment"
        for name in (
            "AUGMENT_VERSION",
            "ViewSchedule",
            "augment_views",
            "view_params",
            "view_space",
        )
    },
)

__all__ = [
    "AUGMENT_VERSION",
    "DATASETS",
    "Dataset",
    "DatasetInfo",
    "RawData",
    "ViewSchedule",
    "augment_views",
    "data_search_path",
    "dataset_sizes",
    "download",
    "load_dataset",
    "read_idx",
    "register_dataset",
    "view_params",
    "view_space",
]
