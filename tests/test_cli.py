import json

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
