"""mkdocs hooks: put the repository's own Markdown pages (and the figures they show) into the site.

BENCHMARKS.md, RELIABILITY.md and results/README.md live outside docs/ because they belong beside
what they describe, and GitHub shows them there. The site mirrors the repository with docs/ as its
root: a file at repository path R is served at R, a file docs/X at X. Links are written for GitHub
(relative to the file in the repository) and rewritten here to the site's layout, so one text works
in both places; a link to a file the site does not hold still fails `mkdocs build --strict`.
"""

from __future__ import annotations

import posixpath
import re
from pathlib import Path

from mkdocs.structure.files import File, Files

ROOT = Path(__file__).resolve().parents[1]
PAGES = ["BENCHMARKS.md", "RELIABILITY.md", "results/README.md"]
# the record's figures that pages show (the site needs no weights or journals)
FIGURES = ["results/**/*.png", "results/**/*.gif"]
LINK = re.compile(r"(\]\()([^)\s]+)(\))")


def _repo_path(page_src: str, from_docs: bool) -> str:
    return f"docs/{page_src}" if from_docs else page_src


def _site_path(repo_path: str) -> str:
    return repo_path[len("docs/") :] if repo_path.startswith("docs/") else repo_path


def on_files(files: Files, config) -> Files:
    for rel in PAGES + sorted({str(p.relative_to(ROOT)) for g in FIGURES for p in ROOT.glob(g)}):
        files.append(
            File(rel, src_dir=str(ROOT), dest_dir=config["site_dir"], use_directory_urls=config["use_directory_urls"])
        )
    return files


def on_page_markdown(markdown: str, page, config, files) -> str:
    src = page.file.src_uri
    from_docs = src not in PAGES
    page_repo = _repo_path(src, from_docs)

    def fix(m: re.Match) -> str:
        target = m.group(2)
        if re.match(r"^[a-z]+:|^#|^/", target):
            return m.group(0)
        path, _, anchor = target.partition("#")
        repo_target = posixpath.normpath(posixpath.join(posixpath.dirname(page_repo), path))
        site_rel = posixpath.relpath(_site_path(repo_target), posixpath.dirname(_site_path(page_repo)) or ".")
        return f"{m.group(1)}{site_rel}{'#' + anchor if anchor else ''}{m.group(3)}"

    return LINK.sub(fix, markdown)
