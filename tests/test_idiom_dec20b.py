"""Code-health helpers of the dec20b session: one "first N, then M more" list (fields.first_few)."""
from tallysim.fields import first_few


def test_first_few_lists_all_up_to_n_then_counts_the_rest():
    assert first_few([], 3) == ""
    assert first_few(["a", "b", "c"], 3) == "a, b, c"
    assert first_few(["a", "b", "c", "d"], 3) == "a, b, c and 1 more"
    assert first_few(range(10), 6) == "0, 1, 2, 3, 4, 5 and 4 more"      # items as str (run.py's peer numbers)


def test_first_few_takes_another_tail():
    assert first_few(list("abcd"), 3, ", ... ({} more)") == "a, b, c, ... (1 more)"     # results/table.py's
    assert first_few(list("abc"), 3, ", ... ({} more)") == "a, b, c"
    assert first_few(list("abcdef"), 4, ", ...") == "a, b, c, d, ..."

