"""Each study's exports in a home of its own (mnist_hpo.artifacts.folders), without training: exports are made up.

Two studies of one name in two storages, exports made before studies had UUIDs, names read from a
storage that are not safe, and an export interrupted before its folder is in place.
"""

import errno
import hashlib
import json
import os
import warnings
from pathlib import Path

import optuna
import pytest
from optuna.distributions import FloatDistribution

from mnist_hpo.artifacts import export as E
from mnist_hpo.artifacts.export import export_trial, latest_export
from mnist_hpo.artifacts.folders import OWNER, claim_home, find_export, home_of
from mnist_hpo.artifacts.verify import origin_failure
from mnist_hpo.cli import main
from mnist_hpo.config import load_study_config
from mnist_hpo.errors import UserError, WriteFailed
from mnist_hpo.storages import ensure_uuid, exports_dir, open_storage, study_uuid

from ..conftest import ROOT, STUDIES

WEIGHTS = b"made-up weights"


def _study(url: str, name: str = "s", x: float = 1.0, value: float = 0.5) -> optuna.Study:
    """A study as Optuna alone makes it (no UUID), with one complete trial 0."""
    study = optuna.create_study(storage=open_storage(url), study_name=name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study.set_metric_names(["val_mse"])
    study.add_trial(
        optuna.trial.create_trial(params={"x": x}, distributions={"x": FloatDistribution(0, 2)}, value=value)
    )
    return study


def _export(folder: Path, study_name: str, x: float = 1.0, value: float = 0.5, **more) -> Path:
    """A made-up export of trial 0 (``more``: e.g. the study_uuid a new export records), pointed at by LATEST."""
    folder.mkdir(parents=True)
    (folder / "model.safetensors").write_bytes(WEIGHTS)
    meta = {
        "format": 1,
        "study": study_name,
        **more,
        "trial": 0,
        "params": {"x": x},
        "metrics": {"val_mse": value},
        "weights": {"file": "model.safetensors", "sha256": hashlib.sha256(WEIGHTS).hexdigest()},
    }
    (folder / "export.json").write_text(json.dumps(meta, indent=2) + "\n")
    (folder.parent / "LATEST").write_text(folder.name + "\n")
    return folder


@pytest.fixture
def two(tmp_path, monkeypatch):
    """Study 's' in two storages, trial 0 with other parameters in each; (url a, study a, url b, study b)."""
    monkeypatch.setenv("MNIST_HPO_STORAGE_DIR", str(tmp_path / "storage"))
    a, b = f"sqlite:///{tmp_path / 'a.db'}", f"sqlite:///{tmp_path / 'b.db'}"
    return a, _study(a, x=1.0, value=0.5), b, _study(b, x=0.25, value=0.7)


def test_two_studies_of_one_name_never_share_an_export(two):
    _, a, _, b = two
    home_a, _ = claim_home(a)
    folder_a = _export(home_a / "trial-0", "s", study_uuid=study_uuid(a))
    assert home_a == exports_dir() / "s" and find_export(a, 0) == folder_a
    # The other storage's study of that name: not its export, though trial 0 is there under the same name.
    assert find_export(b, 0) is None
    home_b, claimed = claim_home(b)
    assert claimed and home_b == exports_dir() / f"s-{study_uuid(b).replace('-', '')[:8]}"
    assert json.loads((home_b / OWNER).read_text())["study_uuid"] == study_uuid(b)
    with pytest.raises(UserError, match="no export of study 's'"):
        latest_export("s", study=b)
    assert latest_export("s", study=a) == folder_a
    folder_b = _export(home_b / "trial-0", "s", x=0.25, study_uuid=study_uuid(b))
    assert find_export(b, 0) == folder_b and find_export(a, 0) == folder_a
    with pytest.raises(UserError, match=r"several studies named 's' have exports .*name the export folder itself"):
        latest_export("s")  # by name alone: which one is meant is not known


def test_verify_finds_the_study_by_uuid_not_by_name(two, capsys):
    url_a, a, url_b, b = two
    home_a, _ = claim_home(a)
    ensure_uuid(b)
    folder = _export(home_a / "trial-0", "s", study_uuid=study_uuid(a), storage=url_a)
    meta = json.loads((folder / "export.json").read_text())
    assert origin_failure(meta, url_a)[0] is None
    why, _ = origin_failure(meta, url_b)
    assert "another one of that name" in why and study_uuid(a)[:8] in why and study_uuid(b)[:8] in why
    assert main(["verify", str(folder), "--storage", url_b]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"mnist-hpo: verify failed: {folder}: the export is of study 's'")
    # The right study, but a trial with other parameters than the export's.
    meta["params"] = {"x": 1.5}
    assert "no complete trial 0 with the export's parameters" in origin_failure(meta, url_a)[0]


def test_exports_made_before_uuids_are_adopted_by_their_own_study_only(two):
    _, a, _, b = two
    legacy = _export(exports_dir() / "s" / "trial-0", "s")  # trial 0 of study a, exported before UUIDs
    before = (legacy / "model.safetensors").read_bytes()
    assert find_export(b, 0) is None and claim_home(b)[0] != legacy.parent  # b's trial 0 has other parameters
    assert not (legacy.parent / OWNER).exists()
    assert find_export(a, 0) == legacy
    meta = json.loads((legacy / "export.json").read_text())
    assert meta["study_uuid"] == study_uuid(a) and meta["storage"].endswith("a.db")
    assert list(meta)[:4] == ["format", "study", "study_uuid", "storage"]
    assert (legacy / "model.safetensors").read_bytes() == before and home_of(a) == legacy.parent
    assert json.loads((legacy.parent / OWNER).read_text())["study_uuid"] == study_uuid(a)


def test_a_pointer_that_is_no_trial_folder_is_refused(two):
    _, a, _, _ = two
    home, _ = claim_home(a)
    (home / "LATEST").write_text("../../elsewhere\n")
    with pytest.raises(UserError, match="not a trial-N folder"):
        latest_export("s", study=a)


def test_an_interrupted_first_export_leaves_no_empty_folder(two, monkeypatch):
    _, a, _, _ = two
    cfg = load_study_config(STUDIES / "ae.toml").with_overrides(name="s")

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt  # Ctrl-C during the retrain

    monkeypatch.setattr(E, "_write_export", interrupted)
    with pytest.raises(KeyboardInterrupt):
        export_trial(a, a.trials[0], cfg=cfg, data=object(), progress=False)
    assert not (exports_dir() / "s").exists()
    assert list(exports_dir().iterdir()) == []


def test_a_full_disk_said_only_in_words_is_one_line(two, monkeypatch):
    """An OSError that names no space in its message but carries no errno (a wrapped error) is the same one
    line as ENOSPC itself (it raised TypeError from os.strerror(None) before)."""
    _, a, _, _ = two
    cfg = load_study_config(STUDIES / "ae.toml").with_overrides(name="s")

    def full(*args, **kwargs):
        raise OSError(os.strerror(errno.ENOSPC))  # errno None

    monkeypatch.setattr(E.tempfile, "mkdtemp", full)
    with pytest.raises(WriteFailed, match="the disk is full"):
        export_trial(a, a.trials[0], cfg=cfg, data=object(), progress=False)


NAMES = ["/abs", "..", "../x", "a/b", "a\nb", "x" * 300]


@pytest.mark.parametrize("name", NAMES, ids=repr)
def test_delete_of_a_stored_unsafe_name_removes_nothing_outside_its_exports(name, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MNIST_HPO_STORAGE_DIR", str(tmp_path / "storage"))
    name = name.replace("/abs", str(tmp_path / "abs"))
    url = f"sqlite:///{tmp_path / 'storage' / 'shared.db'}"
    (tmp_path / "storage").mkdir()
    study = _study(url, name)  # as Optuna's CLI names a study in a shared database
    # Files where the name, joined into a path, would point: an export of "this" study outside its home.
    decoys = [_export(exports_dir() / name / "trial-0", name)] if not name.startswith("x") else []
    home, _ = claim_home(study)
    assert home.parent == exports_dir() and home.name != name
    mine = _export(home / "trial-0", name, study_uuid=study_uuid(study))
    assert main(["delete", name, "--storage", url, "--yes"]) == 0, capsys.readouterr().err
    assert not mine.exists() and not home.exists()
    assert all((d / "model.safetensors").read_bytes() == WEIGHTS for d in decoys)


def test_the_migration_tool_adopts_a_records_exports_once(tmp_path, monkeypatch, capsys):
    """tools/adopt_exports.py on a record made before UUIDs: run twice, the second changes no byte."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("adopt_exports", ROOT / "tools" / "adopt_exports.py")
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "journals").mkdir()
    mine = _study("journal:journals/s.log")
    other = _study("journal:journals/t.log", "t")  # exported, but its folder holds an export of another trial
    legacy = _export(Path("exports") / "s" / "trial-0", "s")
    foreign = _export(Path("exports") / "t" / "trial-0", "t", x=0.75)
    argv = ["--journals", "journals", "--exports", "exports"]
    assert tool.main(argv) == 0
    out = capsys.readouterr().out
    assert "study 's': UUID" in out and "(given now); adopted its 1 export(s) in exports/s" in out
    assert "exports/t holds exports that are not all of this study's trials: left as they are" in out
    meta = json.loads((legacy / "export.json").read_text())
    assert meta["study_uuid"] == study_uuid(mine) and meta["storage"] == "journal:journals/s.log"
    assert "study_uuid" not in json.loads((foreign / "export.json").read_text()) and study_uuid(other)
    files = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file() and not p.name.endswith(".lock")}
    assert tool.main(argv) == 0
    assert "given now" not in capsys.readouterr().out
    assert {p: p.read_bytes() for p in files} == files


def test_an_export_records_its_storage_without_the_password():
    from mnist_hpo.storages import storage_label

    rdb = optuna.storages.RDBStorage.__new__(optuna.storages.RDBStorage)  # its URL is all that is read
    rdb.url = "postgresql+psycopg://hpo:s3cret@db.example.org:5432/studies"
    assert storage_label(rdb) == "postgresql+psycopg://hpo:***@db.example.org:5432/studies"


def test_verify_never_joins_an_unsafe_recorded_name_into_a_journal_path(tmp_path, capsys):
    (tmp_path / "journals").mkdir()
    (tmp_path / "x.log").write_text("")  # where ../x.log would point
    folder = _export(tmp_path / "exports" / "odd" / "trial-0", "../x", study_uuid="0" * 32)
    assert main(["verify", str(folder), "--journals", str(tmp_path / "journals")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "names the study '../x', which is no safe file name" in err, err
