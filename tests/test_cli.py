import json

import pytest

from mnist_hpo.cli import main

from .conftest import ROOT


def run(capsys, *argv):
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_study_command_end_to_end(capsys, storage, tmp_path):
    code, out, err = run(capsys, "study", str(ROOT / "studies" / "ae.toml"), "--trials", "2", "--epochs", "1",
                         "--subset", "500", "--study-name", "cli", "--storage", storage, "--quiet")
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


# --- every bad input of issue 6: one line, exit 2, no traceback, nothing stored lost ----------

GOOD = (ROOT / "studies" / "ae.toml").read_text()


def _study_file(tmp_path, old, new):
    assert old in GOOD
    path = tmp_path / "edited.toml"
    path.write_text(GOOD.replace(old, new, 1))
    return str(path)


def _keeper(storage):
    """A study already in the storage, which no bad input may touch."""
    import optuna

    study = optuna.create_study(storage=storage, study_name="keeper")
    study.add_trial(optuna.trial.create_trial(params={"x": 1.0}, distributions={
        "x": optuna.distributions.FloatDistribution(0, 2)}, value=0.5))


def _assert_one_line(code, err, expected):
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mnist-hpo: error: "), err
    assert expected in lines[0], lines[0]
    assert "Traceback" not in err


BAD_STUDY_FILES = [
    ("malformed TOML", "[study]", "[study", "is not valid TOML"),
    ("unknown key", "seed = 2020", "seed = 2020\nsede = 1", "study.sede is not a known key"),
    ("unknown model", 'type = "autoencoder"', 'type = "vae"', "model.type must be one of"),
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
    assert code == 0 and "keeper: 1 trials" in out


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
    study = str(ROOT / "studies" / "ae.toml")
    for url, expected in cases:
        for argv in (("list", "--storage", url), ("study", study, "--storage", url), ("show", "keeper", "--storage", url)):
            code, _, err = run(capsys, *argv)
            _assert_one_line(code, err, expected)
    assert not_sqlite.read_text() == "my notes, not a database"
    with sqlite3.connect(foreign) as db:
        assert db.execute("select name from sqlite_master where type='table'").fetchall() == [("customers",)]
        assert db.execute("select name from customers").fetchall() == [("Ada",)]
    code, out, _ = run(capsys, "list", "--storage", storage)
    assert code == 0 and "keeper: 1 trials" in out


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

    from mnist_hpo.data import sha256_file
    from mnist_hpo.export import EXPORT_FORMAT
    from mnist_hpo.models import Autoencoder

    folder = tmp_path / "trial-0"
    folder.mkdir()
    arch = {"latent_dim": 4, "nh1": 64}
    save_file(Autoencoder(**arch).state_dict(), folder / "model.safetensors")
    meta = {"format": EXPORT_FORMAT, "model": {"type": "autoencoder", "arch": arch},
            "weights": {"file": "model.safetensors", "sha256": sha256_file(folder / "model.safetensors")}}
    (folder / "export.json").write_text(json.dumps(meta))
    weights = bytearray((folder / "model.safetensors").read_bytes())
    weights[-1] ^= 0xFF  # one bit of one weight changed after the export
    (folder / "model.safetensors").write_bytes(bytes(weights))
    code, _, err = run(capsys, "verify", str(folder))
    # The check failed (exit 1), it is no usage mistake (exit 2): one line, both checksums.
    assert code == 1 and err.count("\n") == 1 and err.startswith("mnist-hpo: verify failed: "), err
    assert "differs from the one recorded at export time" in err and "Traceback" not in err


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.20", "::", "example.org"])
def test_dashboard_beyond_loopback_needs_a_flag(capsys, storage, host):
    code, _, err = run(capsys, "dashboard", "--host", host, "--storage", storage)
    _assert_one_line(code, err, "add --allow-remote")


@pytest.mark.slow
def test_rerun_gives_the_same_validation_metric(capsys, storage):
    code, _, err = run(capsys, "study", str(ROOT / "studies" / "ae.toml"), "--trials", "2", "--epochs", "1",
                       "--subset", "500", "--study-name", "again", "--storage", storage, "--quiet", "--no-retrain")
    assert code == 0, err
    for trial in ("0", "1"):
        code, out, err = run(capsys, "rerun", "again", trial, "--storage", storage)
        assert code == 0 and "(identical)" in out, out + err
    code, _, err = run(capsys, "rerun", "again", "7", "--storage", storage)
    _assert_one_line(code, err, "has no finished trial 7")
