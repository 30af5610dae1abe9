"""Property-based fuzzing of what the stream port parses: the upgrade request, client frames,
and the JSON commands inside them, as the server does (wsproto for the handshake and the frame
protocol, `ws_protocol.parse_client_message` for the commands, `websocket.Connection` driving
them).

Whatever a client sends, and however TCP splits it into reads: no exception other than
wsproto's `RemoteProtocolError` for a request that is no WebSocket upgrade (the connection then
ends at its handshake, counted), the same outcome (the same messages, pings, close code; the same
request) for every split, and a command or a `BadFrame` for any message. The last property runs
the real `Connection` over an in-memory stream: a client that sends its upgrade request and its
first frames together, split anywhere, gets the same answers. Each test stays well under 5 s.
"""

from __future__ import annotations

import os
import struct

import orjson
import trio
import trio.testing
from hypothesis import given, settings
from hypothesis import strategies as st
from wsproto import ConnectionType, WSConnection
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Ping,
    Pong,
    Request,
    TextMessage,
)
from wsproto.utilities import RemoteProtocolError

from runtime import App, Stream
from runtime.server.metrics import ServerMetrics
from runtime.server.settings import ServerSettings
from runtime.server.websocket import Connection, WebSocketServer
from runtime.server.ws_protocol import BadFrame, JoinCommand, LeaveCommand, parse_client_message

from .test_fuzz_http import split

UPGRADE = (b"GET /x?token=t HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
           b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")


def frame(opcode: int, payload: bytes, *, fin: bool = True, mask: bool = True, rsv: int = 0) -> bytes:
    first = (0x80 if fin else 0) | (rsv << 4) | opcode
    n = len(payload)
    if n < 126:
        head = struct.pack("!BB", first, (0x80 if mask else 0) | n)
    elif n < 65536:
        head = struct.pack("!BBH", first, (0x80 if mask else 0) | 126, n)
    else:
        head = struct.pack("!BBQ", first, (0x80 if mask else 0) | 127, n)
    if not mask:
        return head + payload
    key = os.urandom(4)
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


@st.composite
def frames(draw):
    """Client frames: mostly well-formed (text, binary, fragmented, ping, pong, close), some abusive."""
    kind = draw(st.sampled_from(["text", "binary", "fragmented", "ping", "pong", "close", "abuse"]))
    payload = draw(st.binary(max_size=300))
    if kind == "text":
        return frame(0x1, draw(st.text(max_size=100)).encode())
    if kind == "binary":
        return frame(0x2, payload)
    if kind == "fragmented":
        text = draw(st.text(min_size=2, max_size=60)).encode()
        cut = draw(st.integers(0, len(text)))  # may cut a UTF-8 sequence: the message is still whole
        return frame(0x1, text[:cut], fin=False) + frame(0x0, text[cut:])
    if kind == "ping":
        return frame(0x9, payload[:125])
    if kind == "pong":
        return frame(0xA, payload[:125])
    if kind == "close":
        code = draw(st.sampled_from([1000, 1001, 1002, 999, 1005, 3000, 4999, 5000]))
        return frame(0x8, struct.pack("!H", code) + draw(st.binary(max_size=20)))
    return frame(draw(st.integers(0, 15)), payload, fin=draw(st.booleans()), mask=draw(st.booleans()),
                 rsv=draw(st.integers(0, 7)))


def server_after_handshake() -> object:
    """wsproto's frame protocol as the server has it once the 101 is sent (websocket.Connection)."""
    ws = WSConnection(ConnectionType.SERVER)
    ws.receive_data(UPGRADE)
    assert isinstance(next(ws.events()), Request)
    ws.send(AcceptConnection())
    return ws.connection


def read_frames(pieces: list[bytes]) -> list[tuple]:
    """What the server's reader makes of ``pieces``: whole messages (as it joins them), pings,
    pongs, and the close that ends it."""
    connection = server_after_handshake()
    out: list[tuple] = []
    message: list = []
    for piece in filter(None, pieces):  # the reader returns at the end of input instead of feeding it
        connection.receive_data(piece)  # type: ignore[attr-defined]
        for event in connection.events():  # type: ignore[attr-defined]
            if isinstance(event, (TextMessage, BytesMessage)):
                message.append(event.data)
                if event.message_finished:
                    out.append(("message", type(event).__name__, type(message[0])().join(message)))
                    message = []
            elif isinstance(event, Ping):
                out.append(("ping", bytes(event.payload)))
            elif isinstance(event, Pong):
                out.append(("pong", bytes(event.payload)))
            elif isinstance(event, CloseConnection):
                out.append(("close", int(event.code)))
                return out  # the reader stops at a close, as Connection._reader does
    return out


@settings(max_examples=80, deadline=None)
@given(st.lists(frames(), min_size=1, max_size=6), st.data())
def test_client_frames_read_the_same_however_split_and_never_raise(batch, data):
    wire = b"".join(batch)
    whole = read_frames([wire])
    assert read_frames(split(wire, data.draw(st.lists(st.integers(0, len(wire)), max_size=8)))) == whole
    assert read_frames([wire[i:i + 1] for i in range(len(wire))]) == whole


@settings(max_examples=80, deadline=None)
@given(st.binary(max_size=300), st.data())
def test_garbage_after_the_handshake_never_raises_and_reads_the_same_however_split(garbage, data):
    whole = read_frames([garbage])
    assert read_frames(split(garbage, data.draw(st.lists(st.integers(0, len(garbage)), max_size=6)))) == whole


@st.composite
def upgrade_requests(draw):
    """Upgrade requests with their headers dropped, doubled or changed, or bytes flipped."""
    lines = UPGRADE.split(b"\r\n")[:-2]
    head, headers = lines[0], lines[1:]
    headers = [h for h in headers if draw(st.integers(0, 9))]  # drop one now and then
    extra = draw(st.lists(st.sampled_from([
        b"Sec-WebSocket-Protocol: Authorization, tok", b"Sec-WebSocket-Version: 8", b"Upgrade: h2c",
        b"Origin: http://evil", b"Sec-WebSocket-Key: short", b"Connection: close", b"X-\xff: \x00\x01",
        b"Sec-WebSocket-Extensions: permessage-deflate",
    ]), max_size=3))
    wire = bytearray(b"\r\n".join([head, *headers, *extra]) + b"\r\n\r\n")
    for _ in range(draw(st.integers(0, 2))):
        at = draw(st.integers(0, len(wire) - 1))
        wire[at] = draw(st.integers(0, 255))
    return bytes(wire)


def handshake(pieces: list[bytes]) -> tuple:
    """The server's handshake loop (websocket.Connection._handshake): the request, or its refusal."""
    ws = WSConnection(ConnectionType.SERVER)
    try:
        for piece in filter(None, pieces):  # an empty read is the end of input: the loop ends there
            ws.receive_data(piece)
            for event in ws.events():
                if isinstance(event, Request):
                    return ("request", event.target, tuple(event.extra_headers), tuple(event.subprotocols))
    except (RemoteProtocolError, UnicodeError) as exc:  # the two the server answers with 400
        return ("refused", type(exc).__name__)
    return ("incomplete",)


@settings(max_examples=80, deadline=None)
@given(upgrade_requests(), st.data())
def test_upgrade_requests_are_a_request_or_a_refusal_however_split(wire, data):
    whole = handshake([wire])
    assert handshake(split(wire, data.draw(st.lists(st.integers(0, len(wire)), max_size=8)))) == whole


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12,
)


@st.composite
def commands(draw):
    """Join/leave-shaped JSON with any field of any type, or anything else."""
    if draw(st.booleans()):
        return orjson.dumps(draw(json_values))
    body = {name: draw(st.one_of(st.text(max_size=10), json_values))
            for name in ("streamName", "groupId", "subscriptionId", "id", "since") if draw(st.booleans())}
    message = {"type": draw(st.sampled_from(["join", "leave", "set", ""])), "data": body}
    return orjson.dumps(message)


@settings(max_examples=150, deadline=None)
@given(st.one_of(commands(), st.binary(max_size=100)))
def test_any_message_is_a_command_or_a_bad_frame(data):
    command = parse_client_message(data)
    assert isinstance(command, (JoinCommand, LeaveCommand, BadFrame))
    if not isinstance(command, BadFrame):
        assert all(isinstance(v, str) and v for v in (command.stream, command.group, command.subscription_id))
        assert command.item_id is None or (isinstance(command.item_id, str) and command.item_id)
    text = data.decode("utf-8", "replace")
    assert type(parse_client_message(text)) is type(command) or isinstance(command, BadFrame)


# -- the real Connection: the upgrade request and the first frames together, split anywhere ------


def join(group: str, sid: str) -> bytes:
    return frame(0x1, orjson.dumps({"type": "join", "data": {"streamName": "s", "groupId": group,
                                                              "subscriptionId": sid}}))


async def answers(pieces: list[bytes]) -> list[tuple]:
    """What a real server `Connection` answers a client that sends ``pieces`` (then its close)."""
    app = App(streams=[Stream("s")])
    async with app, trio.open_nursery() as nursery:
        server = WebSocketServer(app, ServerSettings(), ServerMetrics())
        client_stream, server_stream = trio.testing.memory_stream_pair()
        nursery.start_soon(Connection(server, server_stream).run)
        for piece in filter(None, pieces):
            await client_stream.send_all(piece)
            await trio.testing.wait_all_tasks_blocked()
        got: list[tuple] = []
        raw = b""
        with trio.fail_after(5):
            while b"\r\n\r\n" not in raw:
                raw += await client_stream.receive_some(65536)
            status, _, rest = raw.partition(b"\r\n\r\n")
            got.append(("status", status.split(b"\r\n")[0]))
            received = rest
            await client_stream.send_all(frame(0x8, struct.pack("!H", 1000)))
            while data := await client_stream.receive_some(65536):
                received += data
        for message in _server_frames(received):
            got.append(message)
        nursery.cancel_scope.cancel()
    return got


def _server_frames(data: bytes) -> list[tuple]:
    """Decode the server's (unmasked) frames: (opcode, the event type of a stream frame)."""
    out = []
    while len(data) >= 2:
        opcode, n = data[0] & 0x0F, data[1] & 0x7F
        at = 2
        if n == 126:
            n, at = struct.unpack("!H", data[2:4])[0], 4
        elif n == 127:
            n, at = struct.unpack("!Q", data[2:10])[0], 10
        payload, data = data[at:at + n], data[at + n:]
        if opcode == 0x1:
            message = orjson.loads(payload)
            out.append(("text", message.get("event", {}).get("type") or message.get("type")))
        else:
            out.append((opcode,))
    return out


@settings(max_examples=25, deadline=None)
@given(st.data())
def test_an_upgrade_and_early_frames_split_anywhere_get_the_same_answers(data):
    wire = UPGRADE + join("g1", "a") + frame(0x9, b"hi") + join("g2", "b")
    cuts = data.draw(st.lists(st.integers(0, len(wire)), max_size=5))
    expected = trio.run(answers, [wire])
    assert expected[0][1].startswith(b"HTTP/1.1 101 ")
    assert [m for m in expected if m[0] == "text"] == [("text", "sync"), ("text", "sync")]
    assert trio.run(answers, split(wire, cuts)) == expected
