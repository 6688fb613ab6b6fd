"""A study's identity (the settings its trials depend on), checked whenever a study is opened again.

A resume may change only :data:`MAY_CHANGE`; anything else would make old and new trials
incomparable, so :func:`open_study` refuses it with one line saying what differs.

Apart from its settings, each study has a UUID of its own (:func:`mnist_hpo.storages.ensure_uuid`),
given to it here when it is created.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import optuna

from ..core.names import check_name
from ..core.schema import StudyConfig
from ..core.space import Resolved, resolve_space
from ..data.datasets import load_data
from ..errors import UserError
from ..storages import UUID_ATTR, ensure_uuid
from ..tasks import registry, task_class
from .objective import objective_directions, objective_names, set_metric_names
from .samplers import make_pruner, make_sampler


def _jsonable_space(resolved: Resolved) -> dict[str, Any]:
    return {
        k: (v if isinstance(v, list) else {"range": v.kind, "low": v.low, "high": v.high, "log": v.log})
        for k, v in resolved.items()
    }


# What a resume or a joining worker may change: none of it changes what a trial's value means.
# Everything else that does is in the study's identity (study_identity) and must match.
MAY_CHANGE = (
    "trials",
    "device",
    "batch_trials",
    "retrain",
    "trial_figures",
    "workers",
    "max_trials",
    "progress (--quiet)",
)
# Settings that studies record only since they were added: a study made before lacks them, and is
# still opened (its finished trials read, its export checked) but never given new trials.
LATER = ("judge.sha256",)
_STUDY_SETTINGS = ("dataset", "idx_dir", "train_subset", "test_subset", "batch_size", "val_fraction", "seed", "epochs")


def study_identity(cfg: StudyConfig, resolved: Resolved, dataset_checksum: str) -> dict[str, Any]:
    """Everything that decides what a trial's value means, as ``setting -> value`` (JSON-able).

    Stored as the study's user attribute ``identity`` when it is created and compared on every
    resume and every worker join (:func:`check_identity`). The setting names are the study
    file's keys (``study.train_subset``, ``sampler.n_startup_trials``, ``model.noise_std``,
    ``space.lr`` with its resolved list), plus ``dataset.sha256`` (the data's content checksum),
    for a plugin family ``plugin.path``, ``plugin.distribution`` and ``plugin.version``,
    and what the task adds (the GAN's ``judge.sha256``, the classifier behind its distance).
    """
    config = json.loads(json.dumps(cfg.as_dict(), default=str))
    return {
        **_identity(config, _jsonable_space(resolved), dataset_checksum),
        **registry.identity(cfg.model),  # a plugin's import path, distribution, version (none for a built-in)
        **task_class(cfg.model).identity_extras(cfg, dataset_checksum),
    }


def _identity(config: dict[str, Any], space: dict[str, Any] | None, dataset_checksum: str | None) -> dict[str, Any]:
    """The identity of a config as stored (``StudyConfig.as_dict``); what the config lacks is left out."""
    out: dict[str, Any] = {}
    if "model" in config:
        out["model.type"] = config["model"]
    for key in _STUDY_SETTINGS:
        if key in config:
            out[f"study.{key}"] = config[key]
    if len(config.get("objectives") or ()) > 1:  # only then: single-objective studies keep their identity
        out["study.objectives"] = list(config["objectives"])
    if dataset_checksum is not None:
        out["dataset.sha256"] = dataset_checksum
    for key, value in (config.get("model_options") or {}).items():
        out[f"model.{key}"] = value
    for key, value in (config.get("pbt") or {}).items():  # none for a study of independent trials
        out[f"pbt.{key}"] = value
    for part in ("sampler", "pruner"):
        if part not in config:
            continue
        out[f"{part}.type"] = config[part].get("type")
        options = dict(config[part].get("options") or {})
        # The values that apply when the file leaves them out (see make_sampler, make_pruner).
        if part == "sampler" and "seed" in config:
            options.setdefault("seed", config["seed"])
        if part == "pruner" and out["pruner.type"] == "hyperband" and "epochs" in config:
            options.setdefault("max_resource", config["epochs"])
        for key, value in options.items():
            out[f"{part}.{key}"] = value
    for name, values in (space or {}).items():
        out[f"space.{name}"] = values
    return out


def stored_identity(attrs: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """(the identity a study was created with, whether it is complete).

    Studies made before the ``identity`` attribute existed have their creation config and
    resolved space: their identity is rebuilt from those (without the dataset checksum),
    and only what they recorded is compared.
    """
    if "identity" in attrs:
        return attrs["identity"], True
    identity = _identity(attrs.get("config") or {}, attrs.get("space"), None)
    for attr, key in (("model", "model.type"), ("epochs", "study.epochs"), ("dataset", "study.dataset")):
        if attr in attrs:
            identity.setdefault(key, attrs[attr])
    return identity, False


def identity_differences(stored: dict[str, Any], now: dict[str, Any], *, complete: bool = True) -> list[str]:
    """``key: stored X, now Y`` for every setting that differs (only the stored keys unless ``complete``)."""
    keys = sorted(set(stored) | set(now)) if complete else sorted(stored)

    def shown(d: dict[str, Any], key: str) -> str:
        return json.dumps(d[key]) if key in d else "unset"

    return [
        f"{key}: stored {shown(stored, key)}, now {shown(now, key)}"
        for key in keys
        if stored.get(key, ...) != now.get(key, ...) and (key in stored or key not in LATER)
    ]


def refuse_new_trials_if_unrecorded(cfg: StudyConfig, study: optuna.Study) -> None:
    """Before trials are added: refuse a study made before a setting its trials depend on was recorded.

    Its trials may have been scored under another value (another judge), and new ones would not
    be comparable with them; opening it to read or export is fine.
    """
    stored, _ = stored_identity(study.user_attrs)
    extras = task_class(cfg.model).identity_extras(
        cfg, study.user_attrs.get("identity", {}).get("dataset.sha256") or load_data(cfg).checksum
    )
    missing = [key for key in LATER if key in extras and key not in stored]
    if missing:
        raise UserError(
            f"study {cfg.name!r} was created before {', '.join(missing)} was recorded: its trials may have been "
            f"scored under another one than this machine's ({', '.join(f'{k} {extras[k][:16]}…' for k in missing)}), "
            f"so new trials would not be comparable; its finished trials and export stay readable; "
            f"use --study-name NEW to start a separate study"
        )


def check_identity(cfg: StudyConfig, attrs: dict[str, Any], identity: dict[str, Any]) -> None:
    """Refuse to add trials to a study created with other settings; one line naming each difference."""
    stored, complete = stored_identity(attrs)
    differences = identity_differences(stored, json.loads(json.dumps(identity)), complete=complete)
    if differences:
        raise UserError(
            f"study {cfg.name!r} was created with other settings ({'; '.join(differences)}); its trials would "
            f"not be comparable with new ones, and only {', '.join(MAY_CHANGE)} may change; use --study-name NEW "
            f"to start a separate study, or 'mnist-hpo delete {cfg.name} --yes' to discard this one"
        )


def open_study(
    cfg: StudyConfig, storage: optuna.storages.BaseStorage, *, dataset_checksum: str | None = None
) -> optuna.Study:
    """Create the study, or load it and check that it was made with the same settings (nothing stored if not).

    ``dataset_checksum`` is the content checksum of ``cfg``'s dataset; it is loaded when not given.
    """
    resolved = resolve_space(cfg.space, cfg.seed)
    if dataset_checksum is None:
        dataset_checksum = load_data(cfg).checksum
    identity = study_identity(cfg, resolved, dataset_checksum)
    try:
        existing = optuna.load_study(study_name=cfg.name, storage=storage)
    except KeyError:
        existing = None
    sampler, pruner = make_sampler(cfg, resolved), make_pruner(cfg)
    if existing is not None:  # load, not create: create_study appends a no-op line to a journal every time
        check_identity(cfg, existing.user_attrs, identity)
        ensure_uuid(existing)  # a study made before studies had one
        return optuna.load_study(study_name=cfg.name, storage=storage, sampler=sampler, pruner=pruner)
    check_name(cfg.name)  # the name becomes folder and file names (a config made in Python is not checked)
    study = optuna.create_study(
        storage=storage,
        study_name=cfg.name,
        directions=objective_directions(cfg, task_class(cfg.model)),
        sampler=sampler,
        pruner=pruner,
        load_if_exists=True,
    )
    study.set_user_attr(UUID_ATTR, str(uuid.uuid4()))
    study.set_user_attr("identity", identity)
    study.set_user_attr("config", json.loads(json.dumps(cfg.as_dict(), default=str)))
    study.set_user_attr("space", _jsonable_space(resolved))
    study.set_user_attr("seed", cfg.seed)
    study.set_user_attr("epochs", cfg.epochs)
    study.set_user_attr("model", cfg.model)
    study.set_user_attr("dataset", cfg.dataset)
    set_metric_names(study, objective_names(cfg, task_class(cfg.model)))  # the dashboard's names for the values
    # Another process may have created the same study at the same instant with other settings:
    # the identity stored last holds, and whoever wrote another one is refused here.
    check_identity(cfg, optuna.load_study(study_name=cfg.name, storage=storage).user_attrs, identity)
    return study
