"""lifecycle.progress: the heartbeat of long steps."""

from __future__ import annotations

import logging
import time

import pytest

from lifecycle.progress import heartbeat


def test_heartbeat_logs_while_the_block_runs_and_stops_after(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="lifecycle.progress")
    with heartbeat("fitting", every=0.05):
        time.sleep(0.3)
    beats = [r.getMessage() for r in caplog.records if "still running" in r.getMessage()]
    assert beats and all(b.startswith("fitting: still running (") for b in beats)
    time.sleep(0.15)
    assert len([r for r in caplog.records if "still running" in r.getMessage()]) == len(beats)


def test_heartbeat_is_silent_for_a_short_block(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="lifecycle.progress")
    with pytest.raises(RuntimeError), heartbeat("quick", every=10.0):
        raise RuntimeError("the block's own error passes through")
    assert not caplog.records
