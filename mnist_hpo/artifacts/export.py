"""Retrain a study's best trial on the full training set, test it, and export it; load exports back.

An export is a folder ``storage/exports/<study>/trial-<N>/`` holding
``model.safetensors`` (the weights; their config is in the file's metadata too)
and ``export.json`` (study, its UUID and storage, trial, parameters, architecture, metrics,
curves, seed, dataset checksum, package versions, the whole study config and the weights'
sha256). ``<study>`` is the study's home folder (:mod:`.folders`): its name, unless another
study of that name already exports there. Nothing is unpickled on load: weights come from
safetensors and are checked against the recorded sha256 first.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
from safetensors.torch import save_file

from ..core.names import file_stem, slug
from ..core.schema import StudyConfig
from ..data.datasets import Dataset, load_data
from ..data.integrity import write_text_atomically
from ..errors import NO_SPACE, UserError, write_error, write_failed, writing
from ..hpo.objective import objective_names
from ..hpo.pbt import is_segment, member_export
from ..hpo.queries import best_trial, chosen_trial, is_multi_objective, study_config
from ..storages import attach_files, exports_dir, is_journal_url, journal_path, load_existing_study, open_storage
from ..tasks import FitResult, Task, make_task, registry, task_class
from .export_figures import write_export_figures
from .export_meta import WEIGHTS, run_record
from .folders import (
    EXPORT_FORMAT,
    LATEST,
    META,
    claim_home,
    existing_export,
    home_of,
    homes_by_name,
    latest_in,
    release,
    study_record,
)
from .retrain import retrain, say_outcome, trial_seed

_UMASK = os.umask(0o022)  # read once, at import (reading it means setting it; see data.integrity)
os.umask(_UMASK)


def study_provider(study: optuna.Study) -> dict | None:
    """What a stored study recorded of its plugin family's provider (None: a built-in family)."""
    return registry.recorded_in_identity(study.user_attrs.get("identity") or {})


def export_trial(
    study: optuna.Study,
    trial: optuna.trial.FrozenTrial,
    *,
    data: Dataset | None = None,
    out_root: Path | None = None,
    progress: bool = True,
    cfg: StudyConfig | None = None,
) -> Path:
    """Retrain ``trial``'s configuration on the full training set, test it, and write the export."""
    cfg = cfg or study_config(study)
    # A plugin family: installed (or trusted), and a version other than the study's said so.
    _, warning = registry.check_recorded(cfg.model, study_provider(study), f"study {study.study_name}")
    if warning:
        print(f"mnist-hpo: warning: {warning}", file=sys.stderr)
    data = data if data is not None else load_data(cfg)
    # Before the retrain: an unwritable folder should cost seconds, not the retrain.
    final, claimed = (out_root or exports_dir()) / slug(study.study_name) / f"trial-{trial.number}", False
    try:
        home, claimed = claim_home(study, out_root)
        final = home / final.name
        # Everything is written here first, then renamed into place whole: a full disk, Ctrl-C or a kill
        # part-way leaves no half-made export where a later run (or `verify`) would take it as made.
        folder = Path(tempfile.mkdtemp(dir=home, prefix=f".{final.name}.", suffix=".tmp"))
    except OSError as e:
        if claimed:
            release(final.parent)
        code = write_error(e)
        if code in NO_SPACE:  # the errno of e, or the one its message names (e.errno may be None)
            raise write_failed(final, "the export", code) from None
        raise UserError(
            f"cannot create the export folder {final} ({e.strerror}); set MNIST_HPO_STORAGE_DIR to a writable folder"
        ) from None
    try:
        return _write_export(study, trial, cfg, data, folder, final, progress)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        if claimed:  # the study's first export, interrupted: no empty home is left behind
            release(home)
        raise


@dataclass
class _Trained:
    """The model an export holds: the trial it is of, how it was trained (``retrain`` or ``pbt``), its test metrics."""

    trial: optuna.trial.FrozenTrial
    result: FitResult
    history: dict[str, Any]
    trained: dict[str, Any]
    seed: int
    test_metrics: dict[str, Any] | None = None
    extra: list[Path] = field(default_factory=list)


def _train(
    study: optuna.Study,
    trial: optuna.trial.FrozenTrial,
    cfg: StudyConfig,
    data: Dataset,
    task: Task,
    folder: Path,
    progress: bool,
) -> _Trained:
    """A population-based member's own weights and lineage (no retrain, docs/pbt.md), or ``trial`` retrained on
    all training images (off the plateau where it can be: :mod:`.retrain`)."""
    if is_segment(trial):
        result, lineage, extra = member_export(study, trial, task, folder, cfg)
        return _Trained(trial, result, result.history, {"pbt": lineage}, trial_seed(trial, cfg), extra=extra)
    best = not is_multi_objective(study) and best_trial(study).number == trial.number
    done = retrain(study, trial, cfg, data, task, progress=progress, best=best)
    say_outcome(study, trial, done)
    return _Trained(done.trial, done.result, done.history, {"retrain": done.record}, done.seed, done.test_metrics)


def _write_export(
    study: optuna.Study,
    trial: optuna.trial.FrozenTrial,
    cfg: StudyConfig,
    data: Dataset,
    folder: Path,
    final: Path,
    progress: bool,
) -> Path:
    """Retrain, test and write the export into the temporary ``folder``, then rename it to ``final``
    (``trial-<M>`` beside it when the retrain fell back to trial M: :mod:`.retrain`)."""
    task = make_task(cfg, data)
    t = _train(study, trial, cfg, data, task, folder, progress)
    trial, final = t.trial, final.parent / f"trial-{t.trial.number}"
    # Test where the model trained (the data is resident there), then bring it to the CPU to save.
    metrics = {**dict(zip(objective_names(cfg, task), trial.values)), **(t.test_metrics or task.test(t.result.model))}
    model = t.result.model.cpu()
    model_info = {"type": cfg.model, "arch": task.arch(trial.params), "options": cfg.model_options}
    with writing(final, "the export's weights"):
        tensors = {k: v.contiguous() for k, v in model.state_dict().items()}
        save_file(tensors, folder / WEIGHTS, metadata={"model": json.dumps(model_info)})
    meta = {
        "format": EXPORT_FORMAT,
        "study": study.study_name,
        **study_record(study),
        "trial": trial.number,
        "params": trial.params,
        "model": model_info,
        "provider": registry.provider(cfg.model).record(),
        "metrics": metrics,
        **task.provenance(),
        "history": t.history,
        **t.trained,
        "seed": t.seed,
        **run_record(cfg, data, folder / WEIGHTS),
    }
    with writing(final, "the export's figures"):
        title = f"{study.study_name} trial {trial.number}"
        files, fig_info = write_export_figures(
            task, trial.params, t.seed, t.result, t.history, folder, title=title, retrained="retrain" in meta
        )
        meta.update(fig_info)
        meta["files"] = task.write_files(t.result.model, metrics, folder)
    files = [final / Path(f).name for f in [*files, *t.extra]] + [final / f for f in meta["files"]]
    with writing(final, "the export's export.json"):
        (folder / META).write_text(json.dumps(meta, indent=2) + "\n")
        _into_place(folder, final)
    # A finished trial cannot take new attributes, so the retrain's figures are attached to the study.
    attach_files(study, files, rename=lambda f: f"{file_stem(study.study_name)}-trial-{trial.number}-{f.name}")
    study.set_user_attr("latest_export", str(final))
    return final


def _into_place(folder: Path, final: Path) -> None:
    """Rename the finished ``folder`` to ``final`` whole (an export of the same trial made before is replaced
    only now), and point ``LATEST`` at it."""
    os.chmod(folder, 0o777 & ~_UMASK)  # mkdtemp makes it 0700
    if final.exists():
        old = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{final.name}.", suffix=".old"))
        os.replace(final, old / final.name)
        os.replace(folder, final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(folder, final)
    write_text_atomically(final.parent / LATEST, final.name + "\n")


def export_or_reuse(
    study: optuna.Study,
    trial: optuna.trial.FrozenTrial,
    *,
    redo: bool = False,
    **options,
) -> tuple[Path, bool]:
    """``trial``'s existing export (checked, see :func:`.folders.existing_export`) or a new one (:func:`export_trial`,
    given ``options``); and whether it was the existing one. ``redo=True`` always exports anew."""
    if not redo:
        root = options.get("out_root")
        folder = existing_export(study, trial.number, root)
        if folder is not None:
            return folder, True
    return export_trial(study, trial, **options), False


def export_best(
    study_name: str,
    *,
    storage_url: str | None = None,
    data: Dataset | None = None,
    out_root: Path | None = None,
    progress: bool = True,
    trial: int | None = None,
    redo: bool = False,
) -> Path:
    """Public API: retrain, test and export the best complete trial of ``study_name``; returns the folder.

    The export is ``storage/exports/<study>/trial-<N>/`` (under ``out_root`` if given; see
    :func:`~.loading.load_export` for what it holds). ``trial=N`` exports trial N instead (it must have
    completed), e.g. one of a multi-objective study's Pareto front, which has no single best trial.
    If that trial is already exported, its folder is returned as it is, after its weights are
    checked against their recorded sha256 (a mismatch is a :class:`UserError`); ``redo=True``
    retrains and exports it again. ``data`` replaces the study's dataset (tests pass a small one).

    After ``run_study`` of the study ``ae-quick`` (see :mod:`mnist_hpo`)::

        >>> folder = export_best("ae-quick", progress=False)
        >>> folder.parent.name, folder.name.startswith("trial-")
        ('ae-quick', True)
        >>> export_best("ae-quick", progress=False) == folder   # no second retrain
        True
    """
    study = load_existing_study(study_name, storage_url)
    chosen = best_trial(study) if trial is None else chosen_trial(study, trial)
    folder, _ = export_or_reuse(study, chosen, redo=redo, data=data, out_root=out_root, progress=progress)
    return folder


def export_study_trial(study_name: str, number: int, **options) -> Path:
    """Public API: export trial ``number`` of ``study_name``, as :func:`export_best` with ``trial=number``.

    ``options`` are :func:`export_best`'s (``storage_url``, ``data``, ``out_root``, ``progress``, ``redo``).

        >>> export_study_trial("ae-quick", 1, progress=False).name
        'trial-1'
    """
    return export_best(study_name, trial=number, **options)


def latest_export(study_name: str, out_root: Path | None = None, *, study: optuna.Study | None = None) -> Path:
    """Public API: the folder of the study's most recent export; a :class:`UserError` when there is none.

    Every export writes its folder's name to ``storage/exports/<study>/LATEST`` (``out_root``
    replaces ``storage/exports``); ``mnist-hpo explore`` and the classifier's encoder use it.
    ``study`` (a loaded study) finds that study's own exports; by name alone, several studies of
    that name with exports here (from several storages) are a :class:`UserError` naming their folders.

        >>> latest_export("ae-quick").parent.name
        'ae-quick'
        >>> latest_export("no-such-study")
        Traceback (most recent call last):
        mnist_hpo.errors.UserError: no export of study 'no-such-study' under storage/exports; run 'mnist-hpo export no-such-study' first
    """
    root = out_root or exports_dir()
    if study is not None:
        return latest_in(home_of(study, root), study_name, root)
    homes = homes_by_name(study_name, root)
    if len(homes) > 1:
        raise UserError(
            f"several studies named {study_name!r} have exports under {root} "
            f"({', '.join(h.name for h in homes)}): name the export folder itself, e.g. {homes[0]}/trial-N"
        )
    return latest_in(homes[0] if homes else None, study_name, root)


def resolve_config(cfg: StudyConfig, storage_url: str | None = None) -> StudyConfig:
    """Public API: ``cfg`` with its model options that refer to exports pinned (see ``Task.resolve``).

    E.g. the classifier's encoder, by default the latest export of study ``ae``: of the study
    ``ae`` in the same storage when it is there, else of the one study of that name with exports
    here. A study that already exists under ``cfg.name`` keeps what it was started with.
    """
    stored, storage = {}, None
    # Opening a journal creates its file: a study that was never started is not looked up.
    if not (storage_url and is_journal_url(storage_url) and not journal_path(storage_url).exists()):
        storage = open_storage(storage_url)
        with contextlib.suppress(KeyError):
            stored = optuna.load_study(study_name=cfg.name, storage=storage).user_attrs
    pinned = (stored.get("config") or {}).get("model_options")

    def latest(name: str) -> Path:
        try:
            study = optuna.load_study(study_name=name, storage=storage) if storage is not None else None
        except KeyError:  # not in this storage (the record keeps each study in a journal of its own)
            study = None
        return latest_export(name, study=study)

    return task_class(cfg.model).resolve(cfg, latest_export=latest, pinned=pinned)
