"""A worker's loop over a population-based study: claim the next segment that may run, plan it, train it,
queue the next.

Any number of workers (processes, machines) run this on one storage; they share nothing else.
Each decision is made from the stored trials (:class:`~._records.Population`) and taken with the
one step storage makes atomic, claiming a queued trial, so two workers never run one segment:

* a worker runs a queued segment once the generation before it has ended, the lowest
  generation first; failing that, it starts one of generation 0's members while any is missing;
* it plans the segment (:func:`~._explore.plan`: exploit and explore), loads its start checkpoint
  (checked against its sha256), trains it, attaches the checkpoint it ended with, and queues the
  member's next segment *before* telling its result, so no crash between the two loses it;
* a worker killed mid-segment loses only that segment: the study's stale-trial check (heartbeats,
  or the journal's owner check; :mod:`..supervision`) fails it and queues it again with the same
  parameters, seed and start checkpoint, which the next free worker runs.

With nothing to run and nothing running, a worker looks for what a worker that died for good left
undone (a next segment never queued, a retry never queued) and queues it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from ...core.pbt import generations, pbt_settings, segment_epochs
from ...core.schema import StudyConfig
from ...core.seeds import derive_seed
from ...core.space import Resolved, resolve_space
from ...errors import UserError
from ...storages import claim_trial, heartbeat_interval, new_trial, retry, set_params
from ...tasks import Task
from ...train.loops import NonFiniteLoss
from ..suggestions import distributions, suggest
from ..supervision import fail_stale_trials
from ..trials import claim_seed, record_conditions, store_curves, store_history
from ._checkpoints import load_checkpoint, save_checkpoint, train_segment
from ._explore import plan
from ._records import BROKEN, DISCARDED, END, PBT, Population

RunTrial = Callable[[Callable[[optuna.Trial], float], optuna.Trial], "FrozenTrial | None"]


@dataclass(frozen=True)
class Segment:
    member: int
    generation: int
    params: dict[str, Any]
    seed: int
    start: dict[str, Any] | None  # the checkpoint it starts from ({"artifact", "sha256"}); None for generation 0
    epochs: tuple[int, int]  # range(start, stop), 0-based, of the member's epochs


def segment_seed(study_seed: int, member: int, generation: int) -> int:
    return derive_seed(study_seed, "pbt", member, generation)


def run_population(
    study: optuna.Study,
    cfg: StudyConfig,
    task: Task,
    *,
    run_trial: RunTrial,
    after_trial: Callable[[FrozenTrial], object],
    stopped: Callable[[], bool],
    max_trials: int | None = None,
) -> None:
    """Run segments of the study until its population has trained all its epochs (or ``max_trials`` here).

    ``run_trial(objective, trial)`` runs a claimed trial under a heartbeat and tells its result
    (:meth:`mnist_hpo.hpo.trials.TrialLoop.run_trial`, as for every other trial); ``after_trial(frozen)`` sees each
    finished one; ``stopped()`` ends the loop.
    """
    resolved = resolve_space(cfg.space, cfg.seed)
    objective = _objective(study, cfg, task, resolved)
    if not study.get_trials(deepcopy=False):
        queue_population(study, cfg)
    ran = 0
    while not stopped() and not (max_trials and ran >= max_trials):
        fail_stale_trials(study)
        population = Population(cfg, study.get_trials(deepcopy=False))
        if population.finished:
            return
        _refuse_dead_generation(study, population)
        trial = _claim_next(study, cfg, population)
        if trial is None:
            if population.running():
                time.sleep(min(heartbeat_interval(), 2))  # segments running elsewhere: wait for them
            elif not _requeue_lost(study, cfg, population):
                raise UserError(
                    f"study {study.study_name}: its population stands still (no segment queued, none "
                    "running, none lost); 'mnist-hpo show " + study.study_name + "' lists its trials"
                )
            continue
        finished = run_trial(objective, trial)
        if finished is not None:
            ran += 1
            after_trial(finished)


def _refuse_dead_generation(study: optuna.Study, population: Population) -> None:
    for g in range(population.generations):
        if population.ended(g) and all(population.status(m, g) == BROKEN for m in range(population.size)):
            errors = [
                t.user_attrs.get("error") or t.user_attrs.get("fail_reason")
                for t in population.trials
                if (key := population.key(t)) and key[1] == g
            ]
            last = next((e for e in reversed(errors) if e), "no error recorded")
            raise UserError(
                f"study {study.study_name}: every member's segment of generation {g} failed or diverged "
                f"(last: {last}), so no checkpoint is left to go on from; fix the cause and start a "
                "new study (--study-name NEW)"
            )


def _claim_next(study: optuna.Study, cfg: StudyConfig, population: Population) -> optuna.Trial | None:
    """The next trial this worker runs (claimed), or None when nothing may run now."""
    queued = [
        t
        for t in population.trials
        if t.state == TrialState.WAITING and (population.ready(t) or population.key(t) is None)
    ]
    queued.sort(key=lambda t: ((population.key(t) or (0, -1))[1], t.number))
    for frozen in queued:
        trial = claim_trial(study, frozen)
        if trial is not None and _runnable(study, cfg, trial):
            return trial
    if population.missing_members():
        trial = new_trial(study)
        if _runnable(study, cfg, trial):
            return trial
    return None


def _runnable(study: optuna.Study, cfg: StudyConfig, trial: optuna.Trial) -> bool:
    """Whether a claimed trial is a segment to run; a surplus or duplicate one is discarded (FAIL, unrun)."""
    population = Population(cfg, study.get_trials(deepcopy=False))
    frozen = next(t for t in population.trials if t.number == trial.number)
    if population.key(frozen) is None:
        why = f"surplus: generation 0 already has its {population.size} members"
    elif (first := population.duplicate_of(frozen)) is not None:
        why = f"a duplicate of trial {first.number} (the same member and generation, queued by two workers at once)"
    else:
        return True
    trial.set_user_attr(DISCARDED, why)
    study.tell(trial, state=TrialState.FAIL)
    return False


def _start(study: optuna.Study, cfg: StudyConfig, trial: optuna.Trial, resolved: Resolved) -> Segment:
    """The claimed trial's segment: planned now and recorded on the trial, or, for a retry, as recorded."""
    population = Population(cfg, study.get_trials(deepcopy=False))
    key = population.key(next(t for t in population.trials if t.number == trial.number))
    assert key is not None  # a claimed trial that _runnable let through is a segment
    member, generation = key
    record = trial.user_attrs.get(PBT, {})
    if "epochs" in record:  # a retry: the crashed attempt's parameters, seed and start checkpoint
        return Segment(
            member,
            generation,
            dict(trial.params),
            int(trial.user_attrs["seed"]),
            record["start"],
            tuple(record["epochs"]),
        )
    first, stop = segment_epochs(cfg, generation)
    record = {
        "member": member,
        "generation": generation,
        "epochs": [first, stop],
        "final": generation == population.generations - 1,
        "parent": None,
        "parent_member": None,
        "exploited": False,
        "explored": {},
        "start": None,
    }
    if generation == 0:
        params = suggest(trial, resolved)  # the study's sampler draws the initial population
    else:
        p = plan(
            population,
            pbt_settings(cfg),
            resolved,
            member=member,
            generation=generation,
            study_seed=cfg.seed,
            maximize=study.direction == optuna.study.StudyDirection.MAXIMIZE,
        )
        params = p.params
        set_params(trial, params, distributions(resolved))
        parent_key = population.key(p.parent)
        assert parent_key is not None  # a planned parent is a canonical segment
        record.update(
            parent=p.parent.number,
            parent_member=parent_key[0],
            exploited=p.exploited,
            explored=p.explored,
            start=p.parent.user_attrs[END],
        )
    seed = claim_seed(trial, segment_seed(cfg.seed, member, generation))
    trial.set_user_attr(PBT, record)
    return Segment(member, generation, params, seed, record["start"], (first, stop))


def _objective(
    study: optuna.Study, cfg: StudyConfig, task: Task, resolved: Resolved
) -> Callable[[optuna.Trial], float]:
    def objective(trial: optuna.Trial) -> float:
        s = _start(study, cfg, trial, resolved)
        where = f"trial {trial.number} (member {s.member}, generation {s.generation})"
        record_conditions(trial, task)
        curve: list[float] = []

        def on_epoch(epoch: int, train_loss: float, value: float) -> None:
            curve.append(train_loss)
            trial.report(value, s.epochs[0] + epoch)

        try:
            start = load_checkpoint(s.start, where) if s.start else None
            result, end = train_segment(
                task, s.params, seed=s.seed, start=start, epochs=s.epochs[1] - s.epochs[0], on_epoch=on_epoch
            )
            if not math.isfinite(result.value):
                raise NonFiniteLoss(f"objective became {result.value}")
        except NonFiniteLoss as e:  # diverged: its member copies another at the next perturbation
            trial.set_user_attr("fail_reason", str(e))
            queue_next(study, cfg, s.member, s.generation)
            raise optuna.TrialPruned(str(e)) from None
        except Exception:  # broken (its batch stores the error): the member goes on all the same
            queue_next(study, cfg, s.member, s.generation)
            raise
        finally:
            store_curves(trial, train_loss=curve)
        store_history(trial, result.history, besides=("train_loss",))  # the curves an export of the member joins up
        name = f"member-{s.member}-generation-{s.generation}.safetensors"
        trial.set_user_attr(END, {**save_checkpoint(trial, end, name), "curves": list(result.history)})
        queue_next(study, cfg, s.member, s.generation)
        return float(result.value)

    return objective


def queue_next(study: optuna.Study, cfg: StudyConfig, member: int, generation: int) -> None:
    """Queue the member's segment after ``generation`` (once: an earlier attempt may have queued it)."""
    if generation + 1 >= generations(cfg):
        return
    if Population(cfg, study.get_trials(deepcopy=False)).by_key.get((member, generation + 1)):
        return
    _queue(study, cfg, member, generation + 1)


def queue_population(study: optuna.Study, cfg: StudyConfig) -> None:
    """Queue generation 0's missing members at once, so that members 0, 1, ... are the study's first trials.

    The sampler then draws the same population however many workers run the study (a random
    sampler's draws follow the trial numbers). ``study --workers N`` calls it before it starts its
    workers, and a worker that finds the study empty; two workers starting on a new study at the same
    instant both queue the members, and the copies are discarded unrun. Members still missing
    after that (a worker that died while queueing them) are made one by one (:func:`_claim_next`).
    """
    population = Population(cfg, study.get_trials(deepcopy=False))
    for member in range(len(population.originals), population.size):
        _queue(study, cfg, member, 0)


def _queue(study: optuna.Study, cfg: StudyConfig, member: int, generation: int) -> None:
    study.add_trial(
        optuna.create_trial(
            state=TrialState.WAITING,
            user_attrs={
                PBT: {"member": member, "generation": generation},
                "seed": segment_seed(cfg.seed, member, generation),
            },
        )
    )


def _requeue_lost(study: optuna.Study, cfg: StudyConfig, population: Population) -> bool:
    """Queue what workers that died for good left undone; whether there was any."""
    unqueued, unretried = population.lost()
    for member, generation in unqueued:
        queue_next(study, cfg, member, generation - 1)
    for trial in unretried:
        retry(study, trial)
    return bool(unqueued or unretried)
