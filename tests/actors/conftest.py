import logging

import pytest


@pytest.fixture(autouse=True)
def _quiet_actor_logs(caplog):
    # Failures are logged on purpose in these tests; keep them out of the output
    # but available to assertions through caplog.
    caplog.set_level(logging.CRITICAL + 1, logger="actors")
    yield
