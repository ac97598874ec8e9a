"""Conversion between plain JSON-shaped Python values and ``google.protobuf.Value``.

Invariant: ``to_python(to_value(x)) == x`` for every JSON value ``x`` (dicts with string
keys, lists, str, bool, None, and numbers). Numbers travel as IEEE doubles, as in JSON;
an integral number within ±2**53 comes back as ``int`` (what ``json.loads`` would give),
anything else as ``float``. Tuples are sent as lists. Anything else raises ``TypeError``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from google.protobuf import struct_pb2

Value = struct_pb2.Value

_MAX_SAFE_INT = 2**53


def to_value(obj: Any) -> struct_pb2.Value:
    """Build a new ``Value`` from a JSON-shaped Python object."""
    v = struct_pb2.Value()
    _fill(v, obj)
    return v


def fill_value(v: struct_pb2.Value, obj: Any) -> None:
    """Set an empty ``Value`` (e.g. a message's field, in place) from `obj`; on TypeError
    `v` is left partly filled."""
    _fill(v, obj)


def _fill(v: struct_pb2.Value, obj: Any) -> None:
    if obj is None:
        v.null_value = struct_pb2.NULL_VALUE
    elif isinstance(obj, bool):  # before int: bool is an int subclass
        v.bool_value = obj
    elif isinstance(obj, str):
        v.string_value = obj
    elif isinstance(obj, (int, float)):
        if isinstance(obj, float) and not math.isfinite(obj):
            raise TypeError(f"{obj!r} is not a JSON number")
        v.number_value = obj
    elif isinstance(obj, Mapping):
        fields = v.struct_value.fields
        if not obj:
            v.struct_value.SetInParent()
        for key, item in obj.items():
            if not isinstance(key, str):
                raise TypeError(f"JSON object keys must be str, got {type(key).__name__}")
            _fill(fields[key], item)
    elif isinstance(obj, (list, tuple)):
        values = v.list_value.values
        if not obj:
            v.list_value.SetInParent()
        for item in obj:
            _fill(values.add(), item)
    else:
        raise TypeError(f"{type(obj).__name__} is not JSON serializable")


def to_python(v: struct_pb2.Value) -> Any:
    """Turn a ``Value`` into plain Python; an unset Value is ``None``."""
    kind = v.WhichOneof("kind")
    if kind == "string_value":
        return v.string_value
    if kind == "number_value":
        n = v.number_value
        if n.is_integer() and -_MAX_SAFE_INT <= n <= _MAX_SAFE_INT:
            return int(n)
        return n
    if kind == "struct_value":
        return {k: to_python(item) for k, item in v.struct_value.fields.items()}
    if kind == "list_value":
        return [to_python(item) for item in v.list_value.values]
    if kind == "bool_value":
        return v.bool_value
    return None
