"""Compact a journal file: drop the attribute writes a later write of the same attribute replaced.

A journal keeps every change, so an attribute written again and again (a worker's ``owner``
beat, or a per-epoch curve as older versions stored it) fills it with lines that no longer
decide anything. :func:`compact_journal` rewrites the file without them, checks that the
compacted journal loads to exactly the same studies and trials (states, values, parameters,
intermediate values, attributes, times) and only then replaces the file; otherwise the file
is left as it was.

Only while no worker runs: a running process reads a journal from where it last stopped, so
it must not see the file rewritten under it. A trial marked RUNNING by a process still alive
on this machine makes it refuse.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from optuna.storages.journal import JournalFileBackend, JournalFileOpenLock, JournalStorage
from optuna.trial import TrialState

from ..errors import UserError
from ._journal import OWNER, _alive_here, _check_journal_file, _repair_tail, journal_lock
from ._optuna_compat import JOURNAL_ATTR_OPS, study_id


@dataclass(frozen=True)
class Compaction:
    path: Path
    bytes_before: int
    bytes_after: int
    dropped: int  # lines dropped


def superseded_lines(lines: list[str]) -> set[int]:
    """Indexes of the attribute writes whose every key is written again later for the same trial."""
    last: dict[tuple[str, int, str], int] = {}
    parsed = []
    for i, line in enumerate(lines):
        op = json.loads(line)
        kind = JOURNAL_ATTR_OPS.get(op.get("op_code"))
        keys = [(kind, op["trial_id"], key) for key in op.get(kind, {})] if kind else []
        parsed.append(keys)
        for k in keys:
            last[k] = i
    return {i for i, keys in enumerate(parsed) if keys and all(last[k] > i for k in keys)}


def _snapshot(path: Path) -> dict[str, dict[str, Any]]:
    storage = JournalStorage(JournalFileBackend(str(path), lock_obj=JournalFileOpenLock(str(path))))
    out: dict[str, dict[str, Any]] = {}
    for s in storage.get_all_studies():
        out[s.study_name] = {
            "user_attrs": s.user_attrs,
            "system_attrs": s.system_attrs,
            "directions": s.directions,
            "trials": storage.get_all_trials(study_id(s), deepcopy=False),
        }
    return out


def _running_here(snapshot: dict[str, dict[str, Any]]) -> list[str]:
    return [
        f"{name} trial {t.number}"
        for name, s in snapshot.items()
        for t in s["trials"]
        if t.state == TrialState.RUNNING
        and isinstance(t.user_attrs.get(OWNER), dict)
        and _alive_here(t.user_attrs[OWNER])
    ]


def compact_journal(path: Path) -> Compaction:
    """Rewrite ``path`` without superseded attribute writes, after checking the result loads the same."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path} does not exist; give the path of a journal file (e.g. results/journals/ae.log)")
    _check_journal_file(path)
    _repair_tail(path)
    before = _snapshot(path)
    running = _running_here(before)
    if running:
        raise UserError(f"{path}: {running[0]} is running in a live process; compact when no worker runs")
    text = path.read_text()
    lines = text.splitlines()
    drop = superseded_lines(lines)
    size = len(text.encode())
    if not drop:
        return Compaction(path, size, size, 0)
    kept = "".join(line + "\n" for i, line in enumerate(lines) if i not in drop)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".compact")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(kept)
            f.flush()
            os.fsync(f.fileno())
        after = _snapshot(Path(tmp))
        if after != before:
            raise UserError(f"{path}: the compacted journal would not load the same trials; the file is unchanged")
        os.chmod(tmp, path.stat().st_mode & 0o777)
        with journal_lock(path):  # no writer appends between the check and the swap
            if path.stat().st_size != size:
                raise UserError(f"{path} changed while it was compacted (a worker is running?); the file is unchanged")
            os.replace(tmp, path)
    finally:
        for leftover in (tmp, tmp + ".lock"):
            if os.path.exists(leftover):
                os.unlink(leftover)
    return Compaction(path, size, len(kept.encode()), len(drop))
