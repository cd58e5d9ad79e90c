#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Host test of scripts/lab_figures.py, on the committed lab run.

    $RKMEM_PYTHON tests/report/lab_figures_test.py      (make check runs it; a few seconds)

Checks that every chapter of `rkmemctl lab` (CHAPTERS in tests/rkmemctl/src/lab/mod.rs) is run
by `make lab` (tests/guest/lab.sh), has a drawing (lab_figures.py's DRAW) and data in the
committed run (tests/results/lab-figures.jsonl, a guest's `--data` output); that each is drawn
as a PNG from that data and from a console log of `RKLAB` lines alike; that a chapter without a
drawing, a broken record and a chapter asked for but missing are errors; and that the README's
screenshots (docs/lab/CHAPTER.png) exist, are linked from README.md and have the size a fresh
drawing has. Prints `ok - NAME` or `not ok - NAME: why` per check and ends with
`lab-figures: N passed, N failed`; exits 1 on any failure.
"""
import json
import re
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FIGS = ROOT / "scripts" / "lab_figures.py"
DATA = ROOT / "tests" / "results" / "lab-figures.jsonl"
SHOTS = ROOT / "docs" / "lab"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

results = []


def check(name, problems):
    results.append(not problems)
    print(f"ok - {name}" if not problems else f"not ok - {name}: {'; '.join(problems)}")


def png_size(path):
    """(width, height) from the PNG's IHDR, or None if it is not a PNG."""
    b = path.read_bytes()[:24]
    if len(b) < 24 or b[:8] != PNG_MAGIC or b[12:16] != b"IHDR":
        return None
    return struct.unpack(">II", b[16:24])


def draw(inp, out, *chapters):
    return subprocess.run([sys.executable, str(FIGS), "draw", str(inp), str(out), *chapters],
                          capture_output=True, text=True)


def main():
    mod = (ROOT / "tests" / "rkmemctl" / "src" / "lab" / "mod.rs").read_text()
    m = re.search(r"pub const CHAPTERS: &\[&str\] = &\[([^\]]*)\];", mod)
    chapters = re.findall(r'"([a-z]+)"', m.group(1)) if m else []
    loop = re.search(r"^for chapter in ([a-z ]+); do$",
                     (ROOT / "tests" / "guest" / "lab.sh").read_text(), re.M)
    guest = loop.group(1).split() if loop else []
    sys.path.insert(0, str(FIGS.parent))
    import lab_figures  # noqa: E402

    check("every chapter is run by make lab and has a drawing",
          [] if chapters and chapters == guest == list(lab_figures.DRAW) else
          [f"CHAPTERS {chapters}, tests/guest/lab.sh {guest}, DRAW {list(lab_figures.DRAW)}"])
    recs = [json.loads(line) for line in DATA.read_text().splitlines() if line.strip()]
    have = sorted({r["chapter"] for r in recs})
    check("the committed run has data for every chapter",
          [] if have == sorted(chapters) else [f"{DATA.name} has {have}, want {chapters}"])

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        r = draw(DATA, tmp / "a")
        bad = [] if r.returncode == 0 else [f"exit {r.returncode}: {r.stderr.strip()}"]
        sizes = {}
        for c in chapters:
            p = tmp / "a" / f"{c}.png"
            s = png_size(p) if p.is_file() else None
            if s is None:
                bad.append(f"{c}.png missing or not a PNG")
            elif s[0] < 400 or s[1] < 200 or p.stat().st_size < 5000:
                bad.append(f"{c}.png is only {s[0]}x{s[1]}, {p.stat().st_size} bytes")
            sizes[c] = s
        check("every chapter is drawn as a PNG from the committed data", bad)

        log = tmp / "console.log"
        log.write_text("booting\n" + "".join(f"[   1.0] RKLAB {line}\n"
                                            for line in DATA.read_text().splitlines()) + "end\n")
        r = draw(log, tmp / "b")
        same = [c for c in chapters
                if (tmp / "b" / f"{c}.png").is_file()
                and (tmp / "b" / f"{c}.png").read_bytes() == (tmp / "a" / f"{c}.png").read_bytes()]
        check("a console log of RKLAB lines draws the same pictures",
              [] if r.returncode == 0 and same == chapters else
              [f"exit {r.returncode} {r.stderr.strip()}; the same: {same}"])

        odd = tmp / "odd.jsonl"
        odd.write_text(DATA.read_text() + json.dumps(
            {"chapter": "nosuch", "figure": "x", "data": {}}) + "\n")
        r = draw(odd, tmp / "c")
        check("a chapter without a drawing is an error",
              [] if r.returncode != 0 and "no drawing for chapter(s) nosuch" in r.stderr else
              [f"exit {r.returncode}: {r.stderr.strip()}"])

        broken = tmp / "broken.jsonl"
        lines = []
        for line in DATA.read_text().splitlines():
            rec = json.loads(line)
            if rec["chapter"] == "buddy" and rec["figure"] == "row":
                rec["data"].pop("blocks", None)
            lines.append(json.dumps(rec))
        broken.write_text("\n".join(lines) + "\n")
        r = draw(broken, tmp / "d", "buddy")
        check("a record of the wrong shape is an error naming its chapter",
              [] if r.returncode != 0 and "chapter buddy" in r.stderr else
              [f"exit {r.returncode}: {r.stderr.strip()}"])

        only = tmp / "only.jsonl"
        only.write_text("".join(line + "\n" for line in DATA.read_text().splitlines()
                                if json.loads(line)["chapter"] == "buddy"))
        r = draw(only, tmp / "e", "bitmap")
        check("a chapter asked for but missing is an error",
              [] if r.returncode != 0 and "'bitmap' is not in" in r.stderr else
              [f"exit {r.returncode}: {r.stderr.strip()}"])

    readme = (ROOT / "README.md").read_text()
    bad = []
    for c in chapters:
        p = SHOTS / f"{c}.png"
        if not p.is_file():
            bad.append(f"docs/lab/{c}.png missing (make lab-figures)")
            continue
        if f"(docs/lab/{c}.png)" not in readme:
            bad.append(f"README.md does not show docs/lab/{c}.png")
        if png_size(p) != sizes.get(c):
            bad.append(f"docs/lab/{c}.png is {png_size(p)}, a fresh drawing {sizes.get(c)} "
                       "(make lab-figures)")
    check("the README's screenshots are the committed run's pictures", bad)

    passed = sum(results)
    failed = len(results) - passed
    print(f"lab-figures: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
