"""http_wire without sockets: request framing (split at every byte, pipelined, chunked), the
connection-ending rules and their state table, response heads."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runtime.server.http_wire import (
    NEED_DATA,
    BadRequest,
    Body,
    EndOfMessage,
    Lifecycle,
    LifecycleError,
    Request,
    RequestReader,
    State,
    clean_trace_id,
    keep_alive,
    response_head,
    valid_header,
)


def read_all(pieces: list[bytes]) -> list[tuple]:
    """Feed ``pieces`` one by one, taking every event after each: [("request", method, target,
    headers) | ("body", bytes joined per request) | ("end",) | ("bad", status)]."""
    reader = RequestReader()
    out: list[tuple] = []
    body = b""
    for piece in pieces:
        if not piece:
            continue  # an empty read is the end of input: the driver never feeds one otherwise
        reader.feed(piece)
        while (event := reader.next_event()) is not NEED_DATA:
            if isinstance(event, Request):
                out.append(("request", event.method, event.target, tuple(event.headers)))
            elif isinstance(event, Body):
                body += event.data
            elif isinstance(event, EndOfMessage):
                out.append(("body", body))
                out.append(("end",))
                body = b""
            elif isinstance(event, BadRequest):
                out.append(("bad", event.status))
    return out


token = st.text(alphabet="abcdefghijklmnopqrstuvwxyz-", min_size=1, max_size=12)
value = st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=0, max_size=20)
bodies = st.binary(max_size=300)


@st.composite
def requests(draw):
    """(wire bytes, expected events) of one well-formed request, Content-Length or chunked."""
    method = draw(st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH"]))
    path = "/" + draw(st.text(alphabet="abc123/_-.", max_size=20))
    headers = [("x-" + n, v.strip()) for n, v in draw(st.lists(st.tuples(token, value), max_size=5))]
    body = draw(bodies) if method != "GET" else b""
    chunked = bool(body) and draw(st.booleans())
    head = f"{method} {path} HTTP/1.1\r\nhost: x\r\n" + "".join(f"{n}: {v}\r\n" for n, v in headers)
    if chunked:
        cuts = sorted(draw(st.lists(st.integers(0, len(body)), max_size=4)))
        pieces = [body[a:b] for a, b in zip([0, *cuts], [*cuts, len(body)]) if body[a:b]]
        wire = (head + "transfer-encoding: chunked\r\n\r\n").encode() + b"".join(
            b"%x\r\n%s\r\n" % (len(p), p) for p in pieces) + b"0\r\n\r\n"
        framing = [(b"transfer-encoding", b"chunked")]
    else:
        wire = (head + (f"content-length: {len(body)}\r\n" if body else "") + "\r\n").encode() + body
        framing = [(b"content-length", str(len(body)).encode())] if body else []
    expected_headers = ((b"host", b"x"), *((n.encode(), v.encode()) for n, v in headers), *framing)
    return wire, [("request", method, path.encode(), expected_headers), ("body", body), ("end",)]


@settings(max_examples=150, deadline=None)
@given(st.lists(requests(), min_size=1, max_size=5), st.data())
def test_pipelined_requests_split_anywhere_give_the_same_events(batch, data):
    wire = b"".join(w for w, _ in batch)
    expected = [e for _, events in batch for e in events]
    cuts = sorted(data.draw(st.lists(st.integers(0, len(wire)), max_size=8)))
    pieces = [wire[a:b] for a, b in zip([0, *cuts], [*cuts, len(wire)])]
    assert read_all(pieces) == expected


@settings(max_examples=30, deadline=None)
@given(requests())
def test_a_request_fed_a_byte_at_a_time(request):
    wire, expected = request
    assert read_all([wire[i:i + 1] for i in range(len(wire))]) == expected


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200), st.data())
def test_any_bytes_give_events_or_one_bad_request_and_never_raise(garbage, data):
    cuts = sorted(data.draw(st.lists(st.integers(0, len(garbage)), max_size=4)))
    events = read_all([garbage[a:b] for a, b in zip([0, *cuts], [*cuts, len(garbage)])])
    bad = [e for e in events if e[0] == "bad"]
    assert len(bad) <= 1 and (not bad or events[-1] == bad[0])


@pytest.mark.parametrize("wire, status", [
    (b"POST / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
    (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n", 400),
    (b"POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", 400),
    (b"POST / HTTP/1.1\r\nContent-Length: 5, 5\r\n\r\n", 400),
    (b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501),
    (b"POST / HTTP/1.1\r\nTransfer-Encoding: identity\r\n\r\n", 501),
    (b"GET / HTTP/1.1\r\nX-A: a\r\n b\r\n\r\n", 400),  # obs-fold
    (b"GET / HTTP/1.1\nHost: x\n\n", 400),  # bare LF
    (b"GET / HTTP/1.1\r\nX-A: a\rb\r\n\r\n", 400),  # bare CR
    (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5x\r\nhello\r\n0\r\n\r\n", 400),
    (b"GET /" + b"a" * 70_000 + b" HTTP/1.1\r\n\r\n", 431),
    (b"GET / HTTP/1.1\r\nX-Big: " + b"a" * 70_000 + b"\r\n\r\n", 431),
])
def test_smuggling_shapes_and_oversized_heads_are_bad_requests(wire, status):
    assert read_all([wire])[-1] == ("bad", status)
    assert read_all([wire[i:i + 997] for i in range(0, len(wire), 997)])[-1] == ("bad", status)


def test_nothing_is_parsed_after_a_bad_request_or_an_upgrade():
    reader = RequestReader()
    reader.feed(b"GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nGET /x HTTP/1.1\r\n\r\n")
    assert isinstance(reader.next_event(), BadRequest) and reader.next_event() is NEED_DATA and reader.finished
    reader = RequestReader()
    reader.feed(b"GET / HTTP/1.1\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\nGET /x HTTP/1.1\r\n\r\n")
    request = reader.next_event()
    assert isinstance(request, Request) and request.upgrade and not keep_alive(request, body_read=True, status=200)
    assert isinstance(reader.next_event(), EndOfMessage) and reader.next_event() is NEED_DATA and reader.finished


def head(wire: bytes) -> Request:
    reader = RequestReader()
    reader.feed(wire)
    event = reader.next_event()
    assert isinstance(event, Request)
    return event


@pytest.mark.parametrize("wire, kwargs, keep", [
    (b"GET / HTTP/1.1\r\n\r\n", {}, True),
    (b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n", {}, False),
    (b"GET / HTTP/1.1\r\nConnection: keep-alive, Close\r\n\r\n", {}, False),
    (b"GET / HTTP/1.0\r\n\r\n", {}, False),
    (b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", {}, True),
    (b"GET / HTTP/1.1\r\n\r\n", {"status": 413}, False),
    (b"GET / HTTP/1.1\r\n\r\n", {"body_read": False}, False),
    (b"GET / HTTP/1.1\r\n\r\n", {"draining": True}, False),
    (b"GET / HTTP/1.1\r\n\r\n", {"response_close": True}, False),
    (b"GET / HTTP/1.1\r\n\r\n", {"close_delimited": True}, False),
])
def test_the_connection_ending_rules(wire, kwargs, keep):
    assert keep_alive(head(wire), **{"body_read": True, "status": 200, **kwargs}) is keep
    assert keep_alive(None, body_read=True, status=400) is False


def test_expect_continue_only_on_http_11():
    assert head(b"POST / HTTP/1.1\r\nExpect: 100-Continue\r\nContent-Length: 1\r\n\r\n").expect_continue
    assert not head(b"POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n").expect_continue


def test_the_lifecycle_table():
    life = Lifecycle()
    for event, state in [("data", State.READING), ("request", State.RESPONDING), ("keep", State.IDLE),
                         ("data", State.READING), ("request", State.RESPONDING), ("stream", State.STREAMING),
                         ("close", State.CLOSING), ("closed", State.CLOSED)]:
        assert life.advance(event) is state
    with pytest.raises(LifecycleError):
        life.advance("data")  # nothing leaves CLOSED
    with pytest.raises(LifecycleError):
        Lifecycle().advance("request")  # a request is read before it is answered


def test_response_heads_frame_once_and_claim_no_server():
    data = response_head(200, [("content-type", "text/plain"), ("Content-Length", "99"), ("x-a", "1")],
                         content_length=2, keep=False)
    lines = data.split(b"\r\n")
    assert lines[0] == b"HTTP/1.1 200 OK" and data.endswith(b"\r\n\r\n")
    assert b"content-length: 2" in lines and b"Content-Length: 99" not in lines
    assert b"connection: close" in lines and not any(line.lower().startswith(b"server:") for line in lines)
    assert b"transfer-encoding: chunked" in response_head(200, [], chunked=True).split(b"\r\n")
    assert b"content-length" not in response_head(204, [], content_length=0)
    assert b"connection: keep-alive" in response_head(200, [], content_length=0, http10=True)


@pytest.mark.parametrize("raw, clean", [
    (b"abc-123", "abc-123"), (None, None), (b"", None), (b"h\xc3\xa9", None), (b"a b", None),
    (b"a" * 129, None), (b"a\x7fb", None),
])
def test_client_trace_ids_are_kept_only_when_plain(raw, clean):
    assert clean_trace_id(raw) == clean


@pytest.mark.parametrize("name, value, ok", [
    ("x-a", "b", True), ("x a", "b", False), ("x-a", "b\r\nx: y", False), ("x-a", "caf\u00e9", True),
    ("x-a", "\u2603", False), ("", "b", False), ("x-\u00e9", "b", False),
])
def test_handler_headers_are_checked(name, value, ok):
    assert valid_header(name, value) is ok
