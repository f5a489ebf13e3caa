"""Faster decoding of Kafka fetch responses and encoding of fetch requests, for aiokafka.

aiokafka decodes every response field by field, each through a Python call
that reads a few bytes from a ``BytesIO`` (``aiokafka.protocol.types``). A
worker subscribes to seven topics of eight partitions; every fetch response
names each partition the request named (most with nothing in them on a live
feed), and the consumer fetches every 10 ms (``TWIN_FETCH_MAX_WAIT_MS``).
Decoding one such response, 56 partitions and no records, took aiokafka 502
us (``FetchResponse_v11``, the version Kafka 4 answers), on Faust's consumer
thread, which shares the GIL with the agent; generated code, below, 109 us.
Live at 500 events/s the consumer thread went from 19.9 to 17.7 % of a core
(two alternating pairs); the worker's whole CPU per event moved within the
noise.

:func:`compile_decoder` turns a response ``Schema`` into one generated Python
function: consecutive fixed-size fields are read with one
``struct.unpack_from``, arrays of fixed-size items with one ``iter_unpack``,
and the result is exactly what ``Schema.decode`` returns (tuples for
structs, lists for arrays, ``None`` for null strings, bytes and arrays),
with a ``ValueError`` where aiokafka raises one on a short buffer.
:func:`install` gives aiokafka's fetch response classes a ``decode`` that uses
it. Only the plain types fetch responses use are compiled (integers,
booleans, strings, bytes, arrays, nested schemas); a schema with any other
type (the compact and tagged types of flexible versions) keeps aiokafka's
own decoding.

The request the consumer sends each time names the same partitions:
:func:`compile_encoder` generates its encoder likewise (one ``struct.pack``
per run of fixed-size fields, the bytes ``Schema.encode`` gives, a
``ValueError`` for a value out of range or a missing field, as aiokafka's).
aiokafka built and encoded a v11 request naming 56 partitions in 321-362 us
(three runs), 45 with the generated encoder (12 of them its own ``build``).
``tests/unit/test_fast_protocol.py`` checks the generated code against
aiokafka's on generated requests and responses of every fetch version.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from io import BytesIO
from typing import Any

from aiokafka.protocol import fetch
from aiokafka.protocol import types as kt

__all__ = ["UnsupportedSchema", "compile_decoder", "compile_encoder", "install"]

Decoder = Callable[[bytes, int], tuple[Any, int]]
"""``(buffer, position) -> (value, position after it)``."""
Encoder = Callable[[Any], bytes]
"""``values -> bytes``, as ``Schema.encode``."""

_FIXED: dict[type, str] = {
    kt.Int8: "b",
    kt.Int16: "h",
    kt.Int32: "i",
    kt.UInt32: "I",
    kt.Int64: "q",
    kt.Float64: "d",
    kt.Boolean: "?",
}


class UnsupportedSchema(TypeError):
    """The schema has a field type :func:`compile_decoder` does not generate code for."""


def _fixed(field: Any) -> str | None:
    return _FIXED.get(field) if isinstance(field, type) else None


def _length_code(field: Any) -> str | None:
    """The struct code of the length prefix of a string, bytes or array field."""
    if type(field) is kt.String:
        return "h"
    if field is kt.Bytes or type(field) is kt.Array:
        return "i"
    return None


class _Code:
    """Lines of one generated function and the constants its code names."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.consts: dict[str, Any] = {}
        self._n = 0

    def var(self, stem: str) -> str:
        self._n += 1
        return f"{stem}{self._n}"

    def const(self, value: Any, stem: str) -> str:
        name = self.var(stem)
        self.consts[name] = value
        return name

    def emit(self, indent: int, line: str) -> None:
        self.lines.append("    " * indent + line)


def _function(code: _Code, source: str, failing: str) -> Any:
    """The function ``source`` defines (named ``f``), with ``code``'s constants in scope.

    ``struct.error`` from it (a short buffer, a value out of its type's range) is
    raised as the ``ValueError`` aiokafka raises for the same input, saying ``failing``.
    """
    namespace: dict[str, Any] = dict(code.consts)
    exec(compile(source, f"<fast_protocol {failing}>", "exec"), namespace)  # noqa: S102
    inner = namespace["f"]

    def f(*args: Any) -> Any:
        try:
            return inner(*args)
        except struct.error as exc:
            raise ValueError(f"Error {failing}: {exc}") from exc

    f.source = source  # type: ignore[attr-defined]  # for a reader who wonders
    return f


class _Gen(_Code):
    """Generates the body of a decoder: reads values from ``buf`` at ``pos``."""

    def unpack(self, indent: int, fmt: str, targets: list[str]) -> None:
        s = struct.Struct(">" + fmt)
        name = self.const(s.unpack_from, "u")
        self.emit(indent, f"{', '.join(targets)}, = {name}(buf, pos)")
        self.emit(indent, f"pos += {s.size}")

    def value(self, field: Any, indent: int, n: str | None = None) -> str:
        """Emit code decoding ``field`` at ``pos``; return the variable holding it.

        ``n``: for a string, bytes or array, the variable its length prefix was
        already read into (with the fixed fields before it)."""
        code = _fixed(field)
        if code is not None:
            out = self.var("v")
            self.unpack(indent, code, [out])
            return out
        if type(field) is kt.Schema:
            return self.schema(field, indent)
        if type(field) is kt.String:
            read = f"str(buf[pos:end], {field.encoding!r})"
            return self.sized(indent, "h", read, "string", n)
        if field is kt.Bytes:
            return self.sized(indent, "i", "buf[pos:end]", "Bytes", n)
        if type(field) is kt.Array:
            return self.array(field, indent, n)
        raise UnsupportedSchema(f"no generated decoding for {field!r}")

    def sized(self, indent: int, length_code: str, read: str, what: str, n: str | None) -> str:
        out = self.var("v")
        if n is None:
            n = self.var("n")
            self.unpack(indent, length_code, [n])
        self.emit(indent, f"if {n} < 0:")
        self.emit(indent + 1, f"{out} = None")
        self.emit(indent, "else:")
        self.emit(indent + 1, f"end = pos + {n}")
        self.emit(indent + 1, "if end > size:")
        self.emit(indent + 2, f'raise ValueError("Buffer underrun decoding {what}")')
        self.emit(indent + 1, f"{out} = {read}")
        self.emit(indent + 1, "pos = end")
        return out

    def schema(self, schema: kt.Schema, indent: int) -> str:
        parts: list[str] = []
        fields = list(schema.fields)
        i = 0
        while i < len(fields):
            run = ""
            while i < len(fields) and (code := _fixed(fields[i])) is not None:
                run += code
                i += 1
            targets = [self.var("v") for _ in run]
            parts.extend(targets)
            field = fields[i] if i < len(fields) else None
            prefix = _length_code(field)
            if prefix is not None:
                # The length prefix of the string, bytes or array that follows, read
                # in the same call.
                n = self.var("n")
                self.unpack(indent, run + prefix, [*targets, n])
                parts.append(self.value(field, indent, n))
                i += 1
                continue
            if run:
                self.unpack(indent, run, targets)
            if field is not None:
                parts.append(self.value(field, indent))
                i += 1
        out = self.var("t")
        self.emit(indent, f"{out} = ({', '.join(parts)}{',' if len(parts) == 1 else ''})")
        return out

    def array(self, array: kt.Array, indent: int, n: str | None = None) -> str:
        out = self.var("a")
        if n is None:
            n = self.var("n")
            self.unpack(indent, "i", [n])
        self.emit(indent, f"if {n} == -1:")
        self.emit(indent + 1, f"{out} = None")
        self.emit(indent, "else:")
        item = array.array_of
        codes = [_fixed(f) for f in item.fields] if type(item) is kt.Schema else [_fixed(item)]
        if all(codes) and codes:
            # Fixed-size items: one iter_unpack over the whole array.
            s = struct.Struct(">" + "".join(c for c in codes if c))
            it = self.const(s.iter_unpack, "it")
            end = f"pos + {s.size} * max({n}, 0)"
            self.emit(indent + 1, f"end = {end}")
            self.emit(indent + 1, "if end > size:")
            self.emit(indent + 2, 'raise ValueError("Buffer underrun decoding an array")')
            rows = f"{it}(buf[pos:end])"
            read = f"list({rows})" if type(item) is kt.Schema else f"[x for (x,) in {rows}]"
            self.emit(indent + 1, f"{out} = {read} if {n} > 0 else []")
            self.emit(indent + 1, "pos = end")
            return out
        self.emit(indent + 1, f"{out} = []")
        self.emit(indent + 1, f"for _ in range({n}):")
        value = self.value(item, indent + 2)
        self.emit(indent + 2, f"{out}.append({value})")
        return out


def compile_decoder(schema: kt.Schema) -> Decoder:
    """A function decoding ``schema`` from a buffer, as ``schema.decode`` from a stream.

    >>> s = kt.Schema(("a", kt.Int32), ("b", kt.String()), ("c", kt.Array(kt.Int16)))
    >>> raw = s.encode([7, "x", [1, 2]])
    >>> compile_decoder(s)(raw + b"tail", 0), s.decode(BytesIO(raw))
    (((7, 'x', [1, 2]), 15), (7, 'x', [1, 2]))
    """
    gen = _Gen()
    gen.emit(1, "size = len(buf)")
    out = gen.schema(schema, 1)
    gen.emit(1, f"return {out}, pos")
    source = "def f(buf, pos):\n" + "\n".join(gen.lines) + "\n"
    decoder: Decoder = _function(gen, source, "decoding a response")
    return decoder


class _EncGen(_Code):
    """Generates the body of an encoder: appends the parts of ``item`` to ``parts``."""

    def pack(self, indent: int, fmt: str, values: list[str]) -> None:
        name = self.const(struct.Struct(">" + fmt).pack, "p")
        self.emit(indent, f"app({name}({', '.join(values)}))")

    def value(self, field: Any, x: str, indent: int) -> None:
        code = _fixed(field)
        if code is not None:
            self.pack(indent, code, [x])
        elif type(field) is kt.Schema:
            self.schema(field, x, indent)
        elif type(field) is kt.String:
            e = self.var("e")
            self.null_or_length(indent, field, x, e, f"{e} = str({x}).encode({field.encoding!r})")
            self.emit(indent + 1, f"app({e})")
        elif field is kt.Bytes:
            self.null_or_length(indent, field, x, x)
            self.emit(indent + 1, f"app({x})")
        elif type(field) is kt.Array:
            item = self.var("x")
            self.null_or_length(indent, field, x, x)
            self.emit(indent + 1, f"for {item} in {x}:")
            self.value(field.array_of, item, indent + 2)
        else:
            raise UnsupportedSchema(f"no generated encoding for {field!r}")

    def null_or_length(
        self, indent: int, field: Any, x: str, sized: str, prepare: str | None = None
    ) -> None:
        """Emit the length prefix of a string, bytes or array ``x``: -1 for None, else
        (after the line ``prepare``) the length of ``sized``; the caller emits the
        content at ``indent + 1``, in the else branch."""
        code = _length_code(field)
        assert code is not None
        self.emit(indent, f"if {x} is None:")
        self.pack(indent + 1, code, ["-1"])
        self.emit(indent, "else:")
        if prepare is not None:
            self.emit(indent + 1, prepare)
        self.pack(indent + 1, code, [f"len({sized})"])

    def schema(self, schema: kt.Schema, x: str, indent: int) -> None:
        fields = list(schema.fields)
        names = [self.var("f") for _ in fields]
        self.emit(indent, f"if len({x}) != {len(fields)}:")
        self.emit(indent + 1, 'raise ValueError("Item field count does not match Schema")')
        if fields:
            self.emit(indent, f"{', '.join(names)}, = {x}")
        i = 0
        while i < len(fields):
            run, values = "", []
            while i < len(fields) and (code := _fixed(fields[i])) is not None:
                run += code
                values.append(names[i])
                i += 1
            if run:
                self.pack(indent, run, values)
            else:
                self.value(fields[i], names[i], indent)
                i += 1


def compile_encoder(schema: kt.Schema) -> Encoder:
    """A function encoding values of ``schema`` to the bytes ``schema.encode`` gives.

    >>> s = kt.Schema(("a", kt.Int32), ("b", kt.String()), ("c", kt.Array(kt.Int16)))
    >>> compile_encoder(s)([7, "x", [1, 2]]) == s.encode([7, "x", [1, 2]])
    True
    """
    gen = _EncGen()
    gen.schema(schema, "item", 1)
    head = "def f(item):\n    parts = []\n    app = parts.append\n"
    source = head + "\n".join(gen.lines) + "\n    return b''.join(parts)\n"
    encoder: Encoder = _function(gen, source, "encoding a request")
    return encoder


def _struct_decode(decoder: Decoder) -> classmethod[Any, [BytesIO | bytes], Any]:
    def decode(cls: Any, data: BytesIO | bytes) -> Any:
        if isinstance(data, bytes):
            data = BytesIO(data)
        # The frame's bytes as they are (a BytesIO not written to shares them), read from
        # where aiokafka left off after the header: no copy of a large response.
        values, end = decoder(data.getvalue(), data.tell())
        data.seek(end)
        return cls(*values)

    return classmethod(decode)


def _struct_encode(encoder: Encoder) -> Callable[[Any], bytes]:
    def encode(self: Any) -> bytes:
        return encoder([self.__dict__[name] for name in self.SCHEMA.names])

    return encode


def install() -> list[str]:
    """Give aiokafka's fetch response classes generated decoders and its fetch request
    classes generated encoders; return their names.

    Idempotent. A class whose schema cannot be compiled keeps aiokafka's own.
    """
    # What each kind of class gets: a generated codec, kept as ``attr``, behind ``method``.
    kinds: list[tuple[str, str, Callable[[kt.Schema], Any], Callable[[Any], Any], str]] = [
        ("FetchResponse_v", "_fast_decoder", compile_decoder, _struct_decode, "decode"),
        ("FetchRequest_v", "_fast_encoder", compile_encoder, _struct_encode, "encode"),
    ]
    done = []
    for name in dir(fetch):
        cls: Any = getattr(fetch, name)
        # The versioned classes (not the Request builders, nor anything else).
        if type(getattr(cls, "SCHEMA", None)) is not kt.Schema:
            continue
        for prefix, attr, make, wrap, method in kinds:
            if not name.startswith(prefix):
                continue
            if attr not in cls.__dict__:
                try:
                    codec = make(cls.SCHEMA)
                except UnsupportedSchema:
                    break
                setattr(cls, attr, codec)
                setattr(cls, method, wrap(codec))
            done.append(name)
    return sorted(done)
