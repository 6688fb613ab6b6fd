"""A new study's name is checked before anything is stored; each study has a UUID of its own."""

import dataclasses
import uuid

import optuna
import pytest

from mnist_hpo.cli import main
from mnist_hpo.errors import UserError
from mnist_hpo.hpo.identity import open_study
from mnist_hpo.storages import UUID_ATTR, ensure_uuid, open_storage, study_uuid

from ..conftest import STUDIES, storage_snapshot

BAD_NAMES = ["/abs", "..", "../x", "a/b", "a\nb", "x" * 300]


@pytest.mark.parametrize("name", BAD_NAMES, ids=repr)
def test_study_with_an_unsafe_study_name_is_one_line_and_writes_nothing(name, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MNIST_HPO_STORAGE_DIR", str(tmp_path / "storage"))
    name = name.replace("/abs", str(tmp_path / "abs"))  # an absolute path, but one this test may look at
    code = main(
        [
            "study",
            str(STUDIES / "ae.toml"),
            "--study-name",
            name,
            "--trials",
            "1",
            "--epochs",
            "1",
            "--subset",
            "100",
            "--no-retrain",
            "--quiet",
            "--storage",
            f"sqlite:///{tmp_path / 's.db'}",
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and err.startswith("mnist-hpo: error: --study-name "), err
    assert "letters, digits" in err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name", BAD_NAMES, ids=repr)
def test_open_study_refuses_an_unsafe_name_made_in_python(name, ae_cfg, storage):
    open_study(ae_cfg, open_storage(storage), dataset_checksum="abc")  # another study, so the tables exist
    before = storage_snapshot(storage)
    with pytest.raises(UserError, match="letters, digits"):
        open_study(dataclasses.replace(ae_cfg, name=name), open_storage(storage), dataset_checksum="abc")
    assert storage_snapshot(storage) == before


def test_a_new_study_gets_a_uuid_and_keeps_it(ae_cfg, storage, tmp_path):
    first = study_uuid(open_study(ae_cfg, open_storage(storage), dataset_checksum="abc"))
    assert str(uuid.UUID(first)) == first
    assert study_uuid(open_study(ae_cfg, open_storage(storage), dataset_checksum="abc")) == first
    other = open_study(ae_cfg, open_storage(f"sqlite:///{tmp_path / 'other.db'}"), dataset_checksum="abc")
    assert study_uuid(other) not in (None, first)  # the same name in another storage: another study


def test_a_study_made_before_uuids_gets_one_once(ae_cfg, storage):
    open_study(ae_cfg, open_storage(storage), dataset_checksum="abc")
    old = optuna.create_study(storage=storage, study_name="before")  # as an older version, or Optuna's CLI, made it
    assert study_uuid(old) is None and UUID_ATTR not in old.user_attrs
    given = ensure_uuid(old)
    assert study_uuid(optuna.load_study(study_name="before", storage=storage)) == given
    assert ensure_uuid(old) == given
