"""Dataset registry and replayable augmentation."""

from harness.data import _sources  # noqa: F401  (registers the bundled datasets)
from harness.data._augment import (
    AUGMENT_VERSION,
    ViewSchedule,
    augment_views,
    view_params,
    view_space,
)
from harness.data._dataset import (
    DATASETS,
    Dataset,
    DatasetInfo,
    RawData,
    load_dataset,
    register_dataset,
)
from harness.data._download import download
from harness.data._sources import data_search_path, read_idx

__all__ = [
    "AUGMENT_VERSION",
    "DATASETS",
    "Dataset",
    "DatasetInfo",
    "RawData",
    "ViewSchedule",
    "augment_views",
    "data_search_path",
    "download",
    "load_dataset",
    "read_idx",
    "register_dataset",
    "view_params",
    "view_space",
]
