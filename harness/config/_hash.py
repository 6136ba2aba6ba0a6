"""The identity of a configuration: sha256 of its canonical JSON."""

from __future__ import annotations

import hashlib
import json

from harness.config._schema import TrialConfig


def config_hash(config: TrialConfig) -> str:
    """sha256 of the canonical configuration; the seed and the cache directory are not in it.

    Fields at their default value are left out, so a field added to the schema later (with
    a default that keeps the old behaviour) does not change the hash of stored studies.
    """
    data = config.model_dump(mode="json", exclude_defaults=True)
    data.get("cache", {}).pop("dir", None)
    text = json.dumps(data, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()
