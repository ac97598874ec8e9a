"""Conversion between plain JSON-shaped Python values and ``google.protobuf.Value``.

Invariant: ``to_python(to_value(x)) == x`` for every JSON value ``x`` (dicts with string
keys, lists, str, bool, None, and numbers). Numbers travel as IEEE doubles, as in JSON;
an integral number within ±2**53 comes back as ``int`` (what ``json.loads`` would give),
anything else as ``float``. Tuples are sent as lists.

Never silently lossy: an ``int`` beyond ±2**53 (which a double cannot hold exactly) is
refused with ``InvalidArgumentError`` naming where it is, as are NaN and the infinities;
send such numbers as strings. Any other value is handed to the `default` encoder when one
is given (like ``json.dumps(default=…)``; ``json_default`` covers ``datetime``, ``UUID``,
``Decimal``, …) and its result encoded in its place; without one it raises ``TypeError``.
"""

from __future__ import annotations

import dataclasses
import datetime
import decimal
import enum
import math
import uuid
from collections.abc import Callable, Mapping
from typing import Any

import grpc
from google.protobuf import struct_pb2

from .errors import InvalidArgumentError

Value = struct_pb2.Value

_MAX_SAFE_INT = 2**53

Encoder = Callable[[Any], Any]
"""``default(obj) -> JSON-able`` for values that are not JSON (as in ``json.dumps``)."""


def json_default(obj: Any) -> Any:
    """A ``default=`` encoder for the usual non-JSON values: ``datetime`` / ``date`` /
    ``time`` as ISO 8601 text, ``UUID`` and ``Decimal`` as text (exact), an ``Enum`` as
    its value, a dataclass instance as a dict, a set as a list. Anything else: TypeError."""
    if isinstance(obj, (datetime.datetime, datetime.date, datetime.time)):
        return obj.isoformat()
    if isinstance(obj, (uuid.UUID, decimal.Decimal)):
        return str(obj)
    if isinstance(obj, enum.Enum):
        return obj.value
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return dataclasses.asdict(obj)
    if isinstance(obj, (set, frozenset)):
        return list(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON serializable")


def to_value(obj: Any, default: Encoder | None = None) -> struct_pb2.Value:
    """Build a new ``Value`` from a JSON-shaped Python object."""
    v = struct_pb2.Value()
    fill_value(v, obj, default)
    return v


def fill_value(v: struct_pb2.Value, obj: Any, default: Encoder | None = None) -> None:
    """Set an empty ``Value`` (e.g. a message's field, in place) from `obj`; on error
    `v` is left partly filled."""
    try:
        _fill(v, obj, default, 0)
    except _Unsafe as exc:
        where = "".join(reversed(exc.path))
        raise InvalidArgumentError(
            "INVALID_ARGUMENT", f"INVALID_ARGUMENT: {exc.args[0]} at payload{where}: JSON numbers "
            "are doubles, so it would not arrive as sent; send it as a string",
            grpc.StatusCode.INVALID_ARGUMENT) from None


class _Unsafe(Exception):
    """A number that cannot travel exactly; `path` grows as it unwinds (innermost first)."""

    def __init__(self, what: str) -> None:
        super().__init__(what)
        self.path: list[str] = []


_MAX_DEFAULT_DEPTH = 64  # default() returning values that need default() again


def _fill(v: struct_pb2.Value, obj: Any, default: Encoder | None, depth: int) -> None:
    if obj is None:
        v.null_value = struct_pb2.NULL_VALUE
    elif isinstance(obj, bool):  # before int: bool is an int subclass
        v.bool_value = obj
    elif isinstance(obj, str):
        v.string_value = obj
    elif isinstance(obj, int):
        if not -_MAX_SAFE_INT <= obj <= _MAX_SAFE_INT:
            raise _Unsafe(f"integer {obj} is beyond ±2**53")
        v.number_value = obj
    elif isinstance(obj, float):
        if not math.isfinite(obj):
            raise _Unsafe(f"{obj!r} is not a JSON number")
        v.number_value = obj
    elif isinstance(obj, Mapping):
        fields = v.struct_value.fields
        if not obj:
            v.struct_value.SetInParent()
        for key, item in obj.items():
            if not isinstance(key, str):
                raise TypeError(f"JSON object keys must be str, got {type(key).__name__}")
            try:
                _fill(fields[key], item, default, depth)
            except _Unsafe as exc:
                exc.path.append(f".{key}")
                raise
    elif isinstance(obj, (list, tuple)):
        values = v.list_value.values
        if not obj:
            v.list_value.SetInParent()
        for i, item in enumerate(obj):
            try:
                _fill(values.add(), item, default, depth)
            except _Unsafe as exc:
                exc.path.append(f"[{i}]")
                raise
    elif default is not None and depth < _MAX_DEFAULT_DEPTH:
        _fill(v, default(obj), default, depth + 1)
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
