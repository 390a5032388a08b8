"""SIGTERM during XLA's compile: what a run keeps, its exit status and how long it takes to stop
(docs/cli.md, "Ctrl-C, kill ..."). The demo config (experiments/demo.json), the compile cache off:

    python experiments/sigterm_compile.py OUT                        # a fresh run, SIGTERM 8 s into its compile
    KILL_ON="round 3/15" DELAY=0 python experiments/sigterm_compile.py OUT --checkpoint-every 1
    python experiments/sigterm_compile.py OUT --resume               # then SIGTERM 8 s into the resume's compile

Prints the exit status (143 expected; -11 was SIGSEGV, the interpreter's teardown under XLA's compile
threads), the seconds from SIGTERM to exit, the last output lines, and the run directory's state after:
checkpoint (and its mtime), metrics rows, outdir.run_state.
"""
import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def state(out: Path) -> dict:
    sys.path.insert(0, str(ROOT))
    from tallysim import outdir
    ck, m = out / "checkpoint.npz", out / "metrics.jsonl"
    rows = m.read_text().splitlines() if m.exists() else []
    return dict(checkpoint_mtime=ck.stat().st_mtime if ck.is_file() else None, rows=len(rows),
                last_round=json.loads(rows[-1])["round"] if rows else None, state=outdir.run_state(out))


def parse(argv: list) -> tuple:
    """(OUT, the options passed on to `tallysim run`); no OUT is argparse's usage line (was an IndexError)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 epilog="Any other option (--resume, --checkpoint-every K) goes to `tallysim run`.")
    ap.add_argument("out", help="the run directory (tallysim run --out)")
    args, extra = ap.parse_known_args(argv)
    delay(ap)
    return Path(args.out), extra


def delay(ap=None) -> float:
    """$DELAY, the seconds between the line KILL_ON matches and the SIGTERM: DELAY=x was float()'s traceback, and
    DELAY=-1 time.sleep's ValueError once the run had started, which left the run going on unwatched."""
    text = os.environ.get("DELAY", "8")
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0 <= value < float("inf"):
        (ap.error if ap else sys.exit)(f"DELAY={text}: allowed: seconds, 0 or more (default 8)")
    return value


def main() -> None:
    out, extra = parse(sys.argv[1:])
    pattern, delay_s = os.environ.get("KILL_ON", "compiling"), delay()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TALLYSIM_COMPILE_CACHE": "0", "TALLYSIM_PROGRESS": "lines",
           "TALLYSIM_PROGRESS_INTERVAL": "0", "PYTHONFAULTHANDLER": "1"}
    if (out / "metrics.jsonl").exists():
        print("before:", state(out))
    cmd = [sys.executable, "-m", "tallysim", "run", "--config", str(ROOT / "experiments" / "demo.json"), *extra,
           "--out", str(out)]
    t0, sent, lines = time.time(), None, []
    p = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    for line in p.stdout:
        lines.append(f"{time.time() - t0:7.2f} {line.rstrip()}")
        if sent is None and pattern in line:
            time.sleep(delay_s)
            p.send_signal(signal.SIGTERM)
            sent = time.time()
            lines.append(f"{sent - t0:7.2f} >>> SIGTERM")
    rc = p.wait()
    print(f"exit status {rc}; SIGTERM to exit {time.time() - sent if sent else float('nan'):.2f} s")
    print("\n".join(lines[-8:]))
    print("after:", state(out))


if __name__ == "__main__":
    main()
