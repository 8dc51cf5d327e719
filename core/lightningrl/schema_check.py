"""A small JSON-schema checker for tool arguments: the subset tool schemas actually use.

Supported: ``type`` (one or a list), ``properties``, ``required``, ``additionalProperties``
(false or a schema), ``items``, ``enum``, ``const``, ``anyOf``/``oneOf`` (as "any of"), and
``minimum``/``maximum``. Unknown keywords are ignored (lenient: a schema we cannot read never
penalises the model). No dependency, so core stays light.
"""
from __future__ import annotations

import json
from functools import lru_cache
from typing import Any, Optional

_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,),
    "array": (list,),
    "string": (str,),
    "number": (int, float),
    "integer": (int,),
    "boolean": (bool,),
    "null": (type(None),),
}


def _type_ok(value: Any, name: str) -> bool:
    expected = _TYPES.get(name)
    if expected is None:
        return True  # unknown type name: lenient
    if isinstance(value, bool) and name in ("number", "integer"):
        return False  # JSON true is not a number
    if name == "integer" and isinstance(value, float):
        return value.is_integer()
    return isinstance(value, expected)


def check(value: Any, schema: Any, path: str = "$") -> Optional[str]:
    """None when ``value`` satisfies ``schema``; otherwise one message naming where it fails."""
    if not isinstance(schema, dict):
        return None  # True / {} / something unreadable: anything goes
    kind = schema.get("type")
    if kind is not None:
        names = kind if isinstance(kind, list) else [kind]
        if not any(_type_ok(value, n) for n in names if isinstance(n, str)):
            return f"{path}: expected {'/'.join(map(str, names))}, got {_json_type(value)}"
    if "enum" in schema and isinstance(schema["enum"], list) and value not in schema["enum"]:
        return f"{path}: {value!r} is not one of {schema['enum']!r}"
    if "const" in schema and value != schema["const"]:
        return f"{path}: must be {schema['const']!r}"
    for key in ("anyOf", "oneOf"):
        options = schema.get(key)
        if isinstance(options, list) and options:
            if all(check(value, option, path) is not None for option in options):
                return f"{path}: matches none of the {key} alternatives"
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        low, high = schema.get("minimum"), schema.get("maximum")
        if isinstance(low, (int, float)) and value < low:
            return f"{path}: {value} is below the minimum {low}"
        if isinstance(high, (int, float)) and value > high:
            return f"{path}: {value} is above the maximum {high}"
    if isinstance(value, dict):
        return _check_object(value, schema, path)
    if isinstance(value, list):
        items = schema.get("items")
        if isinstance(items, dict):
            for i, item in enumerate(value):
                problem = check(item, items, f"{path}[{i}]")
                if problem:
                    return problem
    return None


def _check_object(value: dict, schema: dict, path: str) -> Optional[str]:
    required = schema.get("required")
    if isinstance(required, list):
        for name in required:
            if name not in value:
                return f"{path}: missing required property {name!r}"
    properties = schema.get("properties")
    properties = properties if isinstance(properties, dict) else {}
    extra = schema.get("additionalProperties", True)
    for name, item in value.items():
        sub = properties.get(name)
        if sub is not None:
            problem = check(item, sub, f"{path}.{name}")
        elif extra is False:
            problem = f"{path}: unexpected property {name!r}"
        elif isinstance(extra, dict):
            problem = check(item, extra, f"{path}.{name}")
        else:
            problem = None
        if problem:
            return problem
    return None


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


@lru_cache(maxsize=4096)
def parse_schema(text: str) -> Any:
    """A tool's schema string, parsed once (the same few schemas repeat on every call).
    Unparseable schemas come back as None, which ``check`` treats as 'anything goes'."""
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None
