"""Where a population stands, read from the study's trials alone: which trial is which segment, and which are done.

Every segment (one member's training between two perturbations) is a trial. Its user attribute
``pbt`` says which: ``member`` and ``generation``, and once it has started, the ``epochs`` it
covers, the ``parent`` trial whose checkpoint it started from, the ``start`` checkpoint's sha256,
and what exploit and explore did. ``pbt_end`` records the checkpoint it ended with.

Workers decide from this snapshot only, so any number of them, anywhere, agree:

* Generation 0's trials are made as trials are asked for (:func:`~mnist_hpo.storages.new_trial`);
  the first ``population`` of them, by number, are the members 0, 1, ... (a trial made
  beyond them while another worker made one too is *surplus*, and discarded unrun).
* Every later segment is queued (WAITING) by whoever ran the member's segment before it, before
  telling that one's result; it runs once the whole generation before it has ended.
* A key ``(member, generation)`` may end up with several trials: a retry of a crashed one
  (same parameters, seed and checkpoint), or, rarely, a duplicate queued by a race. The
  segment is the *canonical* trial: the lowest-numbered one that did not crash and was not
  discarded; a duplicate found on claiming it is discarded unrun.
"""

from __future__ import annotations

from collections import defaultdict

from optuna.trial import FrozenTrial, TrialState

from ...core.pbt import generations, pbt_settings
from ...core.schema import StudyConfig
from ...storages import retried

PBT = "pbt"  # user attribute: the segment's place and start
END = "pbt_end"  # user attribute: {"artifact": id, "sha256": hex} of the checkpoint the segment ended with
DISCARDED = "pbt_discarded"  # user attribute: why a surplus or duplicate trial was not run

PENDING, DONE, BROKEN, MISSING = "pending", "done", "broken", "missing"


def is_segment(trial: FrozenTrial) -> bool:
    """Whether ``trial`` is a segment of population-based training that started (its record is complete)."""
    return "epochs" in trial.user_attrs.get(PBT, {})


def is_final(trial: FrozenTrial) -> bool:
    """Whether ``trial`` ends its member's training (any trial outside population-based training does)."""
    return trial.user_attrs.get(PBT, {}).get("final", True)


def _crashed(trial: FrozenTrial) -> bool:
    """Cut off by a dead or interrupted worker (no error of its own): it is retried, or was."""
    return trial.state == TrialState.FAIL and "error" not in trial.user_attrs and DISCARDED not in trial.user_attrs


class Population:
    """A snapshot of a population-based study: each trial's segment, each segment's state."""

    def __init__(self, cfg: StudyConfig, trials: list[FrozenTrial]) -> None:
        self.size, self.generations = pbt_settings(cfg).population, generations(cfg)
        self.trials = sorted(trials, key=lambda t: t.number)
        number = {t.number: t for t in self.trials}
        self.originals = [
            t
            for t in self.trials
            if "failed_trial" not in t.system_attrs and t.user_attrs.get(PBT, {}).get("generation", 0) == 0
        ]
        rank = {t.number: i for i, t in enumerate(self.originals)}
        self.keys: dict[int, tuple[int, int] | None] = {}
        for t in self.trials:
            if PBT in t.user_attrs:
                self.keys[t.number] = (t.user_attrs[PBT]["member"], t.user_attrs[PBT]["generation"])
            else:  # an original not yet started, or the retry of one that died before it recorded its member
                first = number.get(t.system_attrs.get("failed_trial", t.number), t)
                m = rank.get(first.number, self.size)
                self.keys[t.number] = (m, 0) if m < self.size else None
        self.by_key: dict[tuple[int, int], list[FrozenTrial]] = defaultdict(list)
        for t in self.trials:
            if (key := self.keys[t.number]) is not None and DISCARDED not in t.user_attrs:
                self.by_key[key].append(t)

    def key(self, trial: FrozenTrial) -> tuple[int, int] | None:
        """``(member, generation)`` of ``trial``; None for a surplus trial of generation 0."""
        return self.keys.get(trial.number)

    def canonical(self, member: int, generation: int) -> FrozenTrial | None:
        """The trial that is segment ``(member, generation)``: the first that neither crashed nor was discarded."""
        return next((t for t in self.by_key.get((member, generation), []) if not _crashed(t)), None)

    def status(self, member: int, generation: int) -> str:
        """``pending`` (queued, running or about to be retried), ``done``, ``broken`` (failed or diverged)
        or ``missing``."""
        trial = self.canonical(member, generation)
        if trial is not None:
            return {TrialState.COMPLETE: DONE, TrialState.WAITING: PENDING, TrialState.RUNNING: PENDING}.get(
                trial.state, BROKEN
            )
        attempts = self.by_key.get((member, generation), [])
        if not attempts:
            return MISSING
        return PENDING if retried(attempts[-1]) else BROKEN  # a crash is retried, up to a limit

    def ended(self, generation: int) -> bool:
        """Whether every member's segment of ``generation`` is done or broken: the next may be planned."""
        return all(self.status(m, generation) in (DONE, BROKEN) for m in range(self.size))

    @property
    def finished(self) -> bool:
        return self.ended(self.generations - 1)

    def ready(self, trial: FrozenTrial) -> bool:
        """Whether a queued ``trial`` may run now: a segment whose generation before has ended."""
        key = self.key(trial)
        return key is not None and (key[1] == 0 or self.ended(key[1] - 1))

    def duplicate_of(self, trial: FrozenTrial) -> FrozenTrial | None:
        """The canonical trial of ``trial``'s segment if that is another one (``trial`` then must not run)."""
        key = self.key(trial)
        if key is None:
            return None
        first = self.canonical(*key)
        return first if first is not None and first.number != trial.number else None

    def missing_members(self) -> int:
        """How many of generation 0's members have no trial yet."""
        return max(0, self.size - len(self.originals))

    def running(self) -> bool:
        return any(t.state == TrialState.RUNNING for t in self.trials)

    def lost(self) -> tuple[list[tuple[int, int]], list[FrozenTrial]]:
        """What a stalled population lacks: segments whose predecessor ended but that nobody queued (the
        predecessor's worker died for good), and crashed trials whose retry was never queued."""
        unqueued = [
            (m, g)
            for m in range(self.size)
            for g in range(1, self.generations)
            if self.status(m, g) == MISSING and self.status(m, g - 1) in (DONE, BROKEN)
        ]
        unretried = [
            attempts[-1]
            for key, attempts in self.by_key.items()
            if self.status(*key) == PENDING and self.canonical(*key) is None
        ]
        return unqueued, unretried
