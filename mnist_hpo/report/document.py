"""A tiny document model (headings, paragraphs, tables, images, facts) and its two renderings: self-contained HTML and Markdown."""

from __future__ import annotations

import base64
import html
import mimetypes
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .formatting import fmt


@dataclass
class Heading:
    level: int
    text: str


@dataclass
class Para:
    text: str
    kind: str = ""  # "", "missing", "note", "ref"


@dataclass
class Table:
    caption: str
    columns: list[str]
    rows: list[list[Any]]
    kind: str = ""  # "ref": the report's numbers


@dataclass
class Image:
    path: Path
    caption: str


@dataclass
class Facts:
    title: str
    items: list[tuple[str, str]]


@dataclass
class Pair:
    """Two blocks side by side (ours, the report's)."""

    left: list[Any]
    right: list[Any]


CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2em auto;max-width:1200px;color:#222;
     background:#fff;padding:0 1em}
h1{border-bottom:2px solid #444}h2{border-bottom:1px solid #aaa;margin-top:2em}
table{border-collapse:collapse;margin:.5em 0;font-size:.85em}th,td{border:1px solid #ccc;padding:.2em .5em;
     text-align:right}th{background:#f0f0f0}caption{text-align:left;font-weight:600;padding:.3em 0}
table.ref{background:#fff8e6}table.ref caption{color:#8a5a00}
.pair{display:flex;gap:2em;flex-wrap:wrap;align-items:flex-start}.pair>div{flex:1;min-width:380px;overflow-x:auto}
.missing{background:#fdecea;border-left:4px solid #d33;padding:.4em .8em}
.note{color:#555;font-style:italic}
dl.facts{display:grid;grid-template-columns:max-content auto;gap:.1em 1em;font-size:.85em}
dl.facts dt{font-weight:600}dl.facts dd{margin:0;word-break:break-word}
figure{margin:1em 0}figure img{max-width:100%;border:1px solid #ddd}figcaption{font-size:.85em;color:#444}
"""


def _html_block(b: Any) -> str:
    e = html.escape
    if isinstance(b, Heading):
        return f"<h{b.level}>{e(b.text)}</h{b.level}>"
    if isinstance(b, Para):
        return f'<p class="{b.kind}">{e(b.text)}</p>'
    if isinstance(b, Table):
        head = "".join(f"<th>{e(str(c))}</th>" for c in b.columns)
        cell = str if b.kind == "ref" else fmt  # the report's numbers exactly as typed in
        body = "".join("<tr>" + "".join(f"<td>{e(cell(v))}</td>" for v in r) + "</tr>" for r in b.rows)
        return f'<table class="{b.kind}"><caption>{e(b.caption)}</caption><tr>{head}</tr>{body}</table>'
    if isinstance(b, Image):
        mime = mimetypes.guess_type(b.path.name)[0] or "image/png"
        data = base64.b64encode(b.path.read_bytes()).decode()
        return (
            f'<figure><img alt="{e(b.caption)}" src="data:{mime};base64,{data}">'
            f"<figcaption>{e(b.caption)}</figcaption></figure>"
        )
    if isinstance(b, Facts):
        rows = "".join(f"<dt>{e(k)}</dt><dd>{e(v)}</dd>" for k, v in b.items)
        return f'<h4>{e(b.title)}</h4><dl class="facts">{rows}</dl>'
    if isinstance(b, Pair):
        left = "".join(map(_html_block, b.left))
        right = "".join(map(_html_block, b.right))
        return f'<div class="pair"><div>{left}</div><div>{right}</div></div>'
    raise TypeError(type(b))


def render_html(blocks: list[Any]) -> str:
    title = next((b.text for b in blocks if isinstance(b, Heading)), "report")
    body = "\n".join(_html_block(b) for b in blocks)
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f"<style>{CSS}</style></head><body>\n{body}\n</body></html>\n"
    )


def _md_cell(v: Any, cell: Callable[[Any], str] = fmt) -> str:
    return cell(v).replace("|", "\\|")


def _md_block(b: Any, md_dir: Path) -> str:
    if isinstance(b, Heading):
        return "#" * b.level + " " + b.text
    if isinstance(b, Para):
        prefix = {"missing": "> **Missing:** ", "note": "> *Note:* "}.get(b.kind, "")
        return prefix + b.text
    if isinstance(b, Table):
        cell = str if b.kind == "ref" else fmt
        lines = [
            f"**{b.caption}**",
            "",
            "| " + " | ".join(map(_md_cell, b.columns)) + " |",
            "|" + " --- |" * len(b.columns),
        ]
        lines += ["| " + " | ".join(_md_cell(v, cell) for v in r) + " |" for r in b.rows]
        return "\n".join(lines)
    if isinstance(b, Image):
        return (
            f"![{b.caption}]({Path(os.path.relpath(b.path.resolve(), md_dir.resolve())).as_posix()})\n\n*{b.caption}*"
        )
    if isinstance(b, Facts):
        return f"**{b.title}**\n\n" + "\n".join(f"- **{k}**: {v}" for k, v in b.items)
    if isinstance(b, Pair):
        return "\n\n".join(_md_block(x, md_dir) for x in [*b.left, *b.right])
    raise TypeError(type(b))


def render_markdown(blocks: list[Any], md_dir: Path) -> str:
    return "\n\n".join(_md_block(b, md_dir) for b in blocks) + "\n"
