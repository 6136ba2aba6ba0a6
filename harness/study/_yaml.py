"""Reading a study file's text safely: UTF-8 only, duplicate keys rejected, aliases expanded
up to a size cap (a few bytes of YAML anchors can stand for billions of values)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from harness.errors import StudyError

MAX_VALUES = 100_000
"""The most values (scalars, list items, mapping entries) a study file may expand to."""

QUOTE_CHARS = 80


def quote(value: Any) -> str:
    """`repr(value)`, cut to QUOTE_CHARS characters: errors never echo a huge input."""
    text = repr(value)
    return text if len(text) <= QUOTE_CHARS else text[: QUOTE_CHARS - 3] + "..."


class _StrictLoader(yaml.SafeLoader):
    """yaml.safe_load's loader, but a key given twice in one mapping is an error."""


def _no_duplicates(loader: _StrictLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in seen:
            line = key_node.start_mark.line + 1
            raise StudyError(f"line {line}: key {quote(key)} is given twice; keep one")
        seen.add(key)
    return loader.construct_mapping(node, deep=True)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _no_duplicates)


def _expanded_size(data: Any) -> int:
    """How many values `data` holds once aliases are expanded; stops counting at the cap."""
    count, stack = 0, [data]
    while stack:
        node = stack.pop()
        count += 1
        if count > MAX_VALUES:
            break
        if isinstance(node, dict):
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return count


def read_study_yaml(source: Path) -> Any:
    """The parsed contents of a study file; StudyError (one line) for anything unreadable."""
    raw = source.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise StudyError(
            f"{source}: not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset {exc.start}); "
            "save the study file as UTF-8"
        ) from None
    try:
        data = yaml.load(text, Loader=_StrictLoader)  # noqa: S506  (a SafeLoader subclass)
    except StudyError as exc:
        raise StudyError(f"{source}: {exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise StudyError(f"{source}:{where}: not valid YAML ({exc.__class__.__name__})") from None
    check_size(data, f"{source}")
    return data


def read_override_yaml(override: str, text: str) -> Any:
    """The value of one `--set path=value`, read as the study file is: the same loader and
    the same cap on what its aliases expand to."""
    try:
        value = yaml.load(text, Loader=_StrictLoader)  # noqa: S506  (a SafeLoader subclass)
    except StudyError as exc:
        raise StudyError(f"--set {quote(override)}: {exc}") from None
    except yaml.YAMLError as exc:
        problem = getattr(exc, "problem", None) or type(exc).__name__
        raise StudyError(f"--set {quote(override)}: the value is not YAML ({problem})") from None
    check_size(value, f"--set {quote(override)}")
    return value


def check_size(data: Any, where: str) -> None:
    """A study's data is small: more than MAX_VALUES values is an alias bomb, refused."""
    if _expanded_size(data) > MAX_VALUES:
        raise StudyError(
            f"{where}: expands to more than {MAX_VALUES:,} values (YAML aliases); "
            "a study file is small: write its values out"
        )
