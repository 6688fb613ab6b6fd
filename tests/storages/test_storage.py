"""Files attached to studies and trials (``mnist_hpo.storages.attach_files``)."""

import optuna
from optuna.artifacts import get_all_artifact_meta

from mnist_hpo.storages import artifacts_dir, attach_files


def test_a_study_file_attached_again_replaces_the_first(tmp_path, monkeypatch):
    """A re-export attaches its figures under the same names: the study lists each once, the new bytes."""
    monkeypatch.setenv("MNIST_HPO_STORAGE_DIR", str(tmp_path / "storage"))
    study = optuna.create_study(study_name="s", storage=f"sqlite:///{tmp_path / 'db.sqlite'}")
    figure, other = tmp_path / "loss.png", tmp_path / "other.png"
    figure.write_bytes(b"first")
    other.write_bytes(b"other")
    rename = lambda f: f"s-trial-3-{f.name}"  # noqa: E731
    (first, _) = attach_files(study, [figure, other], rename=rename)
    figure.write_bytes(b"second export")
    (again,) = attach_files(study, [figure], rename=rename)
    metas = get_all_artifact_meta(optuna.load_study(study_name="s", storage=study._storage))
    assert sorted(a.filename for a in metas) == ["s-trial-3-loss.png", "s-trial-3-other.png"]
    assert again == first and (artifacts_dir() / first).read_bytes() == b"second export"
    # A trial's files are its own: a new trial with a file of the same name gets a new artifact.
    trial = study.ask()
    (own,) = attach_files(trial, [figure], rename=rename)
    assert own != first and len(get_all_artifact_meta(trial)) == 1
