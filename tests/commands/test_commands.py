"""What the commands say and leave behind: counts in agreement, read-only commands that create nothing,
`delete` that says what it removes and removes it, `make compare` that works with no arguments, a
dashboard that stops when asked."""

from __future__ import annotations

import signal
import subprocess
import time

import optuna
import pytest

from mnist_hpo.cli import build_parser, main
from mnist_hpo.hpo.run import run_study

from ..conftest import ROOT, start_dashboard


def run(capsys, *argv):
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_list_counts_in_agreement(capsys, storage, ae_cfg, tiny):
    run_study(ae_cfg.with_overrides(trials=1), storage_url=storage, data=tiny, progress=False)
    optuna.create_study(study_name="empty", storage=storage)
    optuna.create_study(study_name="front", storage=storage, directions=["minimize", "minimize"])
    code, out, _ = run(capsys, "list", "--storage", storage)
    lines = dict(line.split(": ", 1) for line in out.splitlines())
    assert code == 0 and lines[ae_cfg.name].startswith("1 trial, best ")
    assert lines["empty"] == "0 trials, no complete trial"  # not "1 objectives"
    assert lines["front"].startswith("0 trials, 2 objectives")


def test_read_only_commands_create_no_storage(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("MNIST_HPO_STORAGE_DIR", str(tmp_path / "storage"))
    monkeypatch.delenv("MNIST_HPO_STORAGE", raising=False)
    typo = tmp_path / "typo"
    for url in (f"sqlite:///{typo}/studies.db", f"journal:{typo}/ae.log"):
        for argv in (
            ["show", "ae"],
            ["list"],
            ["compare", "ae"],
            ["export", "ae"],
            ["delete", "ae", "--yes"],
            ["rerun", "ae", "0"],
            ["report"],
            ["dashboard"],
        ):
            code, out, err = run(capsys, *argv, "--storage", url)
            assert code == 2 and "does not exist" in err and err.count("\n") == 1, (argv, err)
    assert list(tmp_path.iterdir()) == []
    code, out, err = run(capsys, "list")  # the default storage before the first study
    assert code == 0 and out.startswith("no studies yet") and list(tmp_path.iterdir()) == []
    code, _, err = run(capsys, "compare", "ae")
    assert code == 2 and "--journals results/journals" in err


def test_delete_says_what_it_removes_and_removes_it(capsys, storage, ae_cfg, tiny, tmp_path):
    from mnist_hpo.artifacts.export import export_best
    from mnist_hpo.storages import artifacts_dir, exports_dir

    run_study(ae_cfg.with_overrides(trials=2), storage_url=storage, data=tiny, progress=False)
    folder = export_best(ae_cfg.name, storage_url=storage, data=tiny, progress=False)
    keep = ae_cfg.with_overrides(study_name="keep", trials=1)
    run_study(keep, storage_url=storage, data=tiny, progress=False)
    kept_files = sorted(p.name for p in artifacts_dir().iterdir())
    ours = [
        a.artifact_id
        for a in optuna.artifacts.get_all_artifact_meta(optuna.load_study(study_name=ae_cfg.name, storage=storage))
    ]
    assert folder.exists() and ours and set(ours) <= set(kept_files)

    code, out, err = run(capsys, "delete", ae_cfg.name, "--storage", storage, "--yes")
    assert code == 0, err
    assert f"deleted study '{ae_cfg.name}' with its 2 trials, 1 export under {exports_dir() / ae_cfg.name}" in out
    assert "attached files under" in out
    assert not (exports_dir() / ae_cfg.name).exists()
    left = sorted(p.name for p in artifacts_dir().iterdir())
    assert not set(ours) & set(left) and len(left) < len(kept_files)
    # the other study and its files are untouched
    other = optuna.load_study(study_name="keep", storage=storage)
    for t in other.trials:
        for a in optuna.artifacts.get_all_artifact_meta(t, storage=other._storage):
            assert a.artifact_id in left
    assert [s.study_name for s in optuna.get_all_study_summaries(storage)] == ["keep"]


def test_make_compare_with_no_arguments_compares_the_record():
    out = subprocess.run(["make", "-n", "compare"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    line = [x for x in out.stdout.splitlines() if "-m mnist_hpo compare" in x][-1]
    argv = line.split("-m mnist_hpo ", 1)[1].split()
    args = build_parser().parse_args(argv)
    assert args.journals == "results/journals"
    for name in args.studies:
        assert (ROOT / "results" / "journals" / f"{name}.log").exists(), name


def test_counts_agree_with_their_nouns(capsys, ae_cfg):
    import doctest

    from mnist_hpo.core.space import resolve_space
    from mnist_hpo.hpo.samplers import GridCoverage
    from mnist_hpo.hpo.suggestions import print_space
    from mnist_hpo.report import formatting
    from mnist_hpo.report.formatting import count

    assert doctest.testmod(formatting).failed == 0
    assert (count(1, "trial"), count(2, "trial"), count(60000, "image")) == ("1 trial", "2 trials", "60,000 images")
    print_space(ae_cfg.with_overrides(trials=1), resolve_space(ae_cfg.space, ae_cfg.seed))  # 1 trial x 1 epoch
    assert "1 trial x 1 epoch," in capsys.readouterr().out
    assert "1 duplicate trial, 1 point re-run" in str(GridCoverage(points=4, covered=2, duplicates=1, reruns=1))


# The dashboard is to exit within 1 s of SIGTERM or Ctrl-C; the test allows 3 s, for a loaded machine
# (it took 5-9 s before: the interpreter's teardown after torch, Optuna and SQLAlchemy).
DASHBOARD_STOP_SECONDS = 3.0


@pytest.mark.processes
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "Ctrl-C"])
def test_the_dashboard_stops_within_a_second_of_being_asked(tmp_path, signum):
    storage = f"sqlite:///{tmp_path / 'studies.db'}"
    optuna.create_study(storage=storage, study_name="shown")
    # Ctrl-C as from a terminal, even where this test runs with SIGINT ignored (a background job).
    proc, _ = start_dashboard(storage, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        asked = time.monotonic()
        proc.send_signal(signum)
        proc.wait(timeout=60)
        took = time.monotonic() - asked
    finally:
        if proc.poll() is None:
            proc.kill()
        err = proc.communicate()[1].decode()
    assert proc.returncode == 0 and "Traceback" not in err, err
    assert took < DASHBOARD_STOP_SECONDS, f"the dashboard took {took:.1f} s to stop"
