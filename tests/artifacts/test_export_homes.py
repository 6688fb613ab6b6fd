"""Real exports of one study name from two storages, and of names read from a storage that are not safe."""

import json

import optuna
import pytest

from mnist_hpo.artifacts.export import export_study_trial
from mnist_hpo.cli import main
from mnist_hpo.hpo.run import run_study
from mnist_hpo.storages import exports_dir, open_storage, study_uuid


def _files(root):
    return {p for p in root.rglob("*") if p.is_file()}


def test_one_name_in_two_storages_exports_apart_and_verify_checks_the_pairing(
    ae_cfg, tiny, tmp_path, monkeypatch, capsys
):
    monkeypatch.setenv("MNIST_HPO_STORAGE_DIR", str(tmp_path / "storage"))
    journals = tmp_path / "journals"
    journals.mkdir()
    here, elsewhere = f"journal:{journals / 'ae-test.log'}", f"sqlite:///{tmp_path / 'elsewhere.db'}"
    a = run_study(ae_cfg.with_overrides(trials=1), storage_url=here, data=tiny, progress=False)
    b = run_study(
        ae_cfg.with_overrides(study_name="ae-test", trials=1, seed=7), storage_url=elsewhere, data=tiny, progress=False
    )
    assert a.trials[0].params != b.trials[0].params
    folder_a = export_study_trial("ae-test", 0, storage_url=here, data=tiny, progress=False)
    # The case of the report: trial 0 of the other storage's 'ae-test' is not "already exported".
    assert main(["export", "ae-test", "--trial", "0", "--storage", elsewhere, "--quiet"]) == 0
    out = capsys.readouterr().out
    folder_b = exports_dir() / f"ae-test-{study_uuid(b).replace('-', '')[:8]}" / "trial-0"
    assert "already exported" not in out and f"to {folder_b} (apart from {exports_dir() / 'ae-test'}" in out
    meta_a, meta_b = (json.loads((f / "export.json").read_text()) for f in (folder_a, folder_b))
    assert folder_a == exports_dir() / "ae-test" / "trial-0"
    assert meta_a["params"] == a.trials[0].params and meta_b["params"] == b.trials[0].params
    assert (meta_a["study_uuid"], meta_b["study_uuid"]) == (study_uuid(a), study_uuid(b))
    assert meta_a["storage"] == here and meta_b["storage"] == elsewhere
    capsys.readouterr()
    # verify, given the storage an export came from, checks the pairing first; the wrong one is one line.
    for folder, where in ((folder_a, ["--storage", elsewhere]), (folder_b, ["--journals", str(journals)])):
        assert main(["verify", str(folder), *where]) == 1
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "is another one of that name" in err, err
    for folder, where in ((folder_a, ["--journals", str(journals)]), (folder_b, ["--storage", elsewhere])):
        assert main(["verify", str(folder), *where]) == 0
        out = capsys.readouterr().out
        assert f"are {where[1] if where[0] == '--storage' else here}'s" in out and out.endswith("verified\n"), out


NAMES = ["/abs", "..", "../x", "a/b", "a\nb", "x" * 300]


@pytest.mark.parametrize("name", NAMES, ids=repr)
def test_export_and_delete_of_a_stored_unsafe_name_stay_in_the_storage_folder(
    name, ae_cfg, tiny, tmp_path, monkeypatch, capsys
):
    """A study Optuna's own CLI named in a shared database: its files go to a safe folder under storage/."""
    monkeypatch.setenv("MNIST_HPO_STORAGE_DIR", str(tmp_path / "storage"))
    name = name.replace("/abs", str(tmp_path / "abs"))
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    made = run_study(ae_cfg.with_overrides(trials=1), storage_url=url, data=tiny, progress=False)
    storage = open_storage(url)
    odd = optuna.create_study(storage=storage, study_name=name)
    odd.set_user_attr("config", {**made.user_attrs["config"], "name": name})
    odd.add_trial(made.trials[0])
    before = _files(tmp_path)
    assert main(["export", name, "--storage", url, "--quiet"]) == 0, capsys.readouterr().err
    written = _files(tmp_path) - before
    assert written and all(p.is_relative_to(tmp_path / "storage") for p in written), written
    folder = next(p.parent for p in written if p.name == "export.json")
    assert folder.parent.parent == exports_dir() and folder.parent.name.endswith(study_uuid(odd).replace("-", "")[:8])
    assert main(["delete", name, "--storage", url, "--yes"]) == 0
    assert not folder.parent.exists()
    assert {p for p in _files(tmp_path) if not p.is_relative_to(tmp_path / "storage" / "artifacts")} <= before
