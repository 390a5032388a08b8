"""A figure's files, for `tallysim plot`, `pareto` and the paper figures: matplotlib on the Agg backend
(pyplot), an --out checked before anything is drawn (check_figure_out), a table beside the figure
replaced only where this command wrote it (refuse_foreign_beside), titles wrapped to the figure's
width, and the figure written whole (save_figure, through atomic.py). matplotlib is imported only
inside the functions; nothing above results/. Split from results/metrics.py, which re-exports every name.
"""
from __future__ import annotations

import io
from pathlib import Path

from tallysim import atomic
from tallysim.config import ConfigError

DPI = 130


def pyplot():
    """matplotlib.pyplot on the Agg backend (no display needed)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


# The words a figure's errors name its inputs by: the command's flags (FLAGS: each flag as itself) or a Python
# call's parameters ({"--out": "path", ...}: Results.plot's errors said `--out`, a flag the caller never saw)
FLAGS: dict = {}


def check_figure_out(out, flag: str = "--out") -> Path:
    """A figure file: a supported image extension, not a directory, not under a file."""
    from matplotlib.backend_bases import FigureCanvasBase
    p = Path(out)
    allowed = sorted(FigureCanvasBase.get_supported_filetypes())
    if not str(out).strip():    # Path('') is '.': "--out  is a directory" named no directory the user gave
        raise ConfigError(f"{flag} {str(out)!r} is an empty path (an unset shell variable?); allowed: a figure file "
                          "such as figure.png")
    if p.is_dir():
        raise ConfigError(f"{flag} {out} is a directory; give a figure file such as {atomic.file_in(p, 'figure.png')}")
    if p.suffix.lower().lstrip(".") not in allowed:
        raise ConfigError(f"{flag} {out}: {p.suffix or 'no extension'} is not an image format; allowed: "
                          f"{', '.join('.' + a for a in allowed)}")
    for parent in p.parents:
        if parent.exists() and not parent.is_dir():
            raise ConfigError(f"{flag} {out}: {parent} is a file, not a directory")
    return p


def refuse_foreign_beside(out, side: Path, first_line, what: str, flag: str = "--out") -> None:
    """A table a figure writes beside itself (`plot --out results.png` -> results.csv, `pareto --out p.png`
    -> p_points.csv ...) replaced whatever file of that name was there: `plot --out mydata.png` lost the
    user's mydata.csv in silence. Such a file is replaced only when it is one this command wrote before
    (it starts with `first_line`, or one of a tuple of them: what earlier versions wrote too), else
    refused before anything is read or drawn."""
    side = Path(side)
    heads = (first_line,) if isinstance(first_line, str) else tuple(first_line)
    if not side.is_file():
        return
    try:
        with open(side, encoding="utf-8", errors="replace") as f:
            head = f.readline().rstrip("\r\n")
    except OSError:
        head = None
    if head is None or not head.startswith(heads):
        raise ConfigError(f"{flag} {out} also writes {side} ({what}), and {side} exists but is not a file this "
                          f"command wrote (its first line is not {heads[0]!r}): it would be replaced; allowed: "
                          f"another {flag}, or move that file away first")


def wrap_titles(fig) -> None:
    """Titles wider than the figure broken into lines: a figure config's long `title` ran off the image
    ("... 6,000 examples, 2 see"), as matplotlib neither wraps nor shrinks a title."""
    for t in [ax.title for ax in fig.axes] + [t for t in [getattr(fig, "_suptitle", None)] if t is not None]:
        text, wide = t.get_text(), t.get_window_extent(fig.canvas.get_renderer()).width
        if text and "\n" not in text and wide > 0.95 * fig.bbox.width:
            t.set_text(wrap_text(text, max(20, int(len(text) * 0.9 * fig.bbox.width / wide))))


def wrap_text(text: str, chars: int) -> str:
    """`text` broken at spaces into lines of at most `chars` characters (a longer word keeps its own line)."""
    lines = [""]
    for word in text.split():           # greedy, as textwrap would (not imported here: test_hygiene)
        fits = not lines[-1] or len(lines[-1]) + 1 + len(word) <= chars
        lines[-1:] = [f"{lines[-1]} {word}".strip()] if fits else [lines[-1], word]
    return "\n".join(lines)


def save_figure(fig, *paths, dpi: int = DPI, tight: bool = True) -> list[str]:
    """Lay the figure out, write it to every path (parents created) and close it; returns the paths."""
    wrap_titles(fig)
    if tight:
        fig.tight_layout()
    for p in paths:
        Path(p).parent.mkdir(parents=True, exist_ok=True)
        fmt = Path(p).suffix.lower().lstrip(".")
        if not fmt:                 # matplotlib picks the format and names the file itself
            fig.savefig(p, dpi=dpi)
            continue
        # Drawn into memory, then written whole (atomic.py): a kill mid-write leaves the old image, and
        # a symlink at `p` is refused rather than followed.
        buf = io.BytesIO()
        fig.savefig(buf, format=fmt, dpi=dpi)
        atomic.write_atomic(Path(p), buf.getvalue())
    pyplot().close(fig)
    return [str(p) for p in paths]
