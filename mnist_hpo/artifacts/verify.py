"""``mnist-hpo verify``: check an export against what it records, and say what differs.

Up to four checks, in order; the first that fails ends the verification:

0. given the storage it came from (``--storage URL`` or ``--journals DIR``), that the study it
   names (by UUID, not by name) and its trial are that storage's (:func:`origin_failure`);
1. the weights file against the sha256 recorded at export time;
2. the dataset the export was tested on (its recorded content checksum) against the
   data here, which the test metrics are recomputed on;
3. every test metric the task computes, recomputed from the weights and compared
   with the recorded one within :data:`REL_TOL` (see :func:`compare_metric`).

The GAN's test metrics come from generated samples, but the noise they are drawn
from is seeded (``tasks.gan.SCORE_SEED``), so the recomputation draws the same
samples and is comparable like every other metric.

The GAN's Fréchet distances also depend on the judge that scores them (the quality
classifier, :mod:`mnist_hpo.measures.frechet`): an export records its sha256, and a
judge other than the recorded one is a failure of its own, before any number is
compared. ``rescore=True`` (``verify --rescore``) scores such an export again with
this machine's judge and rewrites its ``export.json``, the previous values and judge
kept under ``rescored``; the weights and dataset checks must hold first, and nothing
that does not depend on the judge is ever rewritten.

A folder that is not an export at all is a user error (``UserError``); a check that
does not hold is a :class:`Verification` with ``failure`` set.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import optuna
from optuna.trial import TrialState

from ..core.names import shown
from ..core.schema import StudyConfig
from ..data.datasets import Dataset, load_data
from ..data.integrity import sha256_file, write_text_atomically
from ..errors import UserError
from ..storages import UUID_ATTR, open_storage, require_stored
from ..tasks import make_task, registry
from .folders import META, read_export_meta
from .loading import exported_provider, load_export

# A recomputed metric may differ from the recorded one by 0.1 % of its value: the same
# device gives identical numbers, another device (a GPU export verified on a CPU) or
# another thread count changes the last digits of a sum, never 0.1 %.
REL_TOL = 1e-3
# Metrics that count test images (accuracy, class histogram, confusion matrix) change in
# steps of one image when a borderline prediction flips on another device: up to 0.1 % of
# the images may flip (at least one step is always allowed).
FLIP_TOL = 1e-3


@dataclass
class Verification:
    folder: str
    checks: list[str] = field(default_factory=list)  # what was compared and held, one line each
    failure: str = ""  # the first check that did not hold: what differs, both values
    rescored: bool = False  # export.json was rewritten with this machine's judge (verify --rescore)
    warnings: list[str] = field(default_factory=list)  # e.g. a plugin of another version than the recorded one

    @property
    def ok(self) -> bool:
        return not self.failure


def _counted(name: str) -> bool:
    return any(word in name for word in ("accuracy", "histogram", "coverage", "confusion"))


def compare_metric(name: str, recorded, recomputed, n_images: int) -> str | None:
    """``None`` when ``recomputed`` matches ``recorded`` within the tolerance, else why not (one phrase).

    Continuous metrics (MSE, cross-entropy, Fréchet distance): within ``REL_TOL`` of the
    recorded value. Metrics counted over ``n_images`` images: within ``REL_TOL`` or
    ``FLIP_TOL`` of the images (as a fraction, or as counts for the confusion matrix).
    """
    if isinstance(recomputed, list):
        if not isinstance(recorded, list) or _shape(recorded) != _shape(recomputed):
            return f"recorded {_short(recorded)}, recomputed a list of shape {_shape(recomputed)}"
        flat_a, flat_b = _flat(recorded), _flat(recomputed)
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in flat_a):
            return f"recorded {_short(recorded)} holds non-numbers"
        if "confusion" in name:  # counts: images moved between cells (each move changes two cells)
            moved = sum(abs(a - b) for a, b in zip(flat_a, flat_b)) / 2
            allowed = max(1.0, FLIP_TOL * n_images)
            return (
                None
                if moved <= allowed
                else f"recorded and recomputed matrices differ by {moved:g} images (tolerance {allowed:g})"
            )
        for i, (a, b) in enumerate(zip(flat_a, flat_b)):
            why = _compare_number(name, a, b, n_images)
            if why:
                return f"entry {i}: {why}"
        return None
    if isinstance(recorded, bool) or not isinstance(recorded, (int, float)):
        return f"recorded {_short(recorded)}, recomputed {recomputed:.6g}"
    return _compare_number(name, float(recorded), float(recomputed), n_images)


def _compare_number(name: str, recorded: float, recomputed: float, n_images: int) -> str | None:
    if math.isnan(recorded) or math.isnan(recomputed):
        same = math.isnan(recorded) and math.isnan(recomputed)
        return None if same else f"recorded {recorded:.6g}, recomputed {recomputed:.6g}"
    allowed = REL_TOL * abs(recorded)
    if _counted(name) and n_images:
        allowed = max(allowed, FLIP_TOL, 1.0 / n_images)
    diff = abs(recomputed - recorded)
    if diff <= allowed:
        return None
    rel = f" ({diff / abs(recorded):.3g}x the recorded value)" if recorded else ""
    return (
        f"recorded {recorded:.6g}, recomputed {recomputed:.6g}: they differ by {diff:.3g}{rel}, tolerance {allowed:.3g}"
    )


def _shape(v) -> tuple:
    return (len(v), *_shape(v[0])) if isinstance(v, list) and v else ((0,) if isinstance(v, list) else ())


def _flat(v) -> list:
    return [x for item in v for x in _flat(item)] if isinstance(v, list) else [v]


def _short(v) -> str:
    text = repr(v)
    return text if len(text) <= 40 else text[:37] + "..."


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.6g}"
    if isinstance(v, list):
        return f"a {'x'.join(map(str, _shape(v)))} list"
    return str(v)


def origin_failure(meta: dict, storage_url: str) -> tuple[str | None, str]:
    """(why the export is not of a study and trial of ``storage_url``, or None; the check that held).

    The study is found by the UUID the export records, never by its name: another storage's study
    of the same name is another study. Its trial must be complete, with the export's parameters.
    """
    require_stored(storage_url)  # a missing file is one line, not a new empty storage
    storage = open_storage(storage_url)
    name, number, recorded = meta.get("study"), meta.get("trial"), meta.get("study_uuid")
    if not isinstance(recorded, str):
        return (
            f"export.json records no study UUID (exported before studies had one); "
            f"'mnist-hpo export {name} --trial {number} --storage {storage_url}' records it, without a retrain "
            "when the export is of that study's trial",
            "",
        )
    studies = storage.get_all_studies()
    found = [s for s in studies if s.user_attrs.get(UUID_ATTR) == recorded]
    if not found:
        same = [str(s.user_attrs.get(UUID_ATTR, "none"))[:8] for s in studies if s.study_name == name]
        there = (
            f"its study {shown(name)} is another one of that name (UUID {same[0]}…)"
            if same
            else f"it holds no study {shown(name)}"
        )
        return (
            f"the export is of study {shown(name)} with UUID {recorded[:8]}… (from {meta.get('storage', '?')}), "
            f"not of {storage_url}: {there}; verify it against the storage it came from",
            "",
        )
    study = optuna.load_study(study_name=found[0].study_name, storage=storage)
    trial = next((t for t in study.get_trials(deepcopy=False) if t.number == number), None)
    if trial is None or trial.state != TrialState.COMPLETE or trial.params != meta.get("params"):
        state = "no such trial" if trial is None else f"trial {number} is {trial.state.name} with {trial.params}"
        return (
            f"study {shown(study.study_name)} of {storage_url} has no complete trial {number} with the export's "
            f"parameters {meta.get('params')} ({state})",
            "",
        )
    return None, f"study {shown(study.study_name)} {recorded[:8]}… and its trial {number} are {storage_url}'s"


class _Failed(Exception):
    """A check that did not hold: what differs, both values (it becomes :attr:`Verification.failure`)."""


def verify_export(
    path: str | Path, *, data: Dataset | None = None, rescore: bool = False, storage_url: str | None = None
) -> Verification:
    """Check the export in ``path``; ``data`` (default: the dataset its config names) is what it is tested on.

    ``rescore``: score a GAN export whose judge differs from this machine's again, and record it.
    ``storage_url``: the storage it came from; its study and trial must be that storage's (check 0).
    """
    meta = read_export_meta(path)  # not an export: UserError
    folder = Path(meta["_folder"])
    v = Verification(str(folder))
    try:
        if storage_url is not None:
            failure, held = origin_failure(meta, storage_url)
            if failure:
                raise _Failed(failure)
            v.checks.append(held)
        v.checks.append(_weights_check(folder, meta))
        cfg, recorded_data, recorded_metrics = _recorded(folder, meta)
        # A plugin family: installed (or trusted) before anything is loaded; another version is a warning,
        # and the recomputed numbers decide.
        _, warning = registry.check_recorded(
            str(meta.get("model", {}).get("type", cfg.model)), exported_provider(meta), str(folder)
        )
        if warning:
            v.warnings.append(warning)
        data = data if data is not None else load_data(cfg)
        v.checks.append(_data_check(data, recorded_data))
        model, _ = load_export(folder)
        task = make_task(cfg, data)
        here = task.provenance().get("judge")
        rescoring = _judge_check(v, folder, meta, here, rescore)
        recomputed = task.test(model.to(task.device))
        if rescoring and here is not None:  # _judge_check rescores only with a judge here
            v.checks += _rescore(folder, recomputed, here, meta.get("judge"), recorded_metrics)
            v.rescored = True
        else:
            n_images = len(task.data.test_images)
            for line in _metric_checks(recomputed, recorded_metrics, n_images):  # the ones before a failure kept
                v.checks.append(line)
    except _Failed as e:
        v.failure = str(e)
    return v


def _weights_check(folder: Path, meta: dict) -> str:
    """Check 1: the weights file against its recorded sha256."""
    try:
        weights = folder / meta["weights"]["file"]
        recorded_sha = meta["weights"]["sha256"]
    except (KeyError, TypeError) as e:
        raise UserError(
            f"{folder / 'export.json'} records no weights file and sha256 ({e}); export the study again"
        ) from None
    if not weights.exists():
        raise _Failed(f"{weights} is missing (export.json records sha256 {recorded_sha[:16]}…)")
    sha = sha256_file(weights)
    if sha != recorded_sha:
        raise _Failed(
            f"{weights.name}: sha256 {sha[:16]}… differs from the one recorded at export time {recorded_sha[:16]}…"
        )
    return f"{weights.name} matches its recorded sha256 {sha[:16]}…"


def _recorded(folder: Path, meta: dict) -> tuple[StudyConfig, str, dict]:
    """What the export records of its config, its dataset's checksum and its test metrics."""
    try:
        return StudyConfig.from_dict(meta["config"]), meta["dataset"]["checksum"], meta["metrics"]
    except (KeyError, TypeError, ValueError) as e:
        raise UserError(
            f"{folder / 'export.json'} lacks what an export records ({type(e).__name__}: {e}); export the study again"
        ) from None


def _data_check(data: Dataset, recorded: str) -> str:
    """Check 2: the data here is the data the export was tested on."""
    if data.checksum != recorded:
        raise _Failed(
            f"dataset {data.name}: the data here has checksum {data.checksum[:16]}…, the export was tested "
            f"on {recorded[:16]}…"
        )
    return f"dataset {data.name} matches the recorded checksum {recorded[:16]}…"


def _judge_check(v: Verification, folder: Path, meta: dict, here: dict | None, rescore: bool) -> bool:
    """The quality classifier that scores the metrics (``here``, None where none does) against the recorded one;
    whether the export is to be rescored."""
    if here is None and rescore:
        raise UserError(
            f"{folder}: nothing to rescore: its test metrics depend on no quality classifier; "
            "verify it without --rescore"
        )
    if here is None:
        return False
    recorded_judge = meta.get("judge")
    recorded_sha = recorded_judge.get("sha256") if isinstance(recorded_judge, dict) else None
    if recorded_sha == here["sha256"]:
        v.checks.append(f"quality classifier matches the recorded sha256 {recorded_sha[:16]}…")
        return False
    if rescore:
        return True
    if recorded_sha is None:
        v.checks.append(
            "export.json records no quality classifier (exported before they were recorded); "
            f"scoring with this machine's, sha256 {here['sha256'][:16]}…"
        )
        return False
    raise _Failed(
        f"its Fréchet distances were scored by quality classifier {recorded_sha[:16]}…, this "
        f"machine's is {here['sha256'][:16]}…: classifiers trained apart score a few percent apart; "
        "run 'mnist-hpo data' to install the shipped one, or 'mnist-hpo verify --rescore' to "
        "score the export with this one"
    )


def _metric_checks(recomputed: dict, recorded: dict, n_images: int):
    """Check 3: each recomputed test metric against the recorded one, a line for each that holds."""
    for name, value in recomputed.items():
        if name not in recorded:
            raise _Failed(f"{name}: recomputed {_fmt(value)}, but export.json records no {name}")
        why = compare_metric(name, recorded[name], value, n_images)
        if why:
            raise _Failed(f"{name} on {n_images} test images: {why}")
        yield f"{name}: recorded {_fmt(recorded[name])}, recomputed {_fmt(value)}"


def _rescore(folder: Path, recomputed: dict, here: dict, recorded_judge, recorded_metrics: dict) -> list[str]:
    """``export.json`` rewritten with the metrics as this machine's judge scores them; a line for each."""
    _rewrite_scores(folder, recomputed, here, recorded_judge)
    recorded_sha = recorded_judge.get("sha256") if isinstance(recorded_judge, dict) else None
    before = recorded_sha[:16] + "…" if recorded_sha else "not recorded"
    return [
        f"{name}: recorded {_fmt(recorded_metrics.get(name))} (quality classifier {before}), rescored {_fmt(value)}"
        for name, value in recomputed.items()
    ]


def _rewrite_scores(folder: Path, metrics: dict, judge: dict, judge_before) -> None:
    """``export.json`` with ``metrics`` scored by ``judge``; what they replace kept under ``rescored``."""
    path = folder / META
    meta = json.loads(path.read_text())
    before = {name: meta["metrics"].get(name) for name in metrics}
    meta["metrics"].update(metrics)
    meta["judge"] = judge
    meta.setdefault("rescored", []).append(
        {
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "judge_before": judge_before,
            "metrics_before": before,
        }
    )
    write_text_atomically(path, json.dumps(meta, indent=2) + "\n")
