#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Host test of scripts/bench_report.py's plots, on the committed benchmark results.

    $RKMEM_PYTHON tests/report/plots_test.py      (make check runs it; about 15 s)

It turns tests/results/bench-native.jsonl back into a console log of `RKBENCH {...}` lines, as
the guest prints them, runs `bench_report.py report` on it as scripts/bench.sh does, and checks
that every expected figure is there as PNG and SVG (non-empty, the PNG signature, SVG that
parses as XML with an <svg> root) and that report.md links each one; that `plots` draws the
same bytes from the JSONL; that the check itself fails on a missing or broken figure; that the
plots' per-side intervals are the ones rkmemctl's stats.rs gives the ratios; and that `readme`
works without matplotlib. Prints `ok - NAME` or `not ok - NAME: why` per check and ends with
`bench-plots: N passed, N failed`; exits 1 on any failure.
"""
import json
import re
import shutil
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
REPORT = ROOT / "scripts" / "bench_report.py"
NATIVE = ROOT / "tests" / "results" / "bench-native.jsonl"
TCG = ROOT / "tests" / "results" / "bench-tcg.jsonl"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
SVG_ROOT = "{http://www.w3.org/2000/svg}svg"
# Every figure the committed native run has data for.
TIMED = ["slab_pair", "slab_batch", "kmalloc", "pages", "pages_high", "mempool", "remote", "trace"]
NATIVE_FIGURES = TIMED + ["scaling", "latency", "objs_per_slab", "objs_per_page",
                          "slab_occupancy", "fragmentation"]
# The TCG run has only timed benchmarks (no trace or remote frees in it).
TCG_FIGURES = ["slab_pair", "slab_batch", "kmalloc", "pages", "pages_high", "mempool", "scaling"]
# What scripts/bench.sh passes as key=value; the guest's own lines do not carry these.
RUN_KEYS = ("commit", "flavor", "accel", "guest_cpus", "host_cpu", "host_nproc", "host_kernel",
            "kernel_config", "date", "command")

results = []


def check(name, problems):
    """Record one check: problems is a list of what is wrong (empty: it passed)."""
    results.append(not problems)
    print(f"ok - {name}" if not problems else f"not ok - {name}: {'; '.join(problems)}")


def figure_problems(outdir, names):
    """What is wrong with the figures `names` in outdir: each must be NAME.png with the PNG
    signature and NAME.svg parsing as XML with an <svg> root, neither empty."""
    bad = []
    for n in names:
        png, svg = outdir / f"{n}.png", outdir / f"{n}.svg"
        for f in (png, svg):
            if not f.is_file():
                bad.append(f"{f.name} missing")
            elif f.stat().st_size == 0:
                bad.append(f"{f.name} empty")
        if png.is_file() and png.stat().st_size and png.read_bytes()[:8] != PNG_MAGIC:
            bad.append(f"{png.name} is not a PNG")
        if svg.is_file() and svg.stat().st_size:
            try:
                root = ET.parse(svg).getroot()
                if root.tag != SVG_ROOT:
                    bad.append(f"{svg.name}: root <{root.tag}>, not <svg>")
            except ET.ParseError as e:
                bad.append(f"{svg.name}: not XML ({e})")
    return bad


def run(*args):
    return subprocess.run([sys.executable, str(REPORT), *map(str, args)], capture_output=True,
                          text=True, timeout=120)


def console_log(jsonl, path):
    """A console log of the rows as the guest prints them, with kernel noise between, and the
    key=value arguments that bench.sh would give the report."""
    rows = [json.loads(line) for line in jsonl.read_text().splitlines() if line.strip()]
    info = {k: rows[0][k] for k in RUN_KEYS if k in rows[0]}
    lines = ["[    0.000000] Linux version 7.3.4 (rkmem)", "rkmem: loaded"]
    for i, r in enumerate(rows):
        lines.append(f"[{i:5d}.000000] RKBENCH " + json.dumps({k: v for k, v in r.items()
                                                             if k not in RUN_KEYS}))
    lines.append("RKMEM-SUMMARY passed=1 failed=0 skipped=0")
    path.write_text("\n".join(lines) + "\n")
    return rows, [f"{k}={v}" for k, v in info.items()]


def main():
    tmp = Path(tempfile.mkdtemp(prefix="rkmem-plots-"))
    try:
        rows, info = console_log(NATIVE, tmp / "console.log")
        out = tmp / "report"
        r = run("report", tmp / "console.log", out, *info)
        check("report on the committed native run exits 0",
              [] if r.returncode == 0 else [f"exit {r.returncode}: {r.stderr.strip()[-500:]}"])
        check("every native figure is a PNG and an SVG", figure_problems(out, NATIVE_FIGURES))
        extra = sorted({f.stem for f in out.glob("*.png")} - set(NATIVE_FIGURES))
        check("no figure beyond the expected ones", [f"unexpected {extra}"] if extra else [])
        md = (out / "report.md").read_text() if (out / "report.md").is_file() else ""
        links = re.findall(r"!\[[^]]*\]\(([^)]+)\)", md)
        check("report.md links each figure's PNG, and only files that exist",
              [f"{n}.png not linked" for n in NATIVE_FIGURES if f"{n}.png" not in links] +
              [f"link to missing {x}" for x in links if not (out / x).is_file()])

        # The same figures from the JSONL: deterministic, and the log's rows are the JSONL's.
        again = tmp / "plots"
        r = run("plots", NATIVE, again)
        differ = [f"{n}.{e}" for n in NATIVE_FIGURES for e in ("png", "svg")
                  if not (again / f"{n}.{e}").is_file()
                  or (again / f"{n}.{e}").read_bytes() != (out / f"{n}.{e}").read_bytes()]
        check("plots from the JSONL are byte-identical to the report's",
              ([] if r.returncode == 0 else [f"exit {r.returncode}: {r.stderr.strip()[-500:]}"])
              + ([f"differ: {differ}"] if differ else []))

        # The check must catch each way a figure can be wrong.
        broken = tmp / "broken"
        for what, spoil in (
            ("a missing PNG", lambda d: (d / "latency.png").unlink()),
            ("a missing SVG", lambda d: (d / "fragmentation.svg").unlink()),
            ("an empty SVG", lambda d: (d / "slab_pair.svg").write_bytes(b"")),
            ("a PNG without the PNG signature", lambda d: (d / "pages.png").write_bytes(b"GIF89a")),
            ("an SVG that is not XML", lambda d: (d / "trace.svg").write_text("<svg><g></svg>")),
            ("an SVG whose root is not <svg>", lambda d: (d / "remote.svg").write_text("<html/>")),
        ):
            if figure_problems(out, NATIVE_FIGURES):
                check(f"the figure check fails on {what}", ["no good figures to spoil"])
                continue
            shutil.rmtree(broken, ignore_errors=True)
            shutil.copytree(out, broken)
            spoil(broken)
            found = figure_problems(broken, NATIVE_FIGURES)
            check(f"the figure check fails on {what}", [] if len(found) == 1 else
                  [f"found {found or 'nothing'}"])

        # The intervals on the plots' bars are those of stats.rs: the same computation on the
        # per-repetition ratios gives each row's ratio_lo and ratio_hi.
        sys.dont_write_bytecode = True
        sys.path.insert(0, str(REPORT.parent))
        import bench_report

        off = []
        for row in rows:
            if "rep_rkmem_ns" in row and "ratio_lo" in row:
                _, lo, hi = bench_report.median_ci(
                    [a / b for a, b in zip(row["rep_rkmem_ns"], row["rep_host_ns"])])
                if abs(lo - row["ratio_lo"]) > 6e-4 or abs(hi - row["ratio_hi"]) > 6e-4:
                    off.append(f"{row['bench']} {row.get('size')}/{row.get('order')} "
                               f"{row['cpus']} CPU: {lo:.3f}-{hi:.3f} vs "
                               f"{row['ratio_lo']}-{row['ratio_hi']}")
        check("median_ci reproduces every row's 95% interval of the ratio", off[:5])

        tcg = tmp / "tcg"
        r = run("plots", TCG, tcg)
        check("plots of the committed TCG run",
              ([] if r.returncode == 0 else [f"exit {r.returncode}: {r.stderr.strip()[-500:]}"])
              + figure_problems(tcg, TCG_FIGURES))

        # `readme --check` (make check's lint step, CI) must not need matplotlib.
        r = subprocess.run(
            [sys.executable, "-c", "import runpy, sys; sys.modules['matplotlib'] = None; "
             "sys.argv = sys.argv[1:]; runpy.run_path(sys.argv[0], run_name='__main__')",
             "scripts/bench_report.py", "readme", "tests/results/bench-native.jsonl", "README.md",
             "--tcg", "tests/results/bench-tcg.jsonl", "--check"],
            cwd=ROOT, capture_output=True, text=True, timeout=60)
        check("readme --check runs without matplotlib",
              [] if r.returncode == 0 else
              [f"exit {r.returncode}: {(r.stdout + r.stderr).strip()[-500:]}"])
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    passed = sum(results)
    print(f"bench-plots: {passed} passed, {len(results) - passed} failed")
    sys.exit(0 if passed == len(results) else 1)


if __name__ == "__main__":
    main()
