"""``make report``: the reproduction report, built only from the study database and the exports.

One self-contained HTML file (every image embedded as base64, no script, nothing
fetched at view time) and its Markdown twin (images linked relative to it). For each
of the report's sections: its table recomputed from the stored trials beside the
report's own numbers (typed in below and labelled as the report's), the retrained
model's metrics and figures, the latent-space results of ``make explore``, and the
protocol behind every number. A section whose study has not been run says so.
"""

from __future__ import annotations

from pathlib import Path

from ..storages import storage_dir
from .document import render_html, render_markdown
from .gather import build_blocks


def build_report(
    storage_url: str | None = None,
    *,
    out: Path | None = None,
    studies: dict[str, str] | None = None,
    journals: Path | None = None,
) -> tuple[Path, Path]:
    """Write ``report.html`` (self-contained) and ``report.md`` (its twin); returns both paths."""
    html_path = Path(out) if out else storage_dir() / "report.html"
    html_path.parent.mkdir(parents=True, exist_ok=True)
    md_path = html_path.with_suffix(".md")
    blocks = build_blocks(
        storage_url, studies=studies, journals=journals, figures=html_path.parent / f"{html_path.stem}-figures"
    )
    html_path.write_text(render_html(blocks))
    md_path.write_text(render_markdown(blocks, md_path.parent))
    return html_path, md_path
