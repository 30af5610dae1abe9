import logging

import pytest


@pytest.fixture(autouse=True)
def _quiet(caplog):
    caplog.set_level(logging.CRITICAL + 1, logger="actors")
    caplog.set_level(logging.CRITICAL + 1, logger="runtime.streams")
