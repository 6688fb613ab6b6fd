"""Export folders on disk: each study's home under ``storage/exports/``, and how an export is found in it.

A study's exports live in one folder, its *home*, claimed for it by ``study.json`` (the study's
name, UUID and storage; the UUID is the study's own, :func:`mnist_hpo.storages.ensure_uuid`).
The home is ``<name>/`` when the name is safe (:mod:`mnist_hpo.core.names`) and that folder is
free or already the study's; otherwise ``<slug>-<8 hex of the UUID>/``. So two studies of one
name in two storages export apart, and a name read from a storage never becomes a path. An
export is found only through its study: in the study's home, with the study's UUID in its
``export.json``.

Exports made before studies had UUIDs (no ``study_uuid`` in export.json, no ``study.json``) are
*adopted* by the study they belong to: the same name, and a complete trial of that number with
the same parameters and objective values. The study adopts them the first time it looks for its
exports (:func:`adopt_legacy`); that writes its UUID and storage into their export.json and
claims the folder, and leaves the weights as they are. A folder holding another study's legacy
exports is never claimed.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from ..core.names import is_safe_name, safe_folder, shown, slug
from ..data.integrity import check_sha256, write_text_atomically
from ..errors import UserError
from ..hpo.objective import stored_metric_names
from ..storages import ensure_uuid, exports_dir, storage_label, storage_of, study_uuid

EXPORT_FORMAT = 1
META = "export.json"
LATEST = "LATEST"
OWNER = "study.json"
_TRIAL = re.compile(r"trial-\d+")


def read_export_meta(path: str | Path) -> dict[str, Any]:
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


def study_record(study: optuna.Study) -> dict[str, Any]:
    """What an export and a home record of their study: its UUID and storage (given a UUID now if it has none)."""
    return {"study_uuid": ensure_uuid(study), "storage": storage_label(storage_of(study))}


def read_owner(folder: Path) -> dict[str, Any] | None:
    """The study that claimed ``folder`` (``{}`` when its study.json is unreadable); None when none has."""
    try:
        owner = json.loads((folder / OWNER).read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {}
    return owner if isinstance(owner, dict) else {}


def _plain(study_name: str, root: Path) -> Path | None:
    return root / study_name if is_safe_name(study_name) else None


def _exports_in(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if _TRIAL.fullmatch(p.name) and (p / META).is_file())


def home_of(study: optuna.Study, root: Path | None = None) -> Path | None:
    """The folder of the study's exports, if it has one; reads only."""
    root = root or exports_dir()
    uuid, plain = study_uuid(study), _plain(study.study_name, root)
    if uuid is None:  # a study from before UUIDs: its exports are where they always were
        return plain if plain is not None and read_owner(plain) is None else None
    for folder in (plain, root / safe_folder(study.study_name, uuid)):
        if folder is not None and (read_owner(folder) or {}).get("study_uuid") == uuid:
            return folder
    return None


def _claim(folder: Path, study: optuna.Study) -> bool:
    """Claim ``folder`` for the study (made if missing); False if another study holds it."""
    record = {"study": study.study_name, **study_record(study)}
    made = not folder.exists()
    folder.mkdir(parents=True, exist_ok=True)
    try:
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{OWNER}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w") as f:
                f.write(json.dumps(record, indent=2) + "\n")
            os.chmod(tmp, 0o644)
            os.link(tmp, folder / OWNER)  # whole, and only if no other study claimed it first
        except FileExistsError:
            pass
        finally:
            os.unlink(tmp)
    except OSError:  # e.g. a full disk: no empty folder is left for it
        if made:
            release(folder)
        raise
    return (read_owner(folder) or {}).get("study_uuid") == record["study_uuid"]


def claim_home(study: optuna.Study, root: Path | None = None) -> tuple[Path, bool]:
    """The study's home, claimed for it now if it has none; and whether this call claimed it."""
    root = root or exports_dir()
    uuid = ensure_uuid(study)
    home = home_of(study, root) or adopt_legacy(study, root)
    if home is not None:
        return home, False
    plain = _plain(study.study_name, root)
    free = plain is not None and read_owner(plain) is None and not _exports_in(plain)
    for folder in ([plain] if free and plain is not None else []) + [root / safe_folder(study.study_name, uuid)]:
        if _claim(folder, study):
            return folder, True
    raise UserError(f"{folder} is claimed by another study (its {OWNER}); move that folder aside and export again")


def release(home: Path) -> None:
    """Undo a claim that holds no export (an export interrupted before its folder was in place)."""
    if not _exports_in(home):
        disown(home)


def disown(home: Path) -> None:
    """After a study's exports are gone (``delete``): its claim, a LATEST naming no export, and the folder if empty."""
    latest = home / LATEST
    if latest.exists():
        name = latest.read_text().strip()
        if not (_TRIAL.fullmatch(name) and (home / name / META).is_file()):
            latest.unlink()
    (home / OWNER).unlink(missing_ok=True)
    with contextlib.suppress(OSError):  # something else is in it (another study's legacy exports): leave it
        home.rmdir()


def _belongs(meta: dict[str, Any], study: optuna.Study, trials: dict[int, FrozenTrial]) -> bool:
    """Whether a legacy export (no UUID) is of this study's trial: its name, parameters and objective values."""
    trial = trials.get(meta["trial"]) if "trial" in meta else None
    if "study_uuid" in meta or meta.get("study") != study.study_name or trial is None:
        return False
    if trial.state != TrialState.COMPLETE or trial.params != meta.get("params"):
        return False
    names = study.metric_names or stored_metric_names(study.user_attrs, len(study.directions)) or []
    metrics = meta.get("metrics") or {}
    return all(metrics.get(name) == value for name, value in zip(names, trial.values or ()))


def adopt_legacy(study: optuna.Study, root: Path | None = None) -> Path | None:
    """Adopt the exports in ``<name>/`` made before studies had UUIDs, if every one is this study's; the home."""
    plain = _plain(study.study_name, root or exports_dir())
    if plain is None or read_owner(plain) is not None:
        return None
    legacy = []
    for folder in _exports_in(plain):
        try:
            legacy.append((folder, read_export_meta(folder)))
        except UserError:
            return None
    trials = {t.number: t for t in study.get_trials(deepcopy=False)}
    if not legacy or not all(_belongs(meta, study, trials) for _, meta in legacy) or not _claim(plain, study):
        return None
    for folder, _ in legacy:
        record_study(folder, study)
    return plain


def adopt_study(study: optuna.Study, root: Path | None = None) -> str:
    """Give the study a UUID if it has none and adopt its legacy exports (:func:`adopt_legacy`); what was done.

    For a record made before studies had UUIDs (``tools/adopt_exports.py``); running it again changes nothing.
    """
    had = study_uuid(study)
    uuid = ensure_uuid(study)
    home = home_of(study, root)
    what = f"study {shown(study.study_name)}: UUID {uuid}" + (" (given now)" if had is None else "")
    if home is not None:
        return f"{what}; its exports in {home}: {len(study_exports(study, root))}"
    home = adopt_legacy(study, root)
    if home is not None:
        return f"{what}; adopted its {len(study_exports(study, root))} export(s) in {home}"
    plain = _plain(study.study_name, root or exports_dir())
    if plain is not None and _exports_in(plain):
        return f"{what}; {plain} holds exports that are not all of this study's trials: left as they are"
    return f"{what}; no exports"


def record_study(folder: Path, study: optuna.Study) -> None:
    """Write the study's UUID and storage into an export's export.json, after its name (nothing else changes)."""
    path = folder / META
    meta = json.loads(path.read_text())
    out: dict[str, Any] = {}
    for key, value in meta.items():
        if key not in ("study_uuid", "storage"):
            out[key] = value
        if key == "study":
            out.update(study_record(study))
    write_text_atomically(path, json.dumps(out, indent=2) + "\n")


def find_export(study: optuna.Study, number: int, root: Path | None = None) -> Path | None:
    """The study's export of trial ``number`` if there is one, its weights checked against the sha256 recorded
    at export time (a mismatch is a :class:`UserError`); None when there is none. A write: see :func:`adopt_legacy`."""
    uuid = ensure_uuid(study)
    home = home_of(study, root) or adopt_legacy(study, root)
    folder = home / f"trial-{number}" if home is not None else None
    if folder is None or not (folder / META).exists():
        return None
    meta = read_export_meta(folder)
    if meta.get("study_uuid") != uuid:
        return None
    check_sha256(
        folder / meta["weights"]["file"],
        meta["weights"]["sha256"],
        where="the sha256 recorded at export time",
        hint=f"it was changed; export it again with 'mnist-hpo export {study.study_name} --trial {number} "
        "--redo' (redo=True in Python)",
    )
    return folder


def fallback_export(study: optuna.Study, number: int, root: Path | None = None) -> Path | None:
    """The study's export made in place of trial ``number``'s, whose retrain stayed on the mean-image plateau
    (``retrain.fallback.from_trial``, :mod:`.retrain`), its weights checked; None when there is none."""
    for folder in study_exports(study, root):
        try:
            meta = read_export_meta(folder)
        except UserError:
            continue
        if ((meta.get("retrain") or {}).get("fallback") or {}).get("from_trial") == number:
            return find_export(study, int(meta["trial"]), root)
    return None


def existing_export(study: optuna.Study, number: int, root: Path | None = None) -> Path | None:
    """The export that stands for trial ``number``: one made in its place (its retrain stayed on the plateau,
    which is why that one exists), else its own; weights checked; None when there is neither."""
    return fallback_export(study, number, root) or find_export(study, number, root)


def study_exports(study: optuna.Study, root: Path | None = None) -> list[Path]:
    """The export folders of this study's trials (in its home, recording its UUID, or adoptable legacy ones)."""
    home = home_of(study, root)
    if home is None:
        return []
    uuid, trials, mine = study_uuid(study), {t.number: t for t in study.get_trials(deepcopy=False)}, []
    for folder in _exports_in(home):
        try:
            meta = read_export_meta(folder)
        except UserError:
            continue
        if (meta.get("study_uuid") == uuid) if uuid is not None else _belongs(meta, study, trials):
            mine.append(folder)
    return mine


def homes_by_name(study_name: str, root: Path) -> list[Path]:
    """Every home under ``root`` of a study named ``study_name`` (in any storage): ``<name>/`` and its
    ``<slug>-<uuid>/`` folders."""
    plain = _plain(study_name, root)
    found = [plain] if plain is not None and plain.is_dir() else []
    return found + [
        p
        for p in sorted(root.glob(f"{slug(study_name)}-*"))
        if p != plain and p.is_dir() and (read_owner(p) or {}).get("study") == study_name
    ]


def latest_in(home: Path | None, study_name: str, root: Path) -> Path:
    """The export that ``home/LATEST`` names; a :class:`UserError` when there is none."""
    pointer = home / LATEST if home is not None else None
    if home is None or pointer is None or not pointer.exists():
        raise UserError(
            f"no export of study {shown(study_name)} under {root}; run 'mnist-hpo export {study_name}' first"
        )
    name = pointer.read_text().strip()
    if not _TRIAL.fullmatch(name):  # a file's content never becomes a path as it is
        raise UserError(f"{pointer} names {shown(name)}, not a trial-N folder; export the study again")
    return home / name


def apart_note(folder: Path, study_name: str) -> str:
    """Why an export's home is not ``<name>/`` (empty when it is)."""
    if folder.parent.name == study_name:
        return ""
    if not is_safe_name(study_name):
        return f" (the study's name {shown(study_name)} is no safe folder name)"
    return f" (apart from {folder.parent.parent / study_name}, which holds the exports of another study of that name)"
