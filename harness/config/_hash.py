"""The identity of a configuration: sha256 of its canonical JSON."""

from __future__ import annotations

import hashlib
import json

from harness.config._schema import TrialConfig

SPLIT_SCHEME = "train/val/test"
"""How the images are split. Configurations hashed before it (validation was the official
test split, or a single carve with no test) have no such key, so results trained on other
images never share a hash with these."""


def config_hash(config: TrialConfig) -> str:
    """sha256 of the canonical configuration; the seed and the cache directory are not in it.

    Fields at their default value are left out, so a field added to the schema later (with
    a default that keeps the old behaviour) does not change the hash of stored studies. The
    split scheme is always in: it changed what every configuration trains on.
    """
    data = config.model_dump(mode="json", exclude_defaults=True)
    cache = data.get("cache", {})
    cache.pop("dir", None)
    if not cache:
        data.pop("cache", None)  # `cache: {dir: ...}` alone is the default cache
    data.setdefault("dataset", {})["split"] = SPLIT_SCHEME
    text = json.dumps(data, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()
