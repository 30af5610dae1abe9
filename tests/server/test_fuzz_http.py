"""Property-based fuzzing of HTTP heads as the front door reads them (`http_wire.RequestReader`).

Whatever the bytes — well-formed pipelined requests, the same with bytes inserted, deleted or
flipped, arbitrary header values, garbage — the reader never raises (a `BadRequest` is its one
refusal, and nothing follows it), and it gives the same events however the bytes are split
into reads: in one, at random places, a byte at a time, with or without the end of input.
(tests/server/test_http_wire.py has the well-formed cases; these are the hostile ones.)
Each test is bounded by ``max_examples`` to stay well under 5 s here.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from runtime.server.front_door import RECEIVE_SIZE
from runtime.server.http_wire import NEED_DATA, BadRequest, Request, RequestReader, clean_trace_id

from .test_http_wire import read_all, requests


def split(wire: bytes, cuts: list[int]) -> list[bytes]:
    cuts = sorted(cuts)
    return [wire[a:b] for a, b in zip([0, *cuts], [*cuts, len(wire)])]


def refusals_end_it(events: list[tuple]) -> bool:
    bad = [e for e in events if e[0] == "bad"]
    return len(bad) <= 1 and (not bad or events[-1] == bad[0])


@st.composite
def mutated(draw):
    """Pipelined well-formed requests with a few bytes inserted, deleted or replaced."""
    wire = bytearray(b"".join(w for w, _ in draw(st.lists(requests(), min_size=1, max_size=4))))
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(wire)))
        kind = draw(st.sampled_from(["insert", "delete", "replace"]))
        byte = draw(st.sampled_from([b"\r", b"\n", b":", b" ", b"\0", b"\xff", b"0", b"a", b",", b"\t"]))
        if kind == "insert":
            wire[at:at] = byte
        elif kind == "delete" and at < len(wire):
            del wire[at]
        elif at < len(wire):
            wire[at:at + 1] = byte
    return bytes(wire)


@settings(max_examples=60, deadline=None)
@given(mutated(), st.data())
def test_mutated_requests_never_raise_and_read_the_same_however_split(wire, data):
    whole = read_all([wire])
    assert refusals_end_it(whole)
    assert read_all(split(wire, data.draw(st.lists(st.integers(0, len(wire)), max_size=8)))) == whole
    assert read_all([wire[i:i + 1] for i in range(len(wire))]) == whole


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=400), st.data())
def test_garbage_reads_the_same_however_split(garbage, data):
    whole = read_all([garbage])
    assert refusals_end_it(whole)
    assert read_all(split(garbage, data.draw(st.lists(st.integers(0, len(garbage)), max_size=6)))) == whole


header_bytes = st.binary(min_size=0, max_size=40)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.binary(min_size=1, max_size=12), header_bytes), max_size=5), st.data())
def test_arbitrary_header_bytes_are_a_request_or_a_refusal(headers, data):
    head = b"GET /x HTTP/1.1\r\n" + b"".join(n + b": " + v + b"\r\n" for n, v in headers) + b"\r\n"
    whole = read_all([head])
    assert refusals_end_it(whole) and whole, whole
    assert whole[0][0] in ("request", "bad")
    assert read_all(split(head, data.draw(st.lists(st.integers(0, len(head)), max_size=6)))) == whole
    reader = RequestReader()
    reader.feed(head)
    event = reader.next_event()
    if isinstance(event, Request):  # what the front door then does with a client's trace id never raises
        cleaned = clean_trace_id(event.header(b"x-trace-id"))
        assert cleaned is None or (cleaned.isascii() and cleaned.isprintable())
    else:
        assert isinstance(event, BadRequest) and event.status in (400, 431, 501)


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 400), st.integers(1, 300), st.lists(st.integers(1, 40), max_size=6))
def test_a_small_head_straddling_full_reads_behind_a_large_body_is_never_refused(offset, value_size, trickle):
    """The next head begins ``offset`` bytes before the end of a full read (RECEIVE_SIZE) and
    arrives in small reads after it (a client that trickles): it is read, not refused with 431
    (which counting the whole first read as head bytes did)."""
    head = b"GET /b HTTP/1.1\r\nHost: x\r\nX-A: " + b"y" * value_size + b"\r\n\r\n"
    first = b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n"
    body_size = RECEIVE_SIZE - offset - len(first % 100000)
    wire = first % body_size + b"b" * body_size + head
    pieces = [wire[:RECEIVE_SIZE]]
    at = RECEIVE_SIZE
    for size in trickle:
        pieces.append(wire[at:at + size])
        at += size
    pieces.append(wire[at:])
    events = read_all(pieces)
    assert [e[0] for e in events] == ["request", "body", "end", "request", "body", "end"], events[-1:]


@settings(max_examples=40, deadline=None)
@given(mutated())
def test_the_end_of_input_anywhere_leaves_the_reader_quiet(wire):
    """A client that leaves mid-request: after ``feed(b"")`` the reader is finished and gives nothing more."""
    reader = RequestReader()
    reader.feed(wire)
    while reader.next_event() is not NEED_DATA:
        pass
    reader.feed(b"")
    assert reader.finished and reader.next_event() is NEED_DATA
    reader.feed(b"GET / HTTP/1.1\r\n\r\n")  # nothing is parsed after the end
    assert reader.next_event() is NEED_DATA
