"""The command line answers at once: --help, a command's --help and the mistakes found before training
import no torch, Optuna, NumPy or SQLAlchemy (their import is what took ~2.4 s; `make bench`, section
startup, measures the time). Every option says what it is for."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

import pytest

from mnist_hpo.cli import COMMANDS, build_parser, main
from mnist_hpo.commands.parsers import REPRODUCE_PARTS

from .conftest import ROOT, STUDIES

HEAVY = (
    "torch",
    "optuna",
    "numpy",
    "sqlalchemy",
    "matplotlib",
    "sklearn",
    "mnist_hpo.commands.search",
    "mnist_hpo.commands.results",
    "mnist_hpo.commands.runs",
)


def heavy_modules_after(argv: list[str], tmp_path) -> tuple[int, list[str], str]:
    """Run ``main(argv)`` in a fresh interpreter; its exit code, the heavy modules it imported, its stderr."""
    code = (
        f"import sys, json\nfrom mnist_hpo.cli import main\n"
        f"try:\n    rc = main({argv!r})\nexcept SystemExit as e:\n    rc = e.code\n"
        f"print(json.dumps([rc, [m for m in {HEAVY!r} if m in sys.modules]]))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "MNIST_HPO_STORAGE_DIR": str(tmp_path)},
    )
    rc, loaded = json.loads(out.stdout.strip().splitlines()[-1])
    return rc, loaded, out.stderr


def _subcommands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return sub.choices


@pytest.mark.parametrize("argv", [["--help"], *[[name, "--help"] for name in sorted(COMMANDS)]])
def test_help_imports_nothing_heavy(argv, tmp_path):
    rc, loaded, err = heavy_modules_after(argv, tmp_path)
    assert rc == 0 and loaded == [], (loaded, err)


def test_user_errors_before_training_import_nothing_heavy(tmp_path):
    (tmp_path / "nojournals").write_text("")
    good = (STUDIES / "ae.toml").read_text()
    (tmp_path / "typo.toml").write_text(good.replace("epochs = 50", "epoch = 50"))
    (tmp_path / "broken.toml").write_text(good.replace('name = "ae"', 'name = "ae'))
    cases = {
        ("study", str(tmp_path / "typo.toml")): "study.epoch is not a known key",
        ("worker", str(tmp_path / "broken.toml")): "is not valid TOML",
        ("study", "studies/ea.toml"): "study file studies/ea.toml not found",
        ("study", "ea"): "no study 'ea' ships with mnist-hpo; did you mean 'ae'?",
        ("study", "ae", "--subset", "2000"): "give it a name with --study-name",  # the shipped ae, from any folder
        ("study", "ae", "--storage", f"sqlite:///{tmp_path}/typo/studies.db"): f"(mkdir -p {tmp_path}/typo)",
        ("worker", "ae", "--storage", f"journal:{tmp_path}/typo/ae.log"): f"(mkdir -p {tmp_path}/typo)",
        ("worker", str(STUDIES / "ae.toml"), "--storage", "nonsense"): "is malformed",
        ("study", str(STUDIES / "ae.toml"), "--storage", "mysql://u@h/db"): "'mysql' is not supported",
        ("study", str(STUDIES / "ae.toml"), "--subset", "2000"): "give it a name with --study-name",
        ("show", "ae", "--storage", f"sqlite:///{tmp_path}/typo/studies.db"): "does not exist",
        ("show", "ae", "--storage", f"journal:{tmp_path}/typo/ae.log"): "does not exist",
        ("export", "ae"): "no studies yet",
        ("list", "--storage", "sqlite:/x"): "is malformed",
        ("compare", "ae", "--journals", str(tmp_path / "nojournals")): "no such folder",
        ("compare", "ae", "--target", "nan", "--journals", str(ROOT / "results" / "journals")): "finite number",
        ("report", "--study", "ae"): "expected SECTION=NAME",
        ("explore", "--tsne-iter", "10"): "at least 250",
        ("verify", str(tmp_path)): "is not an export",
        ("dashboard", "--host", "0.0.0.0"): "--allow-remote",
        ("data", "--dataset", "cifar"): "unknown dataset",
    }
    for argv, expected in cases.items():
        rc, loaded, err = heavy_modules_after(list(argv), tmp_path)
        assert rc == 2 and err.startswith("mnist-hpo: error: ") and expected in err, (argv, err)
        assert err.count("\n") == 1 and loaded == [], (argv, loaded)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken.toml", "nojournals", "typo.toml"]  # no storage


def test_each_command_body_is_found():
    for name in COMMANDS:
        module, _, function = COMMANDS[name].partition(":")
        assert callable(getattr(__import__(module, fromlist=[function]), function)), name


def test_top_level_help_is_for_users(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "Hyperparameter studies" in out and "mnist-hpo study ae" in out
    assert ":mod:" not in out and "``" not in out  # not the module's docstring


def test_every_option_has_help():
    missing = []
    for name, parser in {"mnist-hpo": build_parser(), **_subcommands()}.items():
        for action in parser._actions:
            if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
                continue
            if not action.help:
                missing.append(f"{name} {'/'.join(action.option_strings) or action.dest}")
    assert missing == []


def test_reproduce_parts_in_the_help_are_the_records():
    from mnist_hpo.workflows.record import PARTS

    assert ",".join(PARTS) == REPRODUCE_PARTS


MINIMAL_ARGV = {
    "study": ["ae"],
    "worker": ["ae"],
    "export": ["x"],
    "show": ["x"],
    "compare": ["x"],
    "rerun": ["x", "0"],
    "verify": ["p"],
    "delete": ["x"],
    "compact": ["p"],
}


def test_every_option_reaches_the_commands_typed_arguments():
    """What cli.typed makes of each command's parse: its class, with every option parsed (none dropped on the way)."""
    import dataclasses

    from mnist_hpo.cli import typed
    from mnist_hpo.commands.args import ARGS
    from mnist_hpo.core.settings import flags_on

    for name in COMMANDS:
        args = build_parser().parse_args([name, *MINIMAL_ARGV.get(name, [])])
        settings = typed(args)
        assert type(settings) is ARGS[name], name
        fields = {f.name for f in dataclasses.fields(settings)}
        # the setting flags are gathered into overrides; --trust-plugin is acted on by cli.main itself
        options = set(vars(args)) - {"command", "trust_plugin"} - {s.key for s, _ in flags_on(name)}
        assert options <= fields, (name, options - fields)
        assert ("overrides" in fields) == bool(flags_on(name)), name
