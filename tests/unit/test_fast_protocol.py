"""Generated fetch request encoders and response decoders against aiokafka's own
(stream.fast_protocol)."""

from __future__ import annotations

from io import BytesIO
from typing import Any

import pytest
from aiokafka.protocol import fetch
from aiokafka.protocol import types as kt
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stream import fast_protocol

pytestmark = pytest.mark.unit

_RANGES = {
    kt.Int8: (-(2**7), 2**7 - 1),
    kt.Int16: (-(2**15), 2**15 - 1),
    kt.Int32: (-(2**31), 2**31 - 1),
    kt.UInt32: (0, 2**32 - 1),
    kt.Int64: (-(2**63), 2**63 - 1),
}

RESPONSES = sorted(
    (cls for name, cls in vars(fetch).items() if name.startswith("FetchResponse_v")),
    key=lambda cls: cls.API_VERSION,
)
REQUESTS = sorted(
    (cls for name, cls in vars(fetch).items() if name.startswith("FetchRequest_v")),
    key=lambda cls: cls.API_VERSION,
)


def values(field: Any) -> st.SearchStrategy[Any]:
    """Values of ``field`` that aiokafka's encoder accepts (None where the wire allows it)."""
    if field in _RANGES:
        low, high = _RANGES[field]
        return st.integers(low, high)
    if field is kt.Boolean:
        return st.booleans()
    if field is kt.Float64:
        return st.floats(allow_nan=False)
    if isinstance(field, kt.String):
        return st.none() | st.text(max_size=12)
    if field is kt.Bytes:
        return st.none() | st.binary(max_size=40)
    if isinstance(field, kt.Array):
        return st.none() | st.lists(values(field.array_of), max_size=4)
    if isinstance(field, kt.Schema):
        return st.tuples(*(values(f) for f in field.fields))
    raise AssertionError(f"no strategy for {field!r}")


def aiokafka_decode(cls: Any, raw: bytes) -> tuple[Any, int]:
    data = BytesIO(raw)
    values = cls.SCHEMA.decode(data)  # aiokafka's own, whatever cls.decode is now
    return values, data.tell()


@pytest.mark.parametrize("cls", RESPONSES, ids=lambda c: c.__name__)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_generated_decoder_reads_what_aiokafka_reads(cls: Any, data: st.DataObject) -> None:
    decoder = fast_protocol.compile_decoder(cls.SCHEMA)
    raw = cls.SCHEMA.encode(data.draw(values(cls.SCHEMA)))
    tail = data.draw(st.binary(max_size=3))  # the next bytes are not read
    assert decoder(raw + tail, 0) == aiokafka_decode(cls, raw)
    prefix = b"\x00" * data.draw(st.integers(0, 5))
    got, end = decoder(prefix + raw, len(prefix))
    assert (got, end - len(prefix)) == aiokafka_decode(cls, raw)


@pytest.mark.parametrize("cls", RESPONSES, ids=lambda c: c.__name__)
@settings(max_examples=30, deadline=None)
@given(data=st.data())
def test_a_short_response_is_a_value_error_as_in_aiokafka(cls: Any, data: st.DataObject) -> None:
    raw = cls.SCHEMA.encode(data.draw(values(cls.SCHEMA)))
    cut = raw[: data.draw(st.integers(0, len(raw) - 1))]
    with pytest.raises(ValueError):
        cls.SCHEMA.decode(BytesIO(cut))
    with pytest.raises(ValueError):
        fast_protocol.compile_decoder(cls.SCHEMA)(cut, 0)


@pytest.mark.parametrize("cls", REQUESTS, ids=lambda c: c.__name__)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_generated_encoder_writes_what_aiokafka_writes(cls: Any, data: st.DataObject) -> None:
    item = data.draw(values(cls.SCHEMA))
    assert fast_protocol.compile_encoder(cls.SCHEMA)(item) == cls.SCHEMA.encode(item)


@pytest.mark.parametrize("cls", REQUESTS, ids=lambda c: c.__name__)
def test_a_value_the_wire_cannot_carry_is_a_value_error_as_in_aiokafka(cls: Any) -> None:
    encode = fast_protocol.compile_encoder(cls.SCHEMA)
    # The first field of every fetch request is the replica id, an Int32.
    good = list(_zero(cls.SCHEMA))
    assert encode(good) == cls.SCHEMA.encode(good)
    for bad in ([2**31, *good[1:]], good[:-1]):  # out of range; a field missing
        with pytest.raises(ValueError):
            cls.SCHEMA.encode(bad)
        with pytest.raises(ValueError):
            encode(bad)


def _zero(field: Any) -> Any:
    """A value of ``field`` with every number zero and every string, bytes and array null."""
    if type(field) is kt.Schema:
        return tuple(_zero(f) for f in field.fields)
    if type(field) is kt.Array or field is kt.Bytes or type(field) is kt.String:
        return None
    return False if field is kt.Boolean else 0


def test_installed_encode_is_what_aiokafka_sends() -> None:
    names = fast_protocol.install()
    assert "FetchRequest_v11" in names
    request = fetch.FetchRequest(
        10, 32768, 52428800, 0, [("twin.vitals", [(0, 42, 1048576), (1, 7, 1048576)])]
    )
    built = request.build(fetch.FetchRequest_v11)
    assert built.encode() == built.SCHEMA.encode([built.__dict__[n] for n in built.SCHEMA.names])


def test_installed_decode_keeps_the_stream_position_and_the_class() -> None:
    assert "FetchResponse_v11" in fast_protocol.install()
    assert fast_protocol.install() == fast_protocol.install()  # idempotent
    cls = fetch.FetchResponse_v11
    partition = (3, 0, 120, 120, 7, [(9, 100)], -1, b"records")
    raw = cls.SCHEMA.encode((5, 0, 0, [("twin.vitals", [partition]), ("twin.labs", None)]))
    # As aiokafka's connection reads a frame: the header first, then the body.
    frame = BytesIO(b"\x00\x00\x00\x2a" + raw + b"next")
    frame.read(4)
    response = cls.decode(frame)
    assert type(response) is cls
    assert frame.read() == b"next"
    assert response.throttle_time_ms == 5
    assert response.topics == [("twin.vitals", [partition]), ("twin.labs", None)]
    assert cls.decode(raw) == response  # bytes too, as aiokafka's Struct.decode takes


def test_a_type_without_generated_code_is_refused() -> None:
    schema = kt.Schema(("a", kt.Int32), ("b", kt.CompactString()))
    with pytest.raises(fast_protocol.UnsupportedSchema):
        fast_protocol.compile_decoder(schema)


def test_fixed_size_runs_and_arrays_are_read_in_one_call_each() -> None:
    # v11: the header and the topics' length in one unpack, a topic's name length and
    # its partitions' length one each, then per partition its five fixed fields with
    # the aborted transactions' length, and its replica with the records' length.
    source = fast_protocol.compile_decoder(fetch.FetchResponse_v11.SCHEMA).source
    assert source.count("= u") == 5
    assert source.count("(buf[pos:end]))") == 1  # aborted transactions: iter_unpack
