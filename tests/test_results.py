"""The committed reproduction record (``results/``): within its size limits, readable, every export verified.

These tests read what is committed; they pass trivially on a checkout without ``results/``
only for the parts that are not there yet (each says so when skipped).
"""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest

from mnist_hpo.cli import main
from mnist_hpo.storages import open_storage

from .conftest import DATA, ROOT

RESULTS = ROOT / "results"
MAX_FILE = 8 << 20
MAX_TOTAL = 40 << 20
FORBIDDEN = (".db", ".sqlite", ".pkl", ".pickle", ".pt", ".pth", ".npz", ".ckpt")


def _files() -> list[Path]:
    """The record's files: population-based training's checkpoints stay out of it (.gitignore)."""
    return [
        p
        for p in RESULTS.rglob("*")
        if p.is_file() and not p.name.endswith(".lock") and (RESULTS / "checkpoints") not in p.parents
    ]


def test_record_sizes_and_formats():
    if not RESULTS.exists():
        pytest.skip("no results/ in this checkout yet")
    files = _files()
    big = [f"{p.relative_to(ROOT)} ({p.stat().st_size >> 20} MiB)" for p in files if p.stat().st_size > MAX_FILE]
    assert not big, f"files over 8 MiB: {big}"
    total = sum(p.stat().st_size for p in files)
    assert total <= MAX_TOTAL, f"results/ holds {total / 2**20:.1f} MiB, over 40 MiB"
    banned = [str(p.relative_to(ROOT)) for p in files if p.suffix in FORBIDDEN]
    assert not banned, f"pickles or databases in the record: {banned}"


def _journals() -> list[Path]:
    return sorted((RESULTS / "journals").glob("*.log")) if (RESULTS / "journals").exists() else []


@pytest.mark.parametrize("journal", _journals() or [None], ids=lambda p: p.stem if p else "none")
def test_every_journal_reads_and_holds_its_study(journal):
    if journal is None:
        pytest.skip("no journals in results/ yet")
    storage = open_storage(f"journal:{journal}")
    study = optuna.load_study(study_name=journal.stem, storage=storage)
    assert "identity" in study.user_attrs and "config" in study.user_attrs


def _exports() -> list[Path]:
    root = RESULTS / "exports"
    return sorted(p.parent for p in root.glob("*/trial-*/export.json")) if root.exists() else []


@pytest.mark.parametrize("export", _exports() or [None], ids=lambda p: f"{p.parent.name}/{p.name}" if p else "none")
def test_every_committed_export_is_of_its_journals_study(export, monkeypatch):
    """By the study's UUID, not its name: the record was made before UUIDs, and tools/adopt_exports.py gave them."""
    import json

    from mnist_hpo.artifacts.verify import origin_failure

    if export is None:
        pytest.skip("no exports in results/ yet")
    monkeypatch.chdir(ROOT)
    meta = json.loads((export / "export.json").read_text())
    url = f"journal:results/journals/{meta['study']}.log"
    assert (
        meta["storage"] == url
        and json.loads((export.parent / "study.json").read_text())["study_uuid"] == meta["study_uuid"]
    )
    assert origin_failure(meta, url)[0] is None


@pytest.mark.slow
@pytest.mark.parametrize("export", _exports() or [None], ids=lambda p: f"{p.parent.name}/{p.name}" if p else "none")
def test_every_committed_export_verifies(export, monkeypatch, capsys):
    if export is None:
        pytest.skip("no exports in results/ yet")
    monkeypatch.chdir(ROOT)  # exports name their encoder export relative to the repository
    monkeypatch.setenv("MNIST_HPO_DATA", str(DATA))
    code = main(["verify", str(export.relative_to(ROOT))])
    out, err = capsys.readouterr()
    assert code == 0, out + err


@pytest.mark.parametrize("journal", _journals() or [None], ids=lambda p: p.stem if p else "none")
def test_every_recorded_study_still_resumes_with_todays_code(journal, monkeypatch, mnist):
    """The study files and today's code give each recorded study the identity it was created with.

    Otherwise the next `make reproduce` would refuse to continue the record (a resume compares them).
    """
    import json

    from mnist_hpo.core.space import resolve_space
    from mnist_hpo.hpo.identity import identity_differences, stored_identity, study_identity
    from mnist_hpo.workflows.record import Options, load_part, study_parts

    if journal is None:
        pytest.skip("no journals in results/ yet")
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("MNIST_HPO_STORAGE_DIR", "results")
    part = next(p for p in study_parts() if p.name == journal.stem)
    cfg = load_part(part, Options(out=Path("results")))
    study = optuna.load_study(study_name=journal.stem, storage=open_storage(f"journal:{journal}"))
    stored, complete = stored_identity(study.user_attrs)
    now = json.loads(json.dumps(study_identity(cfg, resolve_space(cfg.space, cfg.seed), mnist.checksum)))
    assert identity_differences(stored, now, complete=complete) == []
