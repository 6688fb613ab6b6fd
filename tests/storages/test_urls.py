"""Where storage lives: only the default storage folder is made when missing; an explicit URL whose
folder does not exist is one line naming the folder and the ``mkdir -p`` to run, and nothing is created."""

from __future__ import annotations

import pytest

from mnist_hpo.errors import UserError
from mnist_hpo.storages import open_storage

from ..conftest import assert_one_error_line

# Each URL's folder "missing/dir" does not exist: absolute and relative paths (relative to the test's folder).
MISSING = {
    "journal, absolute": lambda tmp: f"journal:{tmp}/missing/dir/x.log",
    "journal, relative": lambda tmp: "journal:missing/dir/x.log",
    "sqlite, absolute": lambda tmp: f"sqlite:///{tmp}/missing/dir/x.db",
    "sqlite, relative": lambda tmp: "sqlite:///missing/dir/x.db",
}
REFUSAL = r"the storage folder (\S*)missing/dir does not exist; create it first \(mkdir -p \1missing/dir\)"


@pytest.fixture
def elsewhere(tmp_path, monkeypatch):
    """An empty current folder; the default storage folder is somewhere else."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MNIST_HPO_STORAGE_DIR", str(tmp_path.parent / f"{tmp_path.name}-default-storage"))
    monkeypatch.delenv("MNIST_HPO_STORAGE", raising=False)
    return tmp_path


@pytest.mark.parametrize("url_of", MISSING.values(), ids=MISSING.keys())
def test_an_explicit_storage_in_a_missing_folder_creates_nothing(url_of, elsewhere):
    with pytest.raises(UserError, match=REFUSAL):
        open_storage(url_of(elsewhere))
    assert list(elsewhere.iterdir()) == []


@pytest.mark.parametrize("url_of", MISSING.values(), ids=MISSING.keys())
def test_study_and_worker_refuse_it_in_one_line_at_once(url_of, elsewhere, capsys):
    for command in ("study", "worker"):
        assert_one_error_line(capsys, [command, "ae", "--storage", url_of(elsewhere)], "mkdir -p")
    assert list(elsewhere.iterdir()) == []


def test_a_storage_url_from_the_environment_is_explicit_too(elsewhere, monkeypatch):
    monkeypatch.setenv("MNIST_HPO_STORAGE", f"sqlite:///{elsewhere}/missing/dir/x.db")
    with pytest.raises(UserError, match=REFUSAL):
        open_storage()
    assert list(elsewhere.iterdir()) == []


def test_the_default_storage_makes_its_own_folder(tmp_path, monkeypatch):
    default = tmp_path / "new" / "storage"
    monkeypatch.setenv("MNIST_HPO_STORAGE_DIR", str(default))
    monkeypatch.delenv("MNIST_HPO_STORAGE", raising=False)
    open_storage()
    assert (default / "mnist_hpo.db").is_file()
    # the default folder named by an explicit URL is still the default folder
    (default / "mnist_hpo.db").unlink()
    default.rmdir()
    open_storage(f"journal:{default}/ae.log")
    assert (default / "ae.log").is_file()
