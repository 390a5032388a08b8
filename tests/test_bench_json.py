"""`tallysim bench --json FILE`: written whole, atomically (tallysim/bench/__init__.write_json)."""


def test_bench_json_is_replaced_whole_never_truncated_in_place(tmp_path):
    """`--json FILE` is rewritten after every row so that gpu.sh's time limit keeps what ran; a kill
    during a rewrite must leave the previous rows, so the file is replaced by a rename, never truncated
    and refilled: a reader that opened it before the rewrite still reads the whole earlier file."""
    import json
    from tallysim import bench
    from tallysim.config import ConfigError
    dest = tmp_path / "rows.json"
    bench.write_json([{"row": 1}], str(dest))
    with open(dest) as before:
        bench.write_json([{"row": 1}, {"row": 2}], str(dest))
        assert json.loads(before.read()) == [{"row": 1}]
    assert json.loads(dest.read_text()) == [{"row": 1}, {"row": 2}]
    link = tmp_path / "link.json"
    link.symlink_to(dest)
    try:
        bench.check_json_dest(str(link))
    except ConfigError as e:
        assert "symbolic link" in str(e)
    else:
        raise AssertionError("a symlinked --json is refused before anything is measured")
