"""The progress bar of a study: trials finished of the target, and the best value so far.

One worker updates it after each of its trials; the parent of several worker processes
(``--workers N``, ``make reproduce``) polls the shared storage for it, since its workers run quiet.
The bar says what Optuna's INFO lines would, so those are held back (:func:`optuna_info_held_back`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import optuna
from optuna.trial import TrialState
from tqdm.auto import tqdm

from .queries import finished_trials, pareto_front


def study_bar(name: str, trials: int, study: optuna.Study, *, progress: bool) -> tqdm:
    bar = tqdm(
        total=trials, initial=len(finished_trials(study)), desc=f"study {name}", unit="trial", disable=not progress
    )
    update_bar(bar, study)
    return bar


def update_bar(bar: tqdm, study: optuna.Study) -> None:
    if bar.disable:
        return
    bar.n = len(finished_trials(study))
    if len(study.directions) > 1:
        bar.set_postfix(pareto_front=len(pareto_front(study)), refresh=False)
    elif best := [
        t.value for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)) if t.value is not None
    ]:
        bar.set_postfix(best=f"{(max if study.direction.name == 'MAXIMIZE' else min)(best):.4g}", refresh=False)
    bar.refresh()


@contextlib.contextmanager
def optuna_info_held_back(held: bool = True) -> Iterator[None]:
    """While the block runs, Optuna logs warnings and errors only (not "A new study created …"); after it,
    Optuna's verbosity is what it was. ``held=False`` leaves it as it is. Optuna's verbosity is one setting
    per process: another thread running Optuna meanwhile is held back too.
    """
    before = optuna.logging.get_verbosity()
    if held:
        optuna.logging.set_verbosity(max(before, optuna.logging.WARNING))
    try:
        yield
    finally:
        optuna.logging.set_verbosity(before)
