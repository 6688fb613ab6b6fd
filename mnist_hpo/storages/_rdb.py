"""Optuna's RDB storage as the workers use it: no trial left RUNNING for ever, no retry queued twice.

Optuna's stale-trial check (``fail_stale_trials``) looks only at trials with a heartbeat, and a
trial gets its first one just after it is created. A trial created whose worker never beat for
it stays RUNNING for ever, and the workers wait for it without end. That happens when:

* the reply to the commit that created the trial (or took a queued one) was lost in an outage,
  so the retried call made another trial and the first was never the worker's;
* the worker died or stopped between creating the trial and its first heartbeat.

Here a RUNNING trial with no heartbeat counts as stale once this process has seen it without
one for the grace period (every worker beats for its trial right after creating it), and is
failed and queued again like any stale trial. The time is this process's own clock, not the
trial's start, which another machine's clock wrote.

A queued retry (a ``retry_history`` system attribute) whose creation is retried after such a
lost reply is found, not queued a second time: its draw would run twice.

Both override private methods of ``RDBStorage`` (``_get_stale_trial_ids``, ``_create_new_trial``, listed in
:data:`._optuna_compat.RDB_PRIVATE_CALLS`); ``tests/storages/test_optuna_compat.py`` checks they exist with
those parameters, ``tests/storages/test_rdb.py`` that Optuna calls them.
"""

from __future__ import annotations

import time
from typing import Any

import optuna
from optuna.trial import FrozenTrial

from ._optuna_compat import beating_trial_ids, trial_id


class WorkerRDBStorage(optuna.storages.RDBStorage):
    """``RDBStorage`` whose stale trials include those that never beat (see the module docstring)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._unbeaten_since: dict[int, dict[int, float]] = {}  # study id -> trial id -> first seen

    def _get_stale_trial_ids(self, study_id: int) -> list[int]:
        return [*super()._get_stale_trial_ids(study_id), *self._never_beaten(study_id)]

    def _never_beaten(self, study_id: int) -> list[int]:
        """The RUNNING trials seen here without a heartbeat for longer than the grace period."""
        running = [
            trial_id(t)
            for t in self.get_all_trials(study_id, deepcopy=False, states=(optuna.trial.TrialState.RUNNING,))
        ]
        unbeaten = set(running) - beating_trial_ids(self, running)
        now = time.monotonic()
        before = self._unbeaten_since.get(study_id, {})
        seen = self._unbeaten_since[study_id] = {tid: before.get(tid, now) for tid in unbeaten}
        grace = self.grace_period or 2 * (self.heartbeat_interval or 0)
        return sorted(tid for tid, since in seen.items() if now - since > grace)

    def _create_new_trial(self, study_id: int, template_trial: FrozenTrial | None = None) -> FrozenTrial:
        history = template_trial.system_attrs.get("retry_history") if template_trial is not None else None
        if history:
            for trial in self.get_all_trials(study_id, deepcopy=False):
                if trial.system_attrs.get("retry_history") == history:
                    return trial  # queued by this call's first try, whose reply was lost
        return super()._create_new_trial(study_id, template_trial)
