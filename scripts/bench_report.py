#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Turn the `RKBENCH {...}` lines of a guest's serial log into report.md and SVG plots.

    scripts/bench_report.py LOG OUTDIR [key=value ...]

The key=value pairs describe the host machine (nproc, cpu, kernel, commit, date, command) and
go into the report's header. Only the standard library is used.
"""
import json
import sys
from pathlib import Path

# Goals of issue 7 (ratios rkmem/host, lower is better).
GOAL_SLAB_PAIR = 1.0
GOAL_PAGES = 1.0
GOAL_PAGES_ORDERS = {0, 1, 2, 3}


def parse(log):
    rows = []
    for line in Path(log).read_text(errors="replace").splitlines():
        i = line.find("RKBENCH {")
        if i < 0:
            continue
        try:
            rows.append(json.loads(line[i + len("RKBENCH "):].strip()))
        except json.JSONDecodeError:
            pass  # a line cut by kernel messages on the console
    return rows


# ---------------------------------------------------------------- SVG

COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b"]


def esc(s):
    return str(s).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def svg_doc(w, h, body, title):
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" '
        f'viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="12">\n'
        f'<rect width="{w}" height="{h}" fill="white"/>\n'
        f'<text x="{w / 2}" y="20" text-anchor="middle" font-size="15">{esc(title)}</text>\n'
        + "\n".join(body)
        + "\n</svg>\n"
    )


def nice_max(v):
    if v <= 0:
        return 1.0
    import math

    e = 10 ** math.floor(math.log10(v))
    for m in (1, 2, 2.5, 5, 10):
        if m * e >= v:
            return m * e
    return 10 * e


def axes(body, x0, y0, pw, ph, ymax, ylabel, ticks=5):
    body.append(f'<line x1="{x0}" y1="{y0}" x2="{x0}" y2="{y0 - ph}" stroke="black"/>')
    body.append(f'<line x1="{x0}" y1="{y0}" x2="{x0 + pw}" y2="{y0}" stroke="black"/>')
    for t in range(ticks + 1):
        v = ymax * t / ticks
        y = y0 - ph * t / ticks
        body.append(f'<line x1="{x0 - 4}" y1="{y}" x2="{x0 + pw}" y2="{y}" stroke="#ddd"/>')
        lab = f"{v:.3g}"
        body.append(f'<text x="{x0 - 6}" y="{y + 4}" text-anchor="end">{lab}</text>')
    body.append(
        f'<text x="16" y="{y0 - ph / 2}" transform="rotate(-90 16 {y0 - ph / 2})" '
        f'text-anchor="middle">{esc(ylabel)}</text>'
    )


def legend(body, x, y, names):
    for i, n in enumerate(names):
        body.append(f'<rect x="{x}" y="{y + i * 18}" width="12" height="12" fill="{COLORS[i % 6]}"/>')
        body.append(f'<text x="{x + 18}" y="{y + i * 18 + 11}">{esc(n)}</text>')


def bar_chart(path, title, groups, series, values, ylabel):
    """values[s][g]: value of series s in group g (None: missing)."""
    w, h = max(640, 90 + len(groups) * (28 * len(series) + 24) + 160), 380
    x0, y0, pw, ph = 70, h - 50, w - 70 - 170, h - 90
    vals = [v for s in values for v in s if v is not None]
    ymax = nice_max(max(vals) if vals else 1)
    body = []
    axes(body, x0, y0, pw, ph, ymax, ylabel)
    gw = pw / max(1, len(groups))
    bw = (gw - 16) / max(1, len(series))
    for gi, g in enumerate(groups):
        gx = x0 + gi * gw + 8
        for si in range(len(series)):
            v = values[si][gi]
            if v is None:
                continue
            bh = ph * v / ymax
            body.append(
                f'<rect x="{gx + si * bw:.1f}" y="{y0 - bh:.1f}" width="{bw - 2:.1f}" '
                f'height="{bh:.1f}" fill="{COLORS[si % 6]}"><title>{esc(series[si])} {esc(g)}: '
                f'{v:.3g}</title></rect>'
            )
        body.append(f'<text x="{gx + gw / 2 - 8}" y="{y0 + 16}" text-anchor="middle">{esc(g)}</text>')
    legend(body, x0 + pw + 16, 40, series)
    Path(path).write_text(svg_doc(w, h, body, title))


def line_chart(path, title, xs, series, values, xlabel, ylabel, ymax=None):
    w, h = 760, 400
    x0, y0, pw, ph = 70, h - 50, w - 70 - 170, h - 90
    vals = [v for s in values for v in s if v is not None]
    ymax = ymax or nice_max(max(vals) if vals else 1)
    xmin, xmax = min(xs), max(xs)
    span = (xmax - xmin) or 1
    body = []
    axes(body, x0, y0, pw, ph, ymax, ylabel)
    for t in range(6):
        xv = xmin + span * t / 5
        x = x0 + pw * t / 5
        body.append(f'<text x="{x}" y="{y0 + 16}" text-anchor="middle">{xv:.4g}</text>')
    body.append(f'<text x="{x0 + pw / 2}" y="{h - 10}" text-anchor="middle">{esc(xlabel)}</text>')
    for si, s in enumerate(series):
        pts = [
            f"{x0 + pw * (x - xmin) / span:.1f},{y0 - ph * min(v, ymax) / ymax:.1f}"
            for x, v in zip(xs, values[si])
            if v is not None
        ]
        body.append(
            f'<polyline fill="none" stroke="{COLORS[si % 6]}" stroke-width="1.5" '
            f'points="{" ".join(pts)}"/>'
        )
    legend(body, x0 + pw + 16, 40, series)
    Path(path).write_text(svg_doc(w, h, body, title))


# ---------------------------------------------------------------- report


def fmt(v, d=1):
    return "n/a" if v is None else f"{v:.{d}f}"


def main():
    log, out = sys.argv[1], Path(sys.argv[2])
    info = dict(a.split("=", 1) for a in sys.argv[3:])
    out.mkdir(parents=True, exist_ok=True)
    rows = parse(log)
    by = lambda name: [r for r in rows if r.get("bench") == name]  # noqa: E731
    guest = (by("guest") or [{}])[0]
    meta = (by("meta") or [{}])[0]
    errors = [r for r in rows if "error" in r]
    ncpu = meta.get("cpus", 1)
    md = []
    p = md.append
    p(f"# rkmem benchmarks, {info.get('date', '')}\n")
    p(f"Command: `{info.get('command', 'make bench')}` (commit `{info.get('commit', '?')}`).\n")
    p("| | |\n| --- | --- |")
    p(f"| host machine | {info.get('nproc', '?')} CPUs, {info.get('cpu', '?')} |")
    p(f"| host kernel | {info.get('kernel', '?')} |")
    accel = info.get("accel", "TCG")
    emu = "**TCG emulation** (no KVM)" if accel == "TCG" else "KVM"
    p(f"| guest | QEMU {emu}, {guest.get('nproc', '?')} vCPUs "
      f"({guest.get('model', '?')}), {int(guest.get('mem_kb', 0)) // 1024} MiB |")
    p(f"| guest kernel | {meta.get('kernel', '?')} (rkmem's `fast` kernel: SLUB, not SLUB_TINY) |")
    p(f"| counts | {meta.get('iters', '?')} alloc+free pairs per repetition, "
      f"{meta.get('reps', '?')} repetitions, median reported |")
    p("")
    if accel == "TCG":
        p("**All timings are measured inside a TCG-emulated guest.** Absolute nanoseconds mean "
          "little (every guest instruction is translated); compare only the ratios rkmem/host "
          "measured in the same run.")
    p("A ratio below 1.0 means rkmem is faster.\n")
    p("Every number comes from `RKMEM_IOC_BENCH`, which runs rkmem's loop and the host kernel's "
      "counterpart inside the kernel, back to back in one call (alternating which goes first), "
      "after a warm-up. On all CPUs, one pinned thread per CPU runs rkmem's side at the same "
      "time, then the host's; throughput is summed over the threads. Slab benchmarks create a "
      "fresh rkmem cache and a fresh SLUB cache (`SLAB_NO_MERGE`, align 8) per call and thread; "
      "rkmalloc and kmalloc use the shared caches.\n")
    if errors:
        p("## Errors\n")
        for r in errors:
            p(f"- `{json.dumps(r)}`")
        p("")

    shortfalls = []

    def table(name, title, key, keyname, goal=None, goal_keys=None, extra=None):
        rs = by(name)
        if not rs:
            return
        p(f"## {title}\n")
        head = f"| {keyname} | CPUs | rkmem ns/op | host ns/op | ratio rkmem/host | rkmem Mops/s | host Mops/s |"
        sep = "| --- | --- | --- | --- | --- | --- | --- |"
        if extra:
            head += "".join(f" {e[0]} |" for e in extra)
            sep += " --- |" * len(extra)
        if goal is not None:
            head += " goal |"
            sep += " --- |"
        p(head)
        p(sep)
        for r in rs:
            if "ratio" not in r:
                continue
            line = (f"| {r[key]} | {r['cpus']} | {fmt(r['rkmem_ns'])} | {fmt(r['host_ns'])} | "
                    f"{fmt(r['ratio'], 2)} | {fmt(r['rkmem_mops'], 2)} | {fmt(r['host_mops'], 2)} |")
            if extra:
                line += "".join(f" {e[1](r)} |" for e in extra)
            if goal is not None:
                if goal_keys is None or r[key] in goal_keys:
                    ok = r["ratio"] is not None and r["ratio"] <= goal
                    line += " met |" if ok else f" **missed** ({r['ratio']:.2f}x > {goal:.1f}x) |"
                    if not ok:
                        shortfalls.append(f"{title}, {keyname} {r[key]}, {r['cpus']} CPU(s): "
                                          f"{r['ratio']:.2f}x the host's time (goal <= {goal:.1f}x)")
                else:
                    line += " - |"
            p(line)
        p("")

    table("slab_pair", "Slab cache: alloc+free pairs (rkmem bitmap slab vs SLUB)", "size",
          "object size", goal=GOAL_SLAB_PAIR)
    table("slab_batch", "Slab cache: batches of 1000 allocations then 1000 frees", "size",
          "object size",
          extra=[("rkmem KiB held", lambda r: r.get("rkmem_bytes", 0) // 1024),
                 ("SLUB KiB held", lambda r: r.get("host_bytes", 0) // 1024)])
    table("kmalloc", "rkmalloc vs kmalloc (alloc+free pairs, shared size classes)", "size", "size")
    table("pages", "Buddy: rkmem arena vs alloc_pages/__free_pages (pairs)", "order", "order",
          goal=GOAL_PAGES, goal_keys=GOAL_PAGES_ORDERS)
    table("mempool", "Mempool: rkmem mempool over rkmalloc vs mempool_create_kmalloc_pool "
          "(reserve 16, pairs)", "size", "element size")

    # Scaling
    scal = []
    for name, key in (("slab_pair", "size"), ("slab_batch", "size"), ("kmalloc", "size"),
                      ("pages", "order"), ("mempool", "size")):
        one = {r[key]: r for r in by(name) if r.get("cpus") == 1 and "ratio" in r}
        many = {r[key]: r for r in by(name) if r.get("cpus", 1) > 1 and "ratio" in r}
        for k in one:
            if k in many:
                scal.append((f"{name} {key} {k}", one[k], many[k]))
    if scal:
        p(f"## Scaling: throughput on 1 CPU vs {ncpu} CPUs\n")
        p(f"Speed-up = throughput on {ncpu} CPUs / throughput on 1 CPU (ideal: {ncpu}). Under TCG "
          "the vCPUs are threads of the emulator on a shared host, so this shows contention in "
          "the allocators more than hardware scaling.\n")
        p("| benchmark | rkmem speed-up | host speed-up |")
        p("| --- | --- | --- |")
        for n, a, b in scal:
            p(f"| {n} | {b['rkmem_mops'] / a['rkmem_mops']:.2f} | {b['host_mops'] / a['host_mops']:.2f} |")
        p("")
        bar_chart(out / "scaling.svg", f"Throughput speed-up, {ncpu} CPUs vs 1 (ideal {ncpu})",
                  [n.replace("slab_", "").replace(" size ", " ") for n, _, _ in scal],
                  ["rkmem", "host"],
                  [[b["rkmem_mops"] / a["rkmem_mops"] for _, a, b in scal],
                   [b["host_mops"] / a["host_mops"] for _, a, b in scal]], "speed-up")
        p("![scaling](scaling.svg)\n")

    # Latency plots
    for name, key, title, fname in (
        ("slab_pair", "size", "Slab alloc+free pair, 1 CPU (ns, TCG)", "slab_pair.svg"),
        ("slab_batch", "size", "Slab batch of 1000, per pair, 1 CPU (ns, TCG)", "slab_batch.svg"),
        ("kmalloc", "size", "rkmalloc vs kmalloc pair, 1 CPU (ns, TCG)", "kmalloc.svg"),
        ("pages", "order", "Buddy alloc+free by order, 1 CPU (ns, TCG)", "pages.svg"),
        ("mempool", "size", "Mempool alloc+free, 1 CPU (ns, TCG)", "mempool.svg"),
    ):
        rs = [r for r in by(name) if r.get("cpus") == 1 and "ratio" in r]
        if rs:
            bar_chart(out / fname, title, [str(r[key]) for r in rs], ["rkmem", "host"],
                      [[r["rkmem_ns"] for r in rs], [r["host_ns"] for r in rs]], "ns per alloc+free")
    p("## Latency plots (1 CPU)\n")
    for f in ("slab_pair", "slab_batch", "kmalloc", "pages", "mempool"):
        if (out / f"{f}.svg").exists():
            p(f"![{f}]({f}.svg)")
    p("")

    # Objects per slab
    lay = [r for r in by("layout") if "rkmem_objs" in r]
    if lay:
        p("## Objects per slab: rkmem vs SLUB (align 8)\n")
        p("SLUB's figures are measured in the guest: a fresh `SLAB_NO_MERGE` cache of each size "
          "hands out objects until they span 17 slabs, and the most objects found in one slab "
          "folio (and its order) are its objects per slab; `/sys/kernel/slab/kmalloc-*` "
          "below cross-checks the method. *Density* is objects per 4 KiB page, which compares "
          "slabs of different orders.\n")
        less = [r for r in lay if r["rkmem_objs"] < r["host_objs"]]
        dens_less = [r for r in lay
                     if r["rkmem_objs"] / r["rkmem_pages"] < r["host_objs"] / r["host_pages"] - 1e-9]
        p(f"- sizes measured: {len(lay)} ({lay[0]['size']}..{lay[-1]['size']})")
        p(f"- rkmem has fewer objects per slab than SLUB at {len(less)} sizes, "
          f"more or equal at {len(lay) - len(less)}")
        p(f"- rkmem has a lower density (objects per page) than SLUB at {len(dens_less)} sizes")
        if less:
            worst = sorted(less, key=lambda r: r["rkmem_objs"] / r["host_objs"])[:8]
            p("- largest shortfalls: " + ", ".join(
                f"{r['size']} B: {r['rkmem_objs']}/{r['rkmem_pages']}p vs "
                f"{r['host_objs']}/{r['host_pages']}p" for r in worst))
            shortfalls.append(f"Objects per slab: fewer than SLUB's at {len(less)} of {len(lay)} "
                              f"sizes (goal: >= SLUB's at every size); lower objects-per-page "
                              f"density at {len(dens_less)} sizes")
        p("")
        sel = [r for r in lay if r["size"] in (8, 16, 32, 64, 96, 117, 128, 192, 256, 512, 1024, 2048, 4096)]
        p("| size | rkmem objs/slab | rkmem pages | SLUB objs/slab | SLUB pages | rkmem objs/page | SLUB objs/page |")
        p("| --- | --- | --- | --- | --- | --- | --- |")
        for r in sel:
            p(f"| {r['size']} | {r['rkmem_objs']} | {r['rkmem_pages']} | {r['host_objs']} | "
              f"{r['host_pages']} | {r['rkmem_objs'] / r['rkmem_pages']:.1f} | "
              f"{r['host_objs'] / r['host_pages']:.1f} |")
        p("")
        xs = [r["size"] for r in lay]
        line_chart(out / "objs_per_page.svg", "Objects per 4 KiB page vs object size (align 8)",
                   xs, ["rkmem", "SLUB"],
                   [[r["rkmem_objs"] / r["rkmem_pages"] for r in lay],
                    [r["host_objs"] / r["host_pages"] for r in lay]], "object size (bytes)",
                   "objects per page", ymax=64)
        line_chart(out / "objs_per_slab.svg", "Objects per slab vs object size (align 8)",
                   xs, ["rkmem", "SLUB"],
                   [[r["rkmem_objs"] for r in lay], [r["host_objs"] for r in lay]],
                   "object size (bytes)", "objects per slab", ymax=64)
        p("![objects per slab](objs_per_slab.svg)\n")
        p("![objects per page](objs_per_page.svg)\n(both plots cut at 64 objects: small sizes "
          "have hundreds per slab)\n")
    sysfs = by("sysfs_slab")
    if sysfs:
        if any("error" in r for r in sysfs):
            p("`/sys/kernel/slab` is absent in the guest: " + sysfs[0]["error"] + "\n")
        else:
            bysize = {r["size"]: r for r in lay}
            p("Cross-check with the kernel's own kmalloc caches (`/sys/kernel/slab/kmalloc-N`):\n")
            p("| cache | objs_per_slab | order | probe: objs/slab | probe: pages |")
            p("| --- | --- | --- | --- | --- |")
            for r in sysfs:
                q = bysize.get(r["size"], {})
                p(f"| {r['cache']} | {r['objs_per_slab']} | {r['order']} | "
                  f"{q.get('host_objs', '-')} | {q.get('host_pages', '-')} |")
            p("")

    # Fragmentation
    fr = by("frag")
    if fr:
        p("## Fragmentation of rkmem's arena under a long random workload\n")
        p(f"Random page allocations (orders 0..5, small ones more often) and frees of random live "
          f"blocks, {fr[-1]['op']} operations, about 1500 blocks live at the steady state; the "
          f"kernel's unusable free space index per order (0: all free memory usable for that "
          f"order, 1: none) sampled {len(fr)} times from `/proc/rkmem/extfrag`.\n")
        p("| op | live blocks | arena pages | free pages | " +
          " | ".join(f"o{i}" for i in range(11)) + " |")
        p("| --- | --- | --- | --- | " + " | ".join("---" for _ in range(11)) + " |")
        for r in fr[:: max(1, len(fr) // 10)] + ([fr[-1]] if len(fr) % 10 else []):
            p(f"| {r['op']} | {r['live']} | {r['arena_pages']} | {r['free_pages']} | " +
              " | ".join(f"{v:.3f}" for v in r["unusable"]) + " |")
        p("")
        orders = [1, 3, 5, 7, 9]
        line_chart(out / "fragmentation.svg", "Unusable free space index over the workload",
                   [r["op"] for r in fr], [f"order {o}" for o in orders],
                   [[r["unusable"][o] for r in fr] for o in orders], "operations",
                   "unusable index", ymax=1.0)
        p("![fragmentation](fragmentation.svg)\n")
        end = by("frag_end")
        if end:
            p(f"After freeing everything and a trim, buddyinfo is back to its start: "
              f"{end[0]['buddyinfo_restored']}.\n")
    bc = by("buddyinfo_check")
    if bc:
        p(f"After the timed benchmarks and a trim, `/proc/rkmem/buddyinfo` is as before: "
          f"{bc[0]['restored']}.\n")

    p("## Where rkmem falls short of the goals of issue 7\n")
    if shortfalls:
        for s in shortfalls:
            p(f"- {s}")
    else:
        p("- none in this run")
    p("- Host-side peers (criterion benchmarks against `buddy_system_allocator` and "
      "`slabmalloc`, callgrind counts): not measured yet.")
    p("")
    (out / "report.md").write_text("\n".join(md) + "\n")
    (out / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    print(out / "report.md")


if __name__ == "__main__":
    main()
