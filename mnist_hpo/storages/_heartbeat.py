"""How often a worker shows its trial is alive, when a silent trial counts as dead, how often it is run again.

A worker beats for its running trial every :data:`HEARTBEAT_INTERVAL` seconds (Optuna's
heartbeat on RDB storage, the ``owner`` attribute's beat on a journal). A trial that misses
:data:`GRACE_BEATS` beats counts as dead (its worker was killed or lost): it is marked FAIL
and queued again with the same parameters, up to :data:`MAX_RETRY` times after crashes.

Read at call time, not import time: tests set ``MNIST_HPO_HEARTBEAT=1`` (or patch
:data:`HEARTBEAT_INTERVAL`) to see a dead worker's trial taken over within seconds.
"""

from __future__ import annotations

import os

HEARTBEAT_INTERVAL = int(os.environ.get("MNIST_HPO_HEARTBEAT", "20"))
GRACE_BEATS = 3
MAX_RETRY = 3


def heartbeat_interval() -> int:
    """Seconds between a worker's beats for its trial."""
    return HEARTBEAT_INTERVAL


def stale_grace() -> int:
    """Seconds without a beat after which a RUNNING trial counts as dead."""
    return GRACE_BEATS * HEARTBEAT_INTERVAL
