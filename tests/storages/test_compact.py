import optuna
import pytest
from optuna.trial import TrialState

from mnist_hpo.cli import main
from mnist_hpo.errors import UserError
from mnist_hpo.storages import OWNER, open_journal, this_process
from mnist_hpo.storages import _compact as compact


def _journal_with_rewrites(path, *, running=False):
    study = optuna.create_study(study_name="s", storage=open_journal(f"journal:{path}"))
    for n in range(3):
        trial = study.ask()
        trial.suggest_float("x", 0, 1)
        curve = []
        for epoch in range(5):  # a curve re-stored each epoch, as older versions did
            curve.append(epoch / 10)
            trial.set_user_attr("train_loss", list(curve))
            trial.report(epoch / 10, epoch)
        study.tell(trial, n / 10)
    if running:
        trial = study.ask()
        trial.set_user_attr(OWNER, this_process())
    return study


def _trials(path):
    return optuna.load_study(study_name="s", storage=open_journal(f"journal:{path}")).get_trials()


def test_compaction_keeps_every_trial_and_drops_superseded_writes(tmp_path):
    path = tmp_path / "s.log"
    _journal_with_rewrites(path)
    before, size = _trials(path), path.stat().st_size
    c = compact.compact_journal(path)
    assert c.dropped == 3 * 4 and c.bytes_after == path.stat().st_size < size
    after = _trials(path)
    assert after == before and [t.user_attrs["train_loss"] for t in after] == [[0, 0.1, 0.2, 0.3, 0.4]] * 3
    assert compact.compact_journal(path).dropped == 0  # a second pass has nothing left to drop
    print(
        f"\nRELIABILITY compact backend=journal trials={len(after)} identical=True dropped={c.dropped} "
        f"bytes={size}->{c.bytes_after}"
    )
    study = optuna.load_study(study_name="s", storage=open_journal(f"journal:{path}"))
    study.tell(study.ask(), 0.5)  # the compacted journal takes new trials
    assert len(_trials(path)) == 4


def test_a_compaction_that_would_change_a_trial_leaves_the_file(tmp_path, monkeypatch):
    path = tmp_path / "s.log"
    _journal_with_rewrites(path)
    text = path.read_text()
    lines = text.splitlines()
    last_curve = max(i for i, line in enumerate(lines) if '"train_loss"' in line)
    monkeypatch.setattr(compact, "superseded_lines", lambda lines: {last_curve})
    with pytest.raises(UserError, match="would not load the same trials"):
        compact.compact_journal(path)
    assert path.read_text() == text
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".compact")]  # no temporary file left
    print("\nRELIABILITY compact-mismatch backend=journal refused=True journal=unchanged temp_files=0")


def test_compaction_refuses_while_a_trial_runs_here(tmp_path, capsys):
    path = tmp_path / "s.log"
    _journal_with_rewrites(path, running=True)
    text = path.read_text()
    assert main(["compact", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "trial 3 is running in a live process" in err
    assert path.read_text() == text and _trials(path)[3].state == TrialState.RUNNING
    print("\nRELIABILITY compact-running backend=journal refused=True lines=1 journal=unchanged")


def test_compact_cli(tmp_path, capsys):
    path = tmp_path / "s.log"
    _journal_with_rewrites(path)
    assert main(["compact", str(path)]) == 0
    assert "12 superseded writes dropped; the same trials" in capsys.readouterr().out
    assert main(["compact", str(tmp_path / "missing.log")]) == 2
    assert "does not exist" in capsys.readouterr().err
