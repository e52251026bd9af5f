"""Fixtures of the notify tests: a fake Slack server on loopback (see slack_fake)."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from slack_fake import FakeSlack


@pytest.fixture
def fake_slack() -> Iterator[FakeSlack]:
    fake = FakeSlack()
    thread = threading.Thread(target=fake.server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield fake
    fake.server.shutdown()
    fake.server.server_close()
    thread.join(timeout=5)
