"""A small JSON-schema checker for tool arguments: the subset tool schemas actually use.

Supported: ``type`` (one or a list), ``properties``, ``required``, ``additionalProperties``
(false or a schema), ``items``, ``enum``, ``const``, ``anyOf``/``oneOf`` (as "any of"), and
``minimum``/``maximum``. Unknown keywords are ignored (lenient: a schema we cannot read never
penalises the model). No dependency, so core stays light.

Schemas are compiled once into nested closures (``validator(text)`` caches by the schema's text),
because the same few tool schemas are checked on every call. Values are expected as ``json.loads``
returns them (exact dict/list/str/int/float/bool/None).
"""
from __future__ import annotations

import json
from typing import Any, Callable, Optional

# A compiled check: None when the value is fine, else (path below this point, message).
Check = Callable[[Any], Optional[tuple[str, str]]]

_TYPES: dict[str, frozenset] = {
    "object": frozenset({dict}),
    "array": frozenset({list}),
    "string": frozenset({str}),
    "number": frozenset({int, float}),
    "integer": frozenset({int}),
    "boolean": frozenset({bool}),
    "null": frozenset({type(None)}),
}


def json_type(value: Any) -> str:
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


def _accept(value: Any) -> None:
    return None


def compile_schema(schema: Any) -> Check:
    """A fast check function for ``schema`` (anything that is not a dict accepts everything)."""
    if not isinstance(schema, dict):
        return _accept
    checks: list[Check] = []
    kind = schema.get("type")
    if kind is not None:
        names = [n for n in (kind if isinstance(kind, list) else [kind]) if isinstance(n, str)]
        if names and all(n in _TYPES for n in names):
            allowed = frozenset().union(*(_TYPES[n] for n in names))
            integral_floats = "integer" in names and float not in allowed
            expected = "/".join(names)

            def check_type(v: Any) -> Optional[tuple[str, str]]:
                t = type(v)
                if t in allowed or (integral_floats and t is float and v.is_integer()):
                    return None
                return "", f"expected {expected}, got {json_type(v)}"

            checks.append(check_type)
    enum = schema.get("enum")
    if isinstance(enum, list):
        checks.append(lambda v: None if v in enum else ("", f"{v!r} is not one of {enum!r}"))
    if "const" in schema:
        const = schema["const"]
        checks.append(lambda v: None if v == const else ("", f"must be {const!r}"))
    for key in ("anyOf", "oneOf"):
        options = schema.get(key)
        if isinstance(options, list) and options:
            compiled = [compile_schema(o) for o in options]
            checks.append(lambda v, c=compiled, k=key: None if any(f(v) is None for f in c)
                          else ("", f"matches none of the {k} alternatives"))
    low, high = schema.get("minimum"), schema.get("maximum")
    if isinstance(low, (int, float)) or isinstance(high, (int, float)):
        checks.append(lambda v: _bounds(v, low, high))
    listed = schema.get("required")
    required = [r for r in listed if isinstance(r, str)] if isinstance(listed, list) else []
    properties = schema.get("properties")
    extra = schema.get("additionalProperties", True)
    if required or isinstance(properties, dict) or extra is not True:
        checks.append(_object_check(required, properties if isinstance(properties, dict) else {}, extra))
    items = schema.get("items")
    if isinstance(items, dict):
        checks.append(_array_check(compile_schema(items)))
    if not checks:
        return _accept
    if len(checks) == 1:
        return checks[0]

    def check_all(v: Any) -> Optional[tuple[str, str]]:
        for c in checks:
            problem = c(v)
            if problem is not None:
                return problem
        return None

    return check_all


def _bounds(v: Any, low: Any, high: Any) -> Optional[tuple[str, str]]:
    if type(v) not in (int, float):
        return None
    if isinstance(low, (int, float)) and v < low:
        return "", f"{v} is below the minimum {low}"
    if isinstance(high, (int, float)) and v > high:
        return "", f"{v} is above the maximum {high}"
    return None


def _object_check(required: list[str], properties: dict, extra: Any) -> Check:
    props = {name: compile_schema(sub) for name, sub in properties.items()}
    extra_check = compile_schema(extra) if isinstance(extra, dict) else None
    closed = extra is False

    def check_object(v: Any) -> Optional[tuple[str, str]]:
        if type(v) is not dict:
            return None
        for name in required:
            if name not in v:
                return "", f"missing required property {name!r}"
        for name, item in v.items():
            sub = props.get(name)
            if sub is None:
                if closed:
                    return "", f"unexpected property {name!r}"
                if extra_check is None:
                    continue
                sub = extra_check
            problem = sub(item)
            if problem is not None:
                return f".{name}{problem[0]}", problem[1]
        return None

    return check_object


def _array_check(item_check: Check) -> Check:
    def check_array(v: Any) -> Optional[tuple[str, str]]:
        if type(v) is not list:
            return None
        for i, item in enumerate(v):
            problem = item_check(item)
            if problem is not None:
                return f"[{i}]{problem[0]}", problem[1]
        return None

    return check_array


def check(value: Any, schema: Any) -> Optional[str]:
    """None when ``value`` satisfies ``schema``; otherwise one message naming where it fails."""
    problem = compile_schema(schema)(value)
    return None if problem is None else f"${problem[0]}: {problem[1]}"


_validators: dict[str, Optional[Check]] = {}


def validator(text: str) -> Optional[Check]:
    """The compiled check for a schema given as JSON text, cached; None when there is nothing to
    check (empty or unreadable schema: anything goes)."""
    try:
        return _validators[text]
    except KeyError:
        pass
    try:
        compiled: Optional[Check] = compile_schema(json.loads(text)) if text else None
    except ValueError:
        compiled = None
    if len(_validators) > 4096:
        _validators.clear()
    _validators[text] = compiled
    return compiled
