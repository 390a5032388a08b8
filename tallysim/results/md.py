"""One markdown table cell from any text: a run's label is its directory's name, which may hold a pipe
(a swept `model.groups` value) or a line break (a directory named by hand), and either would end the
cell or the row early and shift every column after it. And how a table marks a value that is a mean over
fewer seeds than its run has (starred, footnote: every figure's table and pareto's frontier table)."""


def cell(text: str) -> str:
    return (str(text).replace("|", "\\|")
            .replace("\r\n", "\\n").replace("\n", "\\n").replace("\r", "\\n"))


def starred(text: str, part: str, marked: list, label: str) -> str:
    """A Markdown cell's `text`, followed by `*` where `part` (seeds_counted's words) says its mean is over
    fewer seeds than its run has; `label` and `part` then join `marked`, which footnote lists."""
    if not part:
        return text
    marked.append(f"{label}: {part}")
    return text + "*"


def footnote(marked: list) -> list[str]:
    """The lines below a figure's Markdown table that say what its `*` means, naming each starred cell."""
    return ["", "\\* a mean over only the seeds that have a value (metrics.jsonl's seeds_counted; its run's "
            "other seeds have none there): " + "; ".join(marked) + "."] if marked else []
