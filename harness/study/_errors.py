"""Turn pydantic errors into one line: the field path, the bad value and what is allowed."""

from __future__ import annotations

import types
import typing
from typing import Any

from pydantic import BaseModel, ValidationError

from harness.study._yaml import quote


def _model_at(model: type[BaseModel], loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The pydantic model class found by following `loc` through fields and dict values."""
    current: Any = model
    for part in loc:
        if isinstance(current, type) and issubclass(current, BaseModel):
            field = current.model_fields.get(str(part))
            if field is None:
                return None
            current = field.annotation
        elif typing.get_origin(current) is dict:
            current = typing.get_args(current)[1]
        else:
            return None
        # Unwrap `X | None` to X.
        if typing.get_origin(current) in (typing.Union, types.UnionType):
            options = [a for a in typing.get_args(current) if a is not type(None)]
            current = options[0] if len(options) == 1 else current
    if isinstance(current, type) and issubclass(current, BaseModel):
        return current
    return None


def path_of(loc: tuple[Any, ...]) -> str:
    text = ""
    for part in loc:
        if part == "[key]":  # pydantic's marker of an error in a mapping's key, named already
            continue
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top level)"


def describe(error: ValidationError, model: type[BaseModel], *, prefix: str = "") -> str:
    """One line for the first error, with a count of the others. Where a value may take
    several shapes (a seed list or a seed plan), an error inside the shape it was given is
    told before "not the other shape"."""
    errors = error.errors()
    first = next((e for e in errors if not e["type"].endswith("_type")), errors[0])
    loc = tuple(p for p in first["loc"] if not _is_union_tag(p))
    path = prefix + path_of(loc)
    if first["type"] == "extra_forbidden":
        parent = _model_at(model, loc[:-1])
        allowed = ", ".join(parent.model_fields) if parent else "see the documentation"
        line = f"{path}: unknown key; allowed keys here: {allowed}"
    elif first["type"] == "missing":
        line = f"{path}: required field is missing"
    else:
        line = f"{path}: {first['msg']}; got {quote(first['input'])}"
    others = error.error_count() - 1
    return line + (f" (and {others} more error{'s' * (others > 1)})" if others else "")


_UNION_TAGS = {
    "float",
    "int",
    "str",
    "bool",
    "FloatParam",
    "IntParam",
    "CategoricalParam",
    "SeedPlan",
}


def _is_union_tag(part: Any) -> bool:
    # pydantic inserts the tried union member (e.g. 'float', 'dict[str,float]') into locations.
    return isinstance(part, str) and (part in _UNION_TAGS or "[" in part)
