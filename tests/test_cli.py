import json

import pytest

from mnist_hpo.cli import main

from .conftest import DATA, ROOT, STUDIES


def run(capsys, *argv):
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.mark.mnist  # trains on the MNIST cache through the CLI
def test_study_command_end_to_end(capsys, storage, tmp_path):
    code, out, err = run(
        capsys,
        "study",
        str(STUDIES / "ae.toml"),
        "--trials",
        "2",
        "--epochs",
        "1",
        "--subset",
        "500",
        "--study-name",
        "cli",
        "--storage",
        storage,
        "--quiet",
    )
    assert code == 0, err
    assert "Enc. Space Dim." in out and "Valid. loss" in out
    assert "test_mse" in out and "exported to" in out
    folder = out.rsplit("exported to ", 1)[1].strip()
    meta = json.loads((tmp_path / "storage" / "exports" / "cli" / folder.rsplit("/", 1)[1] / "export.json").read_text())
    assert meta["study"] == "cli"

    code, out, _ = run(capsys, "show", "cli", "--storage", storage)
    assert code == 0 and "2 complete" in out
    code, out, _ = run(capsys, "list", "--storage", storage)
    assert code == 0 and "cli: 2 trials" in out


def test_user_errors_are_one_line_exit_2(capsys, storage, tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[study]\nname = 'x'\ntrials = 0\n[model]\ntype='autoencoder'\n")
    cases = [
        ("study", str(bad), "--storage", storage),
        ("study", "studies/missing.toml"),
        ("export", "nothing", "--storage", storage),
        ("show", "nothing", "--storage", storage),
        ("list", "--storage", "nonsense://"),
        ("dashboard", "--host", "0.0.0.0", "--storage", storage),
    ]
    for argv in cases:
        code, out, err = run(capsys, *argv)
        assert code == 2, argv
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("mnist-hpo: error: "), (argv, err)
        assert "Traceback" not in err


def test_bad_arguments_exit_2(capsys):
    code, _, err = run(capsys, "study", "ae", "--trials", "zero")
    assert code == 2 and "expected a whole number" in err


@pytest.mark.parametrize(
    "argv,expected",
    [
        (
            ("study", "ae", "--trails", "5"),
            "unrecognized arguments for study: --trails 5; did you mean --trials? "
            "'mnist-hpo study --help' lists its options",
        ),
        (("study", "ae", "--trails=5"), "did you mean --trials?"),
        (("worker", "ae", "--max-trails", "2"), "did you mean --max-trials?"),
        (("export", "ae", "--trail", "3"), "did you mean --trial?"),
        (
            ("show", "ae", "--colour"),
            "unrecognized argument for show: --colour; 'mnist-hpo show --help' lists its options",
        ),
        (("show", "ae", "extra"), "unrecognized argument for show: extra;"),
    ],
)
def test_a_mistyped_flag_names_the_closest_option(capsys, argv, expected):
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == "" and "usage:" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mnist-hpo: error: ") and expected in lines[0], err


def test_a_new_meaning_suggests_a_name_from_the_studys_own(capsys, tmp_path):
    """The file int.toml holds the study mlpae-int: the suggested name grows from the study's name."""
    path = tmp_path / "int.toml"
    path.write_text(GOOD.replace('name = "ae"', 'name = "mlpae-int"', 1))
    code, _, err = run(capsys, "study", str(path), "--epochs", "3")
    assert code == 2 and err.count("\n") == 1, err
    assert "--study-name mlpae-int-short (the study 'mlpae-int' keeps its settings)" in err, err


def test_ctrl_c_in_the_final_retrain_says_what_happened(capsys, storage, monkeypatch):
    """Ctrl-C after the search of `study --workers 2`, while the best trial is retrained: no trial was
    running, so none was queued again; the line says the retrain stopped, the trials are kept, and how to
    export later."""
    import optuna

    from mnist_hpo.commands import search

    def searched(args, cfg, workers):  # the workers' search, done: two complete trials
        study = optuna.create_study(storage=storage, study_name=cfg.name)
        for value, lr in ((0.03, 1e-3), (0.02, 2e-3)):
            study.add_trial(
                optuna.trial.create_trial(
                    params={"lr": lr},
                    distributions={"lr": optuna.distributions.FloatDistribution(1e-4, 1e-2)},
                    value=value,
                )
            )
        return study

    def retrain(*args, **kwargs):
        raise KeyboardInterrupt  # what Ctrl-C raises in the retrain

    monkeypatch.setattr(search, "run_workers", searched)
    monkeypatch.setattr(search, "export_or_reuse", retrain)
    code, _, err = run(capsys, "study", "ae", "--trials", "2", "--workers", "2", "--storage", storage, "--quiet")
    assert code == 130 and "queued again" not in err, err
    assert err.strip() == (
        f"mnist-hpo: interrupted; the retrain of best trial 1 stopped before it was exported; "
        f"study ae keeps all 2 trials; run the same command again, or "
        f"'mnist-hpo export ae --storage {storage}', to retrain and export it"
    ), err


# --- every bad input a user can give: one line, exit 2, no traceback, nothing stored lost ----

GOOD = (STUDIES / "ae.toml").read_text()


def _study_file(tmp_path, old, new):
    assert old in GOOD
    path = tmp_path / "edited.toml"
    path.write_text(GOOD.replace(old, new, 1))
    return str(path)


def _keeper(storage):
    """A study already in the storage, which no bad input may touch."""
    import optuna

    study = optuna.create_study(storage=storage, study_name="keeper")
    study.add_trial(
        optuna.trial.create_trial(
            params={"x": 1.0}, distributions={"x": optuna.distributions.FloatDistribution(0, 2)}, value=0.5
        )
    )


def _assert_one_line(code, err, expected):
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mnist-hpo: error: "), err
    assert expected in lines[0], lines[0]
    assert "Traceback" not in err


BAD_STUDY_FILES = [
    ("malformed TOML", "[study]", "[study", "is not valid TOML"),
    ("unknown key", "seed = 2020", "seed = 2020\nsede = 1", "study.sede is not a known key"),
    ("unknown model", 'type = "autoencoder"', 'type = "no-such-model"', "model.type must be one of"),
    ("unknown sampler", 'type = "random"', 'type = "cmaes"', "sampler.type must be one of"),
    ("unknown pruner", 'type = "none"', 'type = "patient"', "pruner.type must be one of"),
    ("out of range", "val_fraction = 0.2", "val_fraction = 0.0", "study.val_fraction must be between 0 and 1"),
    ("out of range", "epochs = 50", "epochs = 0", "study.epochs must be at least 1"),
    ("wrong type", "trials = 50", 'trials = "fifty"', "study.trials must be an integer"),
    ("wrong type", "batch_size = 256", "batch_size = 25.6", "study.batch_size must be an integer"),
]


@pytest.mark.parametrize("what,old,new,expected", BAD_STUDY_FILES, ids=[c[0] for c in BAD_STUDY_FILES])
def test_bad_study_files(capsys, storage, tmp_path, what, old, new, expected):
    _keeper(storage)
    code, _, err = run(capsys, "study", _study_file(tmp_path, old, new), "--storage", storage)
    _assert_one_line(code, err, expected)
    code, out, _ = run(capsys, "list", "--storage", storage)
    assert code == 0 and "keeper: 1 trial," in out


def test_bad_storage(capsys, storage, tmp_path):
    import sqlite3

    _keeper(storage)
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    not_sqlite = tmp_path / "notes.db"
    not_sqlite.write_text("my notes, not a database")
    foreign = tmp_path / "shop.db"
    with sqlite3.connect(foreign) as db:
        db.execute("create table customers (id integer primary key, name text)")
        db.execute("insert into customers (name) values ('Ada')")
    cases = [
        ("nonsense", "is malformed"),
        ("sqlite:/relative?x", "is malformed"),
        ("mysql://u@h/db", "storage backend 'mysql' is not supported"),
        ("postgresql+psycopg://postgres@127.0.0.1:1/none", "cannot open storage"),
        # Root can write anywhere, so an unwritable folder is one that cannot exist: under a regular file.
        (f"sqlite:///{blocker}/studies/mnist_hpo.db", "cannot create the storage folder"),
        (f"sqlite:///{not_sqlite}", "is not a SQLite database"),
        (f"sqlite:///{foreign}", "is not an Optuna database (it holds other tables: customers)"),
    ]
    study = str(STUDIES / "ae.toml")
    for url, expected in cases:
        for argv in (
            ("list", "--storage", url),
            ("study", study, "--storage", url),
            ("show", "keeper", "--storage", url),
        ):
            code, _, err = run(capsys, *argv)
            # A command that only reads says a missing database is missing; it never creates one.
            _assert_one_line(code, err, "does not exist" if "a-file" in url and argv[0] != "study" else expected)
    assert not_sqlite.read_text() == "my notes, not a database"
    with sqlite3.connect(foreign) as db:
        assert db.execute("select name from sqlite_master where type='table'").fetchall() == [("customers",)]
        assert db.execute("select name from customers").fetchall() == [("Ada",)]
    code, out, _ = run(capsys, "list", "--storage", storage)
    assert code == 0 and "keeper: 1 trial," in out


@pytest.mark.postgres
def test_postgres_database_of_another_application(capsys, pg_database):
    import sqlalchemy

    url = pg_database("foreign")
    engine = sqlalchemy.create_engine(url)
    with engine.begin() as c:
        c.exec_driver_sql("create table invoices (id serial primary key, total numeric)")
        c.exec_driver_sql("insert into invoices (total) values (12.5)")
    code, _, err = run(capsys, "list", "--storage", url)
    _assert_one_line(code, err, "is not an Optuna database (it holds other tables: invoices)")
    with engine.connect() as c:
        assert sorted(sqlalchemy.inspect(c).get_table_names()) == ["invoices"]
        assert c.exec_driver_sql("select total from invoices").scalar() == 12.5
    engine.dispose()


def test_missing_or_corrupt_dataset(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("MNIST_HPO_DATA", str(tmp_path / "cache"))  # no cache: the IDX folder is read
    code, _, err = run(capsys, "data", "--idx-dir", str(tmp_path / "nowhere"))
    _assert_one_line(code, err, "point idx_dir at a folder with the four IDX files")
    idx = tmp_path / "idx"
    idx.mkdir()
    (idx / "train-images-idx3-ubyte").write_bytes(b"\x00\x00\x08\x03\x00\x00\x00\x05")  # header cut short
    code, _, err = run(capsys, "data", "--idx-dir", str(idx))
    _assert_one_line(code, err, "is truncated")
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "mnist.npz").write_bytes(b"garbage")
    (cache / "mnist.json").write_text('{"file_sha256": "0000", "content_sha256": "0000"}')
    code, _, err = run(capsys, "data")
    _assert_one_line(code, err, "does not match its checksum")


def test_export_without_a_complete_trial(capsys, storage):
    import optuna

    study = optuna.create_study(storage=storage, study_name="all-failed")
    study.add_trial(optuna.trial.create_trial(state=optuna.trial.TrialState.FAIL))
    code, _, err = run(capsys, "export", "all-failed", "--storage", storage)
    _assert_one_line(code, err, "has no complete trial yet")


def test_export_with_changed_weights(capsys, tmp_path):
    from safetensors.torch import save_file

    from mnist_hpo.artifacts.folders import EXPORT_FORMAT
    from mnist_hpo.data.integrity import sha256_file
    from mnist_hpo.models import Autoencoder

    folder = tmp_path / "trial-0"
    folder.mkdir()
    arch = {"latent_dim": 4, "nh1": 64}
    save_file(Autoencoder(**arch).state_dict(), folder / "model.safetensors")
    meta = {
        "format": EXPORT_FORMAT,
        "model": {"type": "autoencoder", "arch": arch},
        "weights": {"file": "model.safetensors", "sha256": sha256_file(folder / "model.safetensors")},
    }
    (folder / "export.json").write_text(json.dumps(meta))
    weights = bytearray((folder / "model.safetensors").read_bytes())
    weights[-1] ^= 0xFF  # one bit of one weight changed after the export
    (folder / "model.safetensors").write_bytes(bytes(weights))
    code, _, err = run(capsys, "verify", str(folder))
    # The check failed (exit 1), it is no usage mistake (exit 2): one line, both checksums.
    assert code == 1 and err.count("\n") == 1 and err.startswith("mnist-hpo: verify failed: "), err
    assert "differs from the one recorded at export time" in err and "Traceback" not in err


@pytest.mark.parametrize(
    "module, argv, extra",
    [
        ("psycopg", ["list", "--storage", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"], "postgres"),
        ("optuna_dashboard", ["dashboard"], "dashboard"),
    ],
)
def test_missing_optional_extra_is_one_line(capsys, storage, monkeypatch, module, argv, extra):
    """Without an optional extra installed, the command that needs it says which one and how to install it."""
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == module else real(name, *a))
    if "--storage" not in argv:
        argv = [*argv, "--storage", storage]
    code, _, err = run(capsys, *argv)
    _assert_one_line(code, err, f"pip install 'mnist-hpo[{extra}]'")


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.20", "::", "example.org"])
def test_dashboard_beyond_loopback_needs_a_flag(capsys, storage, host):
    code, _, err = run(capsys, "dashboard", "--host", host, "--storage", storage)
    _assert_one_line(code, err, "add --allow-remote")


def test_dashboard_on_a_port_in_use_is_one_line(capsys, storage):
    import signal
    import socket

    import optuna

    optuna.create_study(storage=storage, study_name="shown")
    capsys.readouterr()  # Optuna's own line about it
    handlers = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, _, err = run(capsys, "dashboard", "--storage", storage, "--port", str(port))
    _assert_one_line(code, err, f"port {port} on 127.0.0.1 is in use; pick another with --port N")
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == handlers  # restored


@pytest.mark.slow
def test_rerun_gives_the_same_validation_metric(capsys, storage):
    code, _, err = run(
        capsys,
        "study",
        str(STUDIES / "ae.toml"),
        "--trials",
        "2",
        "--epochs",
        "1",
        "--subset",
        "500",
        "--study-name",
        "again",
        "--storage",
        storage,
        "--quiet",
        "--no-retrain",
    )
    assert code == 0, err
    for trial in ("0", "1"):
        code, out, err = run(capsys, "rerun", "again", trial, "--storage", storage)
        assert code == 0 and "(identical)" in out, out + err
    code, _, err = run(capsys, "rerun", "again", "7", "--storage", storage)
    _assert_one_line(code, err, "has no finished trial 7")


# --- bad inputs that used to create studies, train or mix trials before they were refused -----
# Each case runs through cli.main; each must print exactly one line (stdout and stderr
# together), exit 2, show no traceback and leave the storage exactly as it was (every
# study's attributes and trials, and the files beside the database). `make reliability`
# collects the RELIABILITY line each case prints (RELIABILITY.md, "Bad inputs tried").

from .test_config import BAD_SPACES  # noqa: E402  (the same edits, here through the command line)

RESUME_ARGS = (
    "--study-name",
    "resumed",
    "--subset",
    "2000",
    "--trials",
    "2",
    "--epochs",
    "1",
    "--quiet",
    "--no-retrain",
)
DAE_TEXT = (STUDIES / "dae.toml").read_text()


def _resume(old, new, expected, *flags, base=GOOD):
    return ("study", base, old, new, (*RESUME_ARGS, *flags), expected)  # the later flag wins


ISSUE_11_CASES = {
    **{f"space: {what}": ("study", base, old, new, (), message) for what, base, old, new, message in BAD_SPACES},
    "--device cuda without CUDA": (
        "study",
        GOOD,
        "",
        "",
        ("--device", "cuda"),
        "--device cuda: no CUDA device on this machine",
    ),
    "study.device = cuda without CUDA": (
        "study",
        GOOD,
        "seed = 2020",
        'seed = 2020\ndevice = "cuda"',
        (),
        "study.device 'cuda': no CUDA device on this machine",
    ),
    "worker --device cuda without CUDA": ("worker", GOOD, "", "", ("--device", "cuda"), "no CUDA device"),
    "--device cuda:3 with 1 GPU": (
        "study",
        GOOD,
        "",
        "",
        ("--device", "cuda:3", "cuda-count=1"),
        "--device cuda:3: this machine has 1 CUDA device (cuda:0 to cuda:0)",
    ),
    "gan --device cuda without CUDA": (
        "gan",
        (STUDIES / "gan.toml").read_text(),
        "",
        "",
        ("--device", "cuda"),
        "--device cuda: no CUDA device",
    ),
    "resume: --subset 500": _resume("", "", "study.train_subset: stored 2000, now 500", "--subset", "500"),
    "resume: --epochs 2": _resume("", "", "study.epochs: stored 1, now 2", "--epochs", "2"),
    "resume: batch_size": _resume("batch_size = 256", "batch_size = 128", "study.batch_size: stored 256, now 128"),
    "resume: val_fraction": _resume(
        "val_fraction = 0.2", "val_fraction = 0.25", "study.val_fraction: stored 0.2, now 0.25"
    ),
    "resume: seed": _resume("seed = 2020", "seed = 1", "study.seed: stored 2020, now 1"),
    "resume: test_subset": _resume(
        "val_fraction = 0.2", "val_fraction = 0.2\ntest_subset = 100", "study.test_subset: stored null, now 100"
    ),
    "resume: sampler": _resume('type = "random"', 'type = "tpe"', 'sampler.type: stored "random", now "tpe"'),
    "resume: pruner": _resume('type = "none"', 'type = "median"', 'pruner.type: stored "none", now "median"'),
    "resume: search space": _resume(
        "choices = [2, 3, 4, 5, 6, 7, 8, 9]",
        "choices = [2, 3]",
        "space.latent_dim: stored [2, 3, 4, 5, 6, 7, 8, 9], now [2, 3]",
    ),
    "resume: model option (noise)": _resume(
        'noise = "gaussian"', 'noise = "mix"', 'model.noise: stored "gaussian", now "mix"', base=DAE_TEXT
    ),
}


def _storage_files(root):
    return sorted(str(p.relative_to(root)) for p in root.rglob("*")) if root.exists() else []


# the resume cases first create a study on the MNIST cache
@pytest.mark.parametrize(
    "case", [pytest.param(c, marks=pytest.mark.mnist) if c.startswith("resume:") else c for c in ISSUE_11_CASES]
)
def test_issue_11_bad_inputs(case, capsys, storage, tmp_path, monkeypatch):
    import torch

    from mnist_hpo.config import load_study_config
    from mnist_hpo.hpo.identity import open_study
    from mnist_hpo.storages import open_storage

    from .conftest import storage_snapshot

    command, base, old, new, flags, expected = ISSUE_11_CASES[case]
    assert old in base
    original, edited = tmp_path / "original.toml", tmp_path / "edited.toml"
    original.write_text(base)
    edited.write_text(base.replace(old, new, 1))
    _keeper(storage)
    if case.startswith("resume"):  # the study as the first run made it, with --subset 2000 --epochs 1
        cfg = load_study_config(original).with_overrides(name="resumed", train_subset=2000, trials=2, epochs=1)
        open_study(cfg, open_storage(storage))
    count = [f.split("=")[1] for f in flags if f.startswith("cuda-count=")]
    flags = tuple(f for f in flags if not f.startswith("cuda-count="))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: bool(count))  # the same on a machine with GPUs
    monkeypatch.setattr(torch.cuda, "device_count", lambda: int(count[0]) if count else 0)
    monkeypatch.setenv("MNIST_HPO_DATA", str(DATA))
    before, files_before = storage_snapshot(storage), _storage_files(tmp_path / "storage")

    # Short-run flags first (the case's own flags win): a regression would train minutes, not hours.
    short = (
        ("--epochs", "1", "--subset", "100")
        if command == "gan"
        else ("--trials", "1", "--epochs", "1", "--subset", "100", "--study-name", "short", "--quiet")
        + (("--no-retrain",) if command == "study" else ())
    )
    argv = [command, str(edited), *short, *flags] + (["--storage", storage] if command != "gan" else [])
    code, out, err = run(capsys, *argv)
    lines = (out + err).strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("mnist-hpo: error: "), (code, out, err)
    assert expected in lines[0], lines[0]
    assert "Traceback" not in out + err
    unchanged = storage_snapshot(storage) == before and _storage_files(tmp_path / "storage") == files_before
    assert unchanged
    with capsys.disabled():
        print(
            f"\nRELIABILITY bad-input case={case!r} exit={code} lines={len(lines)} "
            f"tracebacks={(out + err).count('Traceback')} storage={'unchanged' if unchanged else 'CHANGED'}"
        )


def test_output_into_a_closed_pipe_ends_quietly(tmp_path):
    """`mnist-hpo show ae | head`: the reader went away; no traceback about it."""
    import subprocess
    import sys

    (tmp_path / "j.log").touch()  # an empty journal: list reads it (a missing one would be an error)
    proc = subprocess.Popen(
        [sys.executable, "-m", "mnist_hpo", "list", "--storage", f"journal:{tmp_path / 'j.log'}"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    proc.stdout.close()  # before it prints anything: it starts in about a second
    err = proc.communicate(timeout=120)[1].decode()
    assert proc.returncode == 141 and "Traceback" not in err and "BrokenPipe" not in err, err
