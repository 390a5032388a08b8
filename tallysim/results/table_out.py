"""Where a table goes: its --out checked before any run is read (not a directory, a link, a run's own
file, or a name of another format), the format an --out's extension says, and the file written
atomically. `tallysim table` and `tallysim compare` share it (table.py imports it; split from it)."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

from tallysim import atomic
from tallysim.config import ConfigError

# What an --out's extension says of the file's format: None, either (plain text). `--out t.xlsx` wrote a
# markdown table a spreadsheet cannot open, and `--format csv --out t.md` CSV under a markdown name.
OUT_FORMATS = {".csv": "csv", ".md": "markdown", ".markdown": "markdown"}
# Extensions of files of another format, refused; any other (none, .txt, `table.v2`, a date) takes either.
OTHER_FORMATS = (".xlsx", ".xls", ".ods", ".json", ".jsonl", ".tsv", ".html", ".htm", ".tex", ".png", ".pdf",
                 ".svg", ".parquet", ".npz", ".npy", ".pkl", ".yaml", ".yml")


def out_format(out: Optional[str], fmt: Optional[str]) -> str:
    """The format `table` writes: --format, else the --out's extension's, else markdown; an extension
    that names another format (or none `table` writes) is refused."""
    suffix = Path(out).suffix.lower() if out else ""
    if suffix in OTHER_FORMATS:
        raise ConfigError(f"--out {out}: table writes markdown or CSV, not {suffix}; allowed: an --out ending "
                          "in .md (markdown), .csv (CSV) or .txt")
    named = OUT_FORMATS.get(suffix)
    if fmt and named and fmt != named:
        raise ConfigError(f"--format {fmt} with --out {out}, a {named} file's name; allowed: --format {named}, "
                          f"or an --out ending in {'.csv' if fmt == 'csv' else '.md'}")
    return fmt or named or "markdown"


def check_out(out, fmt: Optional[str]) -> str:
    """The format to write, after every check of an --out made before a run is read: not a directory,
    not a link, not a run's own file or a sweep's index, not named as another format. One rule for the
    command and `table(out=...)`: from Python, `table("runs/a", out="runs/a/metrics.jsonl")` replaced the
    run's rows with a markdown table, and `out="t.csv"` got markdown under a CSV name."""
    if out is None:
        return fmt or "markdown"
    if not str(out).strip():    # Path('') is '.': "--out  is a directory" named no directory the user gave
        raise ConfigError(f"--out {str(out)!r} is an empty path (an unset shell variable?); allowed: a file name, "
                          "or no --out")
    if Path(out).is_dir():
        raise ConfigError(f"--out {out} is a directory; give a file such as {atomic.file_in(out, 'table.md')}")
    atomic.refuse_symlinks([Path(out)])     # nor a run's own file: before anything is read
    return out_format(str(out), fmt)        # after: a run's metrics.jsonl is refused as that




def write(path: Path, text: str) -> None:
    """The table into `path`, atomically, its folders created (as figures' are); a file where a
    folder should be is one error line, before any temporary file."""
    for parent in path.parents:
        if parent.exists() and not parent.is_dir():
            raise ConfigError(f"--out {path}: {parent} is a file, not a directory")
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic.write_text(path, text)
