"""Figures written next to exports (matplotlib, no display needed)."""

from __future__ import annotations

from pathlib import Path


def confusion_figure(matrix: list[list[int]], accuracy: float, path: Path) -> Path:
    """The confusion matrix as a PNG: rows are true classes, columns predicted ones, counts in the cells."""
    import matplotlib

    matplotlib.use("Agg")  # files only; never try to open a window
    import matplotlib.pyplot as plt
    import numpy as np

    m = np.asarray(matrix)
    n = len(m)
    fig, ax = plt.subplots(figsize=(6.4, 5.6), dpi=100)
    im = ax.imshow(m, cmap="Blues")
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    threshold = m.max() / 2 if m.size else 0
    for i in range(n):
        for j in range(n):
            ax.text(j, i, str(m[i, j]), ha="center", va="center", fontsize=7,
                    color="white" if m[i, j] > threshold else "black")
    ax.set_xticks(range(n))
    ax.set_yticks(range(n))
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(f"Confusion matrix: accuracy on test set = {100 * accuracy:.2f}%")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
