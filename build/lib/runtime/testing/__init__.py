"""Test a project the way ChannelTest tests a Phoenix app: in process, in virtual time.

``open_test_app`` starts an app from a project directory or modules on
memory storage, with no sockets. Call its HTTP routes (``app.http.post``),
enqueue messages, fire cron ticks, subscribe as a client
(``await sub.expect("create", id=...)``) — everything under
``trio.testing.MockClock(autojump_threshold=0)``, so retries, timeouts,
cron and heartbeats take no real time. See docs/testing.md.

Owns: the in-process harness and its pytest plugin.
May import: ``runtime.app`` and every layer's public names (it drives an
app from outside, as a client would; no private attribute of another layer).
Must never be imported by it: the runtime itself — nothing outside
``runtime.testing`` and the tests imports it.
"""

from .harness import TestApp, TestHttp, TestResponse, TestSubscription, open_test_app

__all__ = ["TestApp", "TestHttp", "TestResponse", "TestSubscription", "open_test_app"]
