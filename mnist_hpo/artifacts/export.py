"""Retrain a study's best trial on the full training set, test it, and export it; load exports back.

An export is a folder ``storage/exports/<study>/trial-<N>/`` holding
``model.safetensors`` (the weights; their config is in the file's metadata too)
and ``export.json`` (study, trial, parameters, architecture, metrics, curves, seed,
dataset checksum, package versions, the whole study config and the weights' sha256).
Nothing is unpickled on load: weights come from safetensors and are checked
against the recorded sha256 first.
"""

from __future__ import annotations

import json
import platform
import sys
import time
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

import optuna
from safetensors.torch import load_file, save_file
from torch import nn
from tqdm.auto import tqdm

from ..core.schema import StudyConfig
from ..data.datasets import Dataset
from ..data.integrity import check_sha256, sha256_file, write_text_atomically
from ..errors import UserError
from .export_figures import write_export_figures
from ..core.hardware import hardware
from ..hpo.objective import objective_names
from ..hpo.journal import is_journal_url, journal_path
from ..hpo.storage import (  # noqa: F401  (study_config: importable from here as before)
    attach_files, best_trial, chosen_trial, exports_dir, load_existing_study, open_storage, study_config,
)
from ..measures.mean_image import retrain_check
from ..data.datasets import load_data
from ..tasks import make_task, registry, task_class

EXPORT_FORMAT = 1
WEIGHTS = "model.safetensors"
META = "export.json"
LATEST = "LATEST"


def package_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in ("mnist-hpo", "torch", "optuna", "numpy", "safetensors"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "unknown"
    return out


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
    folder = (out_root or exports_dir()) / study.study_name / f"trial-{trial.number}"
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UserError(f"cannot create the export folder {folder} ({e.strerror}); "
                        "set MNIST_HPO_STORAGE_DIR to a writable folder") from None
    task = make_task(cfg, data)
    seed = int(trial.user_attrs.get("seed", cfg.seed))
    bar = tqdm(total=cfg.epochs, desc=f"retrain trial {trial.number}", unit="epoch", disable=not progress)

    def on_epoch(epoch: int, train_loss: float, test_loss: float) -> None:
        bar.update(1)
        bar.set_postfix(train=f"{train_loss:.4f}", test=f"{test_loss:.4f}")

    start = time.perf_counter()
    try:
        result = task.fit(trial.params, seed=seed, epochs=cfg.epochs, full=True, on_epoch=on_epoch)
    finally:
        bar.close()
    seconds = time.perf_counter() - start
    # Test where the model trained (the data is resident there), then bring it to the CPU to save.
    metrics = {**dict(zip(objective_names(cfg, task), trial.values)), **task.test(result.model)}
    model = result.model.cpu()
    # With full=True the per-epoch evaluation was on the test set: name it so (val_loss -> test_loss,
    # the classifier's val_accuracy -> test_accuracy).
    history = {(f"test_{k[4:]}" if k.startswith("val_") else k): v for k, v in result.history.items()}

    arch = task.arch(trial.params)
    model_info = {"type": cfg.model, "arch": arch, "options": cfg.model_options}
    save_file(
        {k: v.contiguous() for k, v in model.state_dict().items()},
        folder / WEIGHTS,
        metadata={"model": json.dumps(model_info)},
    )
    meta = {
        "format": EXPORT_FORMAT,
        "study": study.study_name,
        "trial": trial.number,
        "params": trial.params,
        "model": model_info,
        "provider": registry.provider(cfg.model).record(),  # the task class's import path, distribution, version
        "metrics": metrics,
        **task.provenance(),
        "history": history,
        "retrain": {"epochs": cfg.epochs, "train_images": len(data.subset(cfg.train_subset).train_images),
                    "seconds": round(seconds, 2), "device": str(task.device)},
        "seed": seed,
        "dataset": {"name": data.name, "checksum": data.checksum},
        "versions": package_versions(),
        "config": json.loads(json.dumps(cfg.as_dict(), default=str)),
        "weights": {"file": WEIGHTS, "sha256": sha256_file(folder / WEIGHTS)},
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    meta["retrain"]["hardware"] = hardware(str(task.device))
    meta["retrain"].update(retrain_check(cfg.model, data.subset(cfg.train_subset, cfg.test_subset), metrics))
    if meta["retrain"].get("on_plateau"):
        print(f"mnist-hpo: warning: the retrain of {study.study_name} trial {trial.number} ended on the mean-image "
              f"plateau (test MSE {metrics['test_mse']:.4f}; the mean image's is "
              f"{meta['retrain']['mean_image_test_mse']:.4f}; the trial reached {trial.values[0]:.4f} on its split): "
              f"the export is kept and marked so; `mnist-hpo show {study.study_name}` counts such runs by L2, "
              f"`mnist-hpo export {study.study_name} --trial N` exports another trial", file=sys.stderr)
    files, fig_info = write_export_figures(task, trial.params, seed, result, history, folder,
                                           title=f"{study.study_name} trial {trial.number}")
    meta.update(fig_info)
    meta["files"] = task.write_files(result.model, metrics, folder)
    files += [folder / f for f in meta["files"]]
    # export.json last, whole or not at all: a folder without it is an export that did not finish
    write_text_atomically(folder / META, json.dumps(meta, indent=2) + "\n")
    write_text_atomically(folder.parent / LATEST, folder.name + "\n")
    # A finished trial cannot take new attributes, so the retrain's figures are attached to the study.
    attach_files(study, files, rename=lambda f: f"{study.study_name}-trial-{trial.number}-{f.name}")
    study.set_user_attr("latest_export", str(folder))
    return folder


def export_best(
    study_name: str,
    *,
    storage_url: str | None = None,
    data: Dataset | None = None,
    out_root: Path | None = None,
    progress: bool = True,
    trial: int | None = None,
) -> Path:
    """Public API: retrain, test and export the best complete trial of ``study_name``; returns the folder.

    ``trial=N`` exports trial N instead (it must have completed), e.g. one of a
    multi-objective study's Pareto front, which has no single best trial.
    """
    study = load_existing_study(study_name, storage_url)
    chosen = best_trial(study) if trial is None else chosen_trial(study, trial)
    return export_trial(study, chosen, data=data, out_root=out_root, progress=progress)


def export_study_trial(study_name: str, number: int, **options) -> Path:
    """Public API: retrain, test and export trial ``number`` of ``study_name`` (see :func:`export_best`)."""
    return export_best(study_name, trial=number, **options)


def latest_export(study_name: str, out_root: Path | None = None) -> Path:
    """The most recent export of a study; a clear error when there is none."""
    root = (out_root or exports_dir()) / study_name
    pointer = root / LATEST
    if not pointer.exists():
        raise UserError(f"no export of study {study_name!r} under {root.parent}; run 'mnist-hpo export {study_name}' first")
    return root / pointer.read_text().strip()


def resolve_config(cfg: StudyConfig, storage_url: str | None = None) -> StudyConfig:
    """Public API: ``cfg`` with its model options that refer to exports pinned (see ``Task.resolve``).

    E.g. the classifier's encoder, by default the latest export of study ``ae``. A study
    that already exists under ``cfg.name`` keeps what it was started with.
    """
    stored = {}
    # Opening a journal creates its file: a study that was never started is not looked up.
    if not (storage_url and is_journal_url(storage_url) and not journal_path(storage_url).exists()):
        try:
            stored = optuna.load_study(study_name=cfg.name, storage=open_storage(storage_url)).user_attrs
        except KeyError:
            pass
    pinned = (stored.get("config") or {}).get("model_options")
    return task_class(cfg.model).resolve(cfg, latest_export=latest_export, pinned=pinned)


def read_export_meta(path: str | Path) -> dict:
    folder = Path(path)
    if folder.is_file():
        folder = folder.parent
    try:
        meta = json.loads((folder / META).read_text())
    except FileNotFoundError:
        raise UserError(f"{folder} is not an export (no {META}); pass a folder under storage/exports/") from None
    except ValueError as e:
        raise UserError(f"{folder / META} is corrupt ({e}); export the study again") from None
    if meta.get("format") != EXPORT_FORMAT:
        raise UserError(f"{folder} has export format {meta.get('format')!r}, this version reads {EXPORT_FORMAT}")
    meta["_folder"] = str(folder)
    return meta


def exported_provider(meta: dict) -> dict | None:
    """What an export recorded of its plugin family's provider (None: a built-in, or exported before it was)."""
    provider = meta.get("provider")
    if not isinstance(provider, dict) or registry.is_builtin(str((meta.get("model") or {}).get("type"))):
        return None
    return provider


def load_export(path: str | Path) -> tuple[nn.Module, dict]:
    """Public API: the exported model as an ``nn.Module`` (eval mode, CPU) and its metadata.

    The weights' sha256 is checked against the one recorded at export time first.
    """
    meta = read_export_meta(path)
    folder = Path(meta["_folder"])
    weights = folder / meta["weights"]["file"]
    check_sha256(weights, meta["weights"]["sha256"], where="the sha256 recorded at export time",
                 hint="it was changed — export again", missing_hint="export the study again")
    info = meta["model"]
    try:
        task = registry.resolve(str(info["type"]), recorded=exported_provider(meta))
        model = task.build(info["arch"])
    except KeyError as e:
        raise UserError(f"{folder / META} records no model {e}; export the study again") from None
    except UserError as e:
        raise UserError(f"{folder}: {e}") from None
    try:
        model.load_state_dict(load_file(weights))
    except (RuntimeError, OSError) as e:
        raise UserError(f"{weights} does not fit a {info['type']} {info['arch']} ({str(e).splitlines()[0]})") from None
    return model.eval(), meta
