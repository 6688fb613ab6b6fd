"""The documentation: README and docs/ build as a site, and what they say matches the code.

`mkdocs build --strict` fails on a broken link or a page missing from the navigation; every
`mnist-hpo …` and `make …` line in README, the record's page and docs/ must parse with the CLI's
parser or name a Makefile target; every flag of the parser and every key a study file accepts must
be on its page; README stays short; the figures are the record's; the Python example runs.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from mnist_hpo.errors import UserError

from ..conftest import STUDIES

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
PAGES = [ROOT / "README.md", ROOT / "results" / "README.md", *sorted(DOCS.glob("*.md"))]
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)
SPAN = re.compile(r"`((?:mnist-hpo|make) [^`]+)`")
SHELL = {"", "sh", "bash", "console", "shell"}


def build_site(out: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    return subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(ROOT / "mkdocs.yml"), "-d", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


def test_the_site_builds_strictly(tmp_path):
    out = build_site(tmp_path / "site")
    assert out.returncode == 0, out.stderr[-3000:]
    for page in [
        "index.html",
        "study-files/index.html",
        "cli/index.html",
        "results/index.html",
        "BENCHMARKS/index.html",
    ]:
        assert (tmp_path / "site" / page).stat().st_size > 5000, page


def test_a_broken_link_fails_the_build(tmp_path):
    """The strict build is what catches a broken link: shown on a copy of the docs with one added."""
    import shutil

    copy = tmp_path / "repo"
    shutil.copytree(DOCS, copy / "docs")
    shutil.copytree(ROOT / "tools", copy / "tools")
    for name in ["mkdocs.yml", "BENCHMARKS.md", "RELIABILITY.md"]:
        shutil.copy(ROOT / name, copy / name)
    (copy / "results").mkdir()
    shutil.copy(ROOT / "results" / "README.md", copy / "results" / "README.md")
    with (copy / "docs" / "record.md").open("a") as f:
        f.write("\n[a page that does not exist](no-such-page.md)\n")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    out = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(tmp_path / "site")],
        cwd=copy,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert out.returncode != 0 and "no-such-page.md" in out.stderr


def test_readme_is_at_most_250_lines():
    assert len((ROOT / "README.md").read_text().splitlines()) <= 250


# --- every command line in the docs parses ---------------------------------------------------------


def command_lines(text: str) -> list[str]:
    """The shell commands a page shows: lines of shell code blocks, and `mnist-hpo …`/`make …` code spans."""
    found = []
    for lang, body in FENCE.findall(text):
        if lang in SHELL:
            for line in body.splitlines():
                line = re.sub(r"(^|\s)#.*$", "", line).strip()
                for part in re.split(r"\s*(?:;|&&|\|\|?)\s*", line):
                    found.append(part.strip().rstrip("&").strip())
    without_fences = FENCE.sub("", text)
    found += [m.group(1) for m in SPAN.finditer(without_fences.replace("\n", " "))]
    return [c for c in found if c]


def make_targets() -> set[str]:
    return set(re.findall(r"^([a-zA-Z][\w-]*):", (ROOT / "Makefile").read_text(), re.M))


def check_command(command: str, parser, targets: set[str]) -> str | None:
    """None when the command parses (or is not ours), else why not."""
    words = shlex.split(command)
    while words and re.match(r"^[A-Z_][A-Z0-9_]*=", words[0]):  # VAR=value before the command
        words.pop(0)
    if not words:
        return None
    if words[0] == "mnist-hpo":
        try:
            parser.parse_args(words[1:])
        except SystemExit as e:
            return None if e.code == 0 else "the CLI's parser refuses it"
        return None
    if words[0] == "make":
        wanted = [w for w in words[1:] if not w.startswith("-") and "=" not in w]
        missing = [w for w in wanted if w not in targets]
        return f"no Makefile target {missing}" if missing or not wanted else None
    return None


def test_every_command_in_readme_and_docs_parses(capsys):
    from mnist_hpo.cli import build_parser

    parser, targets = build_parser(), make_targets()
    seen, bad = 0, []
    for page in PAGES:
        for command in command_lines(page.read_text()):
            if command.split()[0] not in ("mnist-hpo", "make") and not re.match(
                r"^[A-Z_]+=\S+ (mnist-hpo|make) ", command
            ):
                continue
            seen += 1
            why = check_command(command, parser, targets)
            if why:
                bad.append(f"{page.relative_to(ROOT)}: {command!r}: {why}")
    capsys.readouterr()  # argparse's own messages
    assert seen > 50, seen
    assert not bad, "\n".join(bad)


def test_the_command_check_refuses_what_does_not_parse():
    from mnist_hpo.cli import build_parser

    parser, targets = build_parser(), make_targets()
    assert check_command("mnist-hpo export ae --trial N", parser, targets)
    assert check_command("mnist-hpo stduy ae", parser, targets)
    assert check_command("make study-ea", parser, targets)
    assert check_command("mnist-hpo export ae --trial 7", parser, targets) is None
    assert check_command("MNIST_HPO_WORKERS=2 mnist-hpo worker ae", parser, targets) is None
    assert check_command("make study-ae WORKERS=2", parser, targets) is None
    assert command_lines("```sh\nmake setup data   # once\nwait; mnist-hpo show ae\n```\n") == [
        "make setup data",
        "wait",
        "mnist-hpo show ae",
    ]


# --- every flag and every study-file key is documented -------------------------------------------


def section(text: str, heading: str) -> str:
    """The text from the heading line `heading` to the next heading of the same or a higher level."""
    lines = text.splitlines()
    start = lines.index(heading)
    level = len(heading) - len(heading.lstrip("#"))
    end = next(
        (
            i
            for i in range(start + 1, len(lines))
            if lines[i].startswith("#") and len(lines[i]) - len(lines[i].lstrip("#")) <= level
        ),
        len(lines),
    )
    return "\n".join(lines[start:end])


def test_every_command_and_flag_is_on_the_cli_page():
    import argparse

    from mnist_hpo.cli import build_parser

    page = (DOCS / "cli.md").read_text()
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    missing = []
    for name, parser in sub.choices.items():
        heading = f"### mnist-hpo {name}"
        if heading not in page.splitlines():
            missing.append(heading)
            continue
        text = section(page, heading)
        for action in parser._actions:
            for flag in action.option_strings:
                if flag not in ("-h", "--help") and f"`{flag}`" not in text:
                    missing.append(f"{name} {flag}")
            if not action.option_strings and f"`{action.metavar or action.dest}`" not in text:
                missing.append(f"{name} {action.metavar or action.dest}")
    assert not missing, f"not in docs/cli.md (run: python tools/docs_cli.py): {missing}"


def allowed_keys(doc: dict, tmp_path: Path) -> list[str]:
    """The keys the loader accepts where `doc` has the unknown key `zz_unknown`, read from its error line."""
    path = tmp_path / "probe.toml"
    path.write_text(toml_dump(doc))
    from mnist_hpo import load_study_config

    with pytest.raises(UserError) as e:
        load_study_config(path)
    message = str(e.value)
    assert "zz_unknown" in message and "allowed:" in message, message
    return [k.strip() for k in message.split("allowed:", 1)[1].split(",")]


def toml_dump(doc: dict, prefix: str = "") -> str:
    """Enough TOML for a study file: scalars, lists, lists of inline tables, nested tables."""

    def value(v):
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, str):
            return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
        if isinstance(v, list):
            return "[" + ", ".join(value(x) for x in v) + "]"
        if isinstance(v, dict):
            return "{" + ", ".join(f"{k} = {value(x)}" for k, x in v.items()) + "}"
        return repr(v)

    scalars = [f"{k} = {value(v)}" for k, v in doc.items() if not isinstance(v, dict)]
    out = ([f"[{prefix}]"] if prefix and scalars else []) + scalars
    for k, v in doc.items():
        if isinstance(v, dict):
            out.append(toml_dump(v, f"{prefix}.{k}" if prefix else k))
    return "\n".join(out) + "\n"


def study(name: str) -> dict:
    return tomllib.loads((STUDIES / f"{name}.toml").read_text())


def test_every_study_file_key_is_on_its_page(tmp_path):
    page = (DOCS / "study-files.md").read_text()
    missing = []

    def need(keys, heading, what):
        text = section(page, heading)
        missing.extend(f"{what}: {k}" for k in keys if f"`{k}`" not in text)

    doc = study("ae")
    doc["study"]["zz_unknown"] = 1
    need(allowed_keys(doc, tmp_path), "## `[study]`", "[study]")
    families = {}
    for f in sorted(STUDIES.glob("*.toml")):
        d = tomllib.loads(f.read_text())
        families.setdefault(d["model"]["type"], d)
    assert {"autoencoder", "denoising", "classifier", "gan"} <= set(families)
    for family, d in families.items():
        d = {**d, "model": {**d["model"], "zz_unknown": 1}}
        keys = [k for k in allowed_keys(d, tmp_path) if k != "type"]
        text = section(page, "## `[model]`")
        missing.extend(f"[model] {family}: {k}" for k in keys if f"| `{family}` | `{k}` |" not in text)
        if f"| `{family}` |" not in text:
            missing.append(f"[model] type {family}")
    for table, kinds in [
        ("sampler", ["random", "grid", "tpe", "gp"]),
        ("pruner", ["none", "median", "successive_halving", "hyperband"]),
    ]:
        for kind in kinds:
            d = study("ae")
            d[table] = {"type": kind, "zz_unknown": 1}
            keys = [k for k in allowed_keys(d, tmp_path) if k != "type"]
            row = next(
                (line for line in section(page, f"## `[{table}]`").splitlines() if line.startswith(f"| `{kind}`")), ""
            )
            missing.extend(f"[{table}] {kind}: {k}" for k in keys if f"`{k}`" not in row)
            if not row:
                missing.append(f"[{table}] type {kind}")
    for form in [
        {"choices": [2, 3]},
        {"draw": "normal", "mean": 1e-3, "std": 1e-3, "size": 3},
        {"draw": "randint", "low": 50, "high": 60, "size": 3},
        {"range": "int", "low": 2, "high": 9},
    ]:
        d = study("ae")
        d["space"]["latent_dim"] = {**form, "zz_unknown": 1}
        need(allowed_keys(d, tmp_path), "## `[space.NAME]`: the hyperparameters", "[space.NAME]")
    d = study("ae-pbt")
    d["pbt"]["zz_unknown"] = 1
    need(allowed_keys(d, tmp_path), "## `[pbt]`: population-based training", "[pbt]")
    assert not missing, f"not documented in docs/study-files.md: {missing}"


def test_the_key_check_sees_an_undocumented_key(tmp_path):
    """The probe reads the loader's own list: a key it accepts is found even if no page names it."""
    doc = study("ae")
    doc["study"]["zz_unknown"] = 1
    keys = allowed_keys(doc, tmp_path)
    assert {"name", "seed", "trials", "epochs", "enqueue"} <= set(keys)


# --- figures and examples --------------------------------------------------------------------------


def test_the_figures_are_the_records():
    sys.path.insert(0, str(ROOT / "tools"))
    try:
        import docs_figures
    finally:
        sys.path.remove(str(ROOT / "tools"))
    for name, source in docs_figures.COPIES.items():
        assert (DOCS / "img" / name).read_bytes() == source.read_bytes(), f"docs/img/{name}: run make figures"
    shown = set()
    for page in PAGES:
        shown |= set(re.findall(r"!\[[^\]]*\]\((?:docs/)?img/([\w.-]+)\)", page.read_text()))
    assert shown <= set(docs_figures.COPIES) | {"report.png", "dashboard.png"}, shown
    assert {p.name for p in (DOCS / "img").iterdir()} <= set(docs_figures.COPIES) | {"report.png", "dashboard.png"}


def test_the_python_api_example_runs(mnist, monkeypatch, capsys):
    """The block of docs/python-api.md that loads the record's exports and runs them on test images."""
    monkeypatch.chdir(ROOT)
    blocks = [
        b
        for lang, b in FENCE.findall((DOCS / "python-api.md").read_text())
        if lang == "python" and "results/exports/ae/trial-44" in b
    ]
    assert len(blocks) == 1
    scope: dict = {}
    exec(compile(blocks[0], "docs/python-api.md", "exec"), scope)
    assert tuple(scope["codes"].shape) == (8, 9) and tuple(scope["recon"].shape) == (8, 1, 28, 28)
    assert scope["digits"].tolist() == mnist.test_labels[:8].tolist()  # the record's classifier reads them right
    assert "0.0158" in capsys.readouterr().out


# --- the built site in a browser -------------------------------------------------------------------


@pytest.mark.browser
def test_the_built_site_is_not_blank_in_chromium(tmp_path):
    from tests.report.test_browser import assert_not_blank, run_chromium, screenshot

    out = build_site(tmp_path / "site")
    assert out.returncode == 0, out.stderr[-3000:]
    home = tmp_path / "site" / "index.html"
    assert_not_blank(screenshot(home.as_uri(), tmp_path / "home.png", size=(1280, 1400), budget_ms=5000))
    dom = run_chromium(home.as_uri(), "--dump-dom", budget_ms=5000)
    assert "mnist-hpo" in dom and "img/tsne2.png" in dom
    # a page with figures: the images it shows exist in the site and the page renders them
    page = tmp_path / "site" / "models" / "index.html"
    dom = run_chromium(page.as_uri(), "--dump-dom", budget_ms=5000)
    images = re.findall(r'<img[^>]+src="([^"]+\.png)"', dom)
    assert len(images) >= 5 and all((page.parent / src).resolve().is_file() for src in images), images
    assert_not_blank(screenshot(page.as_uri(), tmp_path / "models.png", size=(1280, 1400), budget_ms=5000))


def test_every_public_name_is_on_the_python_api_page():
    import mnist_hpo

    page = (DOCS / "python-api.md").read_text()
    missing = [name for name in mnist_hpo.__all__ if f"`{name}" not in page]
    assert not missing, f"not in docs/python-api.md: {missing}"
