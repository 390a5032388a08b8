"""One markdown table cell from any text: a run's label is its directory's name, which may hold a pipe
(a swept `model.groups` value) or a line break (a directory named by hand), and either would end the
cell or the row early and shift every column after it. And how a table marks a value that is a mean over
fewer seeds than its run has, or holds a diverged seed's NaN or inf (starred, footnote: every figure's
table and pareto's frontier table)."""
from tallysim.results.rows import SEEDS_COUNTED, SEEDS_NONFINITE


def cell(text: str) -> str:
    return (str(text).replace("|", "\\|")
            .replace("\r\n", "\\n").replace("\n", "\\n").replace("\r", "\\n"))


def starred(text: str, marks: dict, marked: list, label: str) -> str:
    """A Markdown cell's `text`, followed by `*` where `marks`' `seeds_counted` (headline.seed_marks' words)
    says its mean is over fewer seeds than its run has (`label` and those words then join `marked`, which
    footnote lists), and by " (1 of 3 seeds diverged)" where its `seeds_nonfinite` says the mean holds a
    seed's NaN or inf: the cell read `nan` with no word why."""
    part, gone = marks.get(SEEDS_COUNTED), marks.get(SEEDS_NONFINITE)
    if part:
        marked.append(f"{label}: {part}")
    return text + ("*" if part else "") + (f" ({gone})" if gone else "")


def footnote(marked: list) -> list[str]:
    """The lines below a figure's Markdown table that say what its `*` means, naming each starred cell."""
    return ["", "\\* a mean over only the seeds that have a value (metrics.jsonl's seeds_counted; its run's "
            "other seeds have none there): " + "; ".join(marked) + "."] if marked else []
