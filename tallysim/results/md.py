"""One markdown table cell from any text: a run's label is its directory's name, which may hold a pipe
(a swept `model.groups` value) or a line break (a directory named by hand), and either would end the
cell or the row early and shift every column after it."""


def cell(text: str) -> str:
    return (str(text).replace("|", "\\|")
            .replace("\r\n", "\\n").replace("\n", "\\n").replace("\r", "\\n"))
