"""The Makefile's check before it installs this checkout into a VENV that is not its own `.venv`.

`make demo VENV=/other/project/.venv` from a fresh clone re-ran `pip install -e .` into that venv (the
clone's pyproject.toml is newer than the venv's `.installed` stamp), and the other checkout's editable
install then pointed at the clone, with no word said: the other checkout's `tallysim` ran the clone's
code from then on. Now make runs `python tallysim/venv_owner.py VENV CHECKOUT` first (a file, not
`-m tallysim...`: no package import, so the system Python without numpy runs it), which refuses, exit 2 and
one line on stderr, when VENV's tallysim is installed editable from another directory: which one, and what
to do. A venv without tallysim, or with this checkout's, is installed into as before; `make` with the
default VENV (this checkout's `.venv`) never runs it.

Where pip records an editable install: `tallysim-*.dist-info/direct_url.json` ({"url": "file:///...",
"dir_info": {"editable": true}}, PEP 610, pip >= 20.1), or the legacy `tallysim.egg-link` (its first
line the directory), in the venv's site-packages.
"""
from __future__ import annotations

import glob
import json
import os
import sys
from urllib.parse import unquote, urlparse


def _site_dirs(venv: str) -> list:
    return sorted(glob.glob(os.path.join(venv, "lib", "python*", "site-packages"))
                  + glob.glob(os.path.join(venv, "Lib", "site-packages")))


def editable_source(venv: str):
    """The directory VENV's tallysim is installed editable from, or None (not installed, or not editable)."""
    for site in _site_dirs(venv):
        for meta in sorted(glob.glob(os.path.join(site, "tallysim-*.dist-info", "direct_url.json"))):
            try:
                with open(meta, encoding="utf-8") as f:
                    url = json.load(f)
            except (OSError, ValueError):
                continue
            if isinstance(url, dict) and (url.get("dir_info") or {}).get("editable"):
                parsed = urlparse(str(url.get("url", "")))
                if parsed.scheme == "file":
                    return unquote(parsed.path)
        link = os.path.join(site, "tallysim.egg-link")
        if os.path.isfile(link):
            with open(link, encoding="utf-8") as f:
                first = f.readline().strip()
            if first:
                return first
    return None


def same_dir(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.realpath(a) == os.path.realpath(b)


def refusal(venv: str, checkout: str):
    """The refusal's line when installing `checkout` into `venv` would re-point another checkout's
    editable install, else None."""
    source = editable_source(venv)
    if source is None or same_dir(source, checkout):
        return None
    return (f"make: VENV={venv} has tallysim installed editable from {source}, not from this checkout "
            f"({checkout}); installing here would re-point {source}'s install at this one. Allowed: leave "
            f"VENV unset (this checkout's own .venv), a VENV without tallysim, or, to move that venv here on "
            f"purpose: {os.path.join(venv, 'bin', 'pip')} install -e '{checkout}[dev]' && "
            f"touch {os.path.join(venv, '.installed')}")


def main(argv: list) -> int:
    if len(argv) != 2:
        print("usage: python tallysim/venv_owner.py VENV CHECKOUT", file=sys.stderr)
        return 2
    venv, checkout = os.path.expanduser(argv[0]), argv[1]
    line = refusal(venv, checkout)
    if line:
        print(line, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
