#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""The pictures of `rkmemctl lab`, drawn with matplotlib as PNG for slides.

    scripts/lab_figures.py draw INPUT OUTDIR [CHAPTER...]

INPUT is a guest's console log (`make lab` prints each chapter's figure data as `RKLAB {json}`
lines) or the JSON lines themselves (`rkmemctl lab --data FILE`). Each chapter found there is
drawn as OUTDIR/CHAPTER.png (only the CHAPTERs given, if any). A chapter with no drawing here,
a record of the wrong shape or a chapter asked for but not in INPUT is an error (exit 1), so a
chapter cannot silently lose its picture. scripts/lab.sh (`make lab`) runs this on the host
after the guest, into results/lab-DATE-FLAVOR/; `make lab-figures` redraws the README's
screenshots (docs/lab/) from the committed run (tests/results/lab-figures.jsonl).
"""
import json
import sys
from collections import OrderedDict
from pathlib import Path

FREE = "#e8eef4"
USED = ["#4c78a8", "#f58518", "#54a24b", "#e45756", "#72b7b2", "#b279a2", "#eeca3b",
        "#9d755d"]


def pyplot():
    try:
        import matplotlib
    except ImportError as e:
        sys.exit(f"lab_figures.py: {sys.executable} cannot import matplotlib ({e}); "
                 "scripts/setup.sh installs Debian's python3-matplotlib for /usr/bin/python3")
    matplotlib.use("Agg")
    matplotlib.rcParams.update({"font.size": 9, "axes.axisbelow": True})
    import matplotlib.pyplot as plt

    return plt


class BadData(Exception):
    """A chapter's records are not what its drawing expects."""


def records(path):
    """The figure records of INPUT, in order: {"chapter", "figure", "data"} dicts."""
    out = []
    for n, line in enumerate(Path(path).read_text(errors="replace").splitlines(), 1):
        i = line.find("RKLAB ")
        text = line[i + 6:] if i >= 0 else line
        if not text.startswith("{"):
            continue
        try:
            r = json.loads(text)
        except json.JSONDecodeError as e:
            raise BadData(f"{path}:{n}: not JSON ({e})") from e
        if not isinstance(r, dict) or not {"chapter", "figure", "data"} <= r.keys():
            raise BadData(f"{path}:{n}: not a figure record (chapter, figure, data)")
        out.append(r)
    return out


def need(recs, figure):
    rows = [r["data"] for r in recs if r["figure"] == figure]
    if not rows:
        raise BadData(f"no {figure!r} record")
    return rows


def owner_colors(names):
    return {n: USED[i % len(USED)] for i, n in enumerate(sorted(set(names)))}


# ------------------------------------------------------------------- chapter 1: buddy


def draw_buddy(plt, recs):
    """The textbook's table as bars: one row per t, the region's blocks to scale, each used
    block in its owner's colour, every row marked if it differs from the textbook's."""
    rows = need(recs, "row")
    try:
        region = rows[0]["region_kib"]
        colors = owner_colors(b["owner"] for r in rows for b in r["blocks"] if b["owner"])
        fig, ax = plt.subplots(figsize=(11, 0.55 * len(rows) + 1.4))
        for y, r in enumerate(rows):
            for b in r["blocks"]:
                used = b["owner"] is not None
                ax.barh(y, b["kib"], left=b["start_kib"], height=0.72,
                        color=colors[b["owner"]] if used else FREE, edgecolor="#333333",
                        linewidth=0.8)
                label = f"{b['owner']}-{b['kib']}K" if used else f"{b['kib']}K"
                ax.text(b["start_kib"] + b["kib"] / 2, y, label, ha="center", va="center",
                        fontsize=8, color="white" if used else "#333333")
            mark = "" if r["same"] else "  DIFFERS"
            ax.text(region * 1.01, y, f"{r['step']}{mark}", va="center", fontsize=8,
                    color="#b00000" if mark else "#333333")
    except (KeyError, TypeError) as e:
        raise BadData(f"buddy row without {e}") from e
    ax.set_yticks(range(len(rows)), [f"t={r['t']}" for r in rows])
    ax.invert_yaxis()
    ax.set_xlim(0, region)
    ax.set_xticks([region * i / 16 for i in range(17)],
                  [f"{region * i // 16}K" if i % 4 == 0 else "" for i in range(17)])
    ax.set_xlabel("the region, in KiB from its start (rkmem's arena slot 0, from "
                  "RKMEM_IOC_ARENA_MAP after each step)")
    same = sum(r["same"] for r in rows)
    ax.set_title(f"The buddy system on rkmem's arena: {same} of {len(rows)} rows as the textbook's")
    for s in ("top", "right", "left"):
        ax.spines[s].set_visible(False)
    fig.tight_layout()
    return fig


# ------------------------------------------------------------------- chapter 2: bitmap


def draw_bitmap(plt, recs):
    """The page of the bitmap allocator, to scale, at the steps that change its shape: the
    header and bitmap, the color, each object slot filled when its bit is set."""
    layout = need(recs, "layout")[0]
    steps = need(recs, "step")
    try:
        objs, size, page = layout["objects"], layout["size"], layout["page_bytes"]
        # The first allocation, the page full, the frees, the bits reused, the second page.
        keep = [steps[0], steps[objs - 1]] + steps[objs:]
        fig, axs = plt.subplots(len(keep), 1, figsize=(11, 0.95 * len(keep) + 0.8),
                                squeeze=False)
        for ax, s in zip(axs[:, 0], keep):
            npages = len(s["pages"])
            for p, pg in enumerate(s["pages"]):
                y = npages - 1 - p
                ax.barh(y, layout["header_bytes"], left=0, color="#999999", height=0.7)
                ax.barh(y, layout["bitmap_bytes"], left=layout["header_bytes"],
                        color="#222222", height=0.7)
                start = layout["data_offset"] + pg["color"]
                for n, bit in enumerate(pg["bits"]):
                    hit = s["page"] == p + 1 and s["n"] == n
                    ax.barh(y, size, left=start + n * size, height=0.7,
                            color=("#e45756" if hit else USED[0]) if bit else
                            ("#f4b6b6" if hit else FREE),
                            edgecolor="#333333", linewidth=0.4)
            ax.set_xlim(0, page)
            ax.set_ylim(-0.6, max(npages, 2) - 0.4)
            ax.set_yticks(range(npages), [f"page {npages - i}" for i in range(npages)])
            ax.set_xticks([])
            for sp in ("top", "right", "left", "bottom"):
                ax.spines[sp].set_visible(False)
            ax.set_title(f"step {s['step']}: {s['label']}: N={s['n']} at offset {s['offset']} "
                         f"of page {s['page']} (rkmem: N={s['rkmem_n']} at {s['rkmem_offset']})",
                         fontsize=8, loc="left")
        axs[-1, 0].set_xticks([0, layout["data_offset"], page // 2, page],
                              ["0", str(layout["data_offset"]), str(page // 2), str(page)])
        axs[-1, 0].set_xlabel(
            f"bytes of the page: {layout['header_bytes']}-byte header (grey), "
            f"{layout['bitmap_bytes']}-byte bitmap (black), then {objs} objects of {size} bytes "
            "(blue: bit set; red: the step's object)")
    except (KeyError, TypeError, IndexError) as e:
        raise BadData(f"bitmap record without {e}") from e
    fig.suptitle(f"A bitmap allocator for a {size}-byte struct: {objs} objects per page, "
                 "first zero bit first", fontsize=10)
    fig.tight_layout()
    return fig


# ------------------------------------------------------------------- chapter 3: slab


def draw_slab(plt, recs):
    """The cache's three lists after each step, one row per step: each slab a box on its list
    (front first), filled to its objects in use and named by the order it was made; the slabs
    that went back to the buddy allocator in the step dashed after them; the kernel's lists
    (RKMEM_IOC_CACHE_SLABS), each row marked if it differs from the textbook's; slabinfo and
    the shrinker's counters on the right."""
    from matplotlib.patches import Rectangle

    layout = need(recs, "layout")[0]
    steps = need(recs, "step")
    lists = ("full", "partial", "empty")
    try:
        objs = layout["objects"]
        width = {l: max(1, max(len(s[side][l]) for s in steps for side in ("rkmem", "textbook")))
                 for l in lists}
        width["released"] = max(1, max(len(s["released"]) for s in steps))
        names = sorted({b["name"] for s in steps for side in ("rkmem", "textbook")
                        for l in lists for b in s[side][l]} |
                       {n for s in steps for n in s["released"]})
        colors = {n: USED[i % len(USED)] for i, n in enumerate(names)}
        box, gap, sep = 1.5, 0.3, 2.0
        x0 = {}
        x = 0.0
        for l in lists + ("released",):
            x0[l] = x
            x += width[l] * (box + gap) + sep
        right = x - sep
        fig, (ax, axn) = plt.subplots(1, 2, figsize=(15, 0.42 * len(steps) + 1.8), sharey=True,
                                      gridspec_kw={"width_ratios": [2.7, 1]})
        for y, s in enumerate(steps):
            for l in lists:
                for i, b in enumerate(s["rkmem"][l]):
                    bx = x0[l] + i * (box + gap)
                    ax.add_patch(Rectangle((bx, y - 0.36), box, 0.72, facecolor=FREE,
                                           edgecolor="#333333", linewidth=0.7))
                    h = 0.72 * b["in_use"] / objs
                    ax.add_patch(Rectangle((bx, y + 0.36 - h), box, h,
                                           facecolor=colors[b["name"]], edgecolor="none"))
                    label = b["name"] if l != "partial" else f"{b['name']}\n{b['in_use']}/{objs}"
                    ax.text(bx + box / 2, y, label, ha="center", va="center",
                            fontsize=7.5 if l != "partial" else 6.5, linespacing=0.95,
                            color="white" if b["in_use"] * 2 >= objs else "#222222")
            for i, n in enumerate(s["released"]):
                bx = x0["released"] + i * (box + gap)
                ax.add_patch(Rectangle((bx, y - 0.36), box, 0.72, facecolor="none",
                                       edgecolor=colors[n], linewidth=1.0, linestyle="--"))
                ax.text(bx + box / 2, y, n, ha="center", va="center", fontsize=8,
                        color=colors[n])
            si = s["slabinfo"]
            note = (f"{si['active_objs']:>3} {si['num_objs']:>3} {si['active_slabs']:>2} "
                    f"{si['num_slabs']:>2}")
            if s.get("shrinker"):
                b, a = s["shrinker"]["before"], s["shrinker"]["after"]
                note += (f"   shrinker: scans +{a['scan_calls'] - b['scan_calls']}, "
                         f"pages_to_host +{a['pages_to_host'] - b['pages_to_host']}")
            same = s["same"] and s["slabinfo_ok"]
            if not same:
                note += "   DIFFERS"
            axn.text(0, y, note, va="center", fontsize=7.5, family="monospace",
                     color="#333333" if same else "#b00000")
    except (KeyError, TypeError, ValueError, ZeroDivisionError) as e:
        raise BadData(f"slab record without {e}") from e
    for l, title in zip(lists + ("released",),
                        ("full", "partial", "empty", "back to the buddy allocator")):
        ax.text(x0[l], -0.8, title, ha="left", va="bottom", fontsize=9, fontweight="bold")
    axn.text(0, -0.8, "slabinfo: active_objs num_objs\nactive_slabs num_slabs", ha="left",
             va="bottom", fontsize=8, fontweight="bold")
    ax.set_xlim(-0.3, right + 0.3)
    ax.set_ylim(len(steps) - 0.4, -1.2)
    ax.set_yticks(range(len(steps)),
                  [f"{s['step']}. {s['label'].replace('/proc/sys/vm/', '')}" for s in steps])
    ax.set_xticks([])
    for sp in ("top", "right", "bottom"):
        ax.spines[sp].set_visible(False)
    axn.set_xlim(0, 1)
    axn.axis("off")
    same = sum(s["same"] and s["slabinfo_ok"] for s in steps)
    fig.suptitle(f"Slab cache states: {layout['size']}-byte objects, {objs} per slab of "
                 f"{layout['pages']} page(s), {layout['keep_empty']} empty slabs kept: "
                 f"{same} of {len(steps)} steps as the textbook's\n"
                 "rkmem's lists after each step (RKMEM_IOC_CACHE_SLABS), each list front first, "
                 "each slab filled to its objects in use", fontsize=9.5)
    fig.tight_layout()
    return fig


# ------------------------------------------------------------------- chapter 4: watermarks


def draw_watermarks(plt, recs):
    """Free pages through the stages against the two levels (the bands shaded by who cleans
    there), and beside it the pages each cleaner took back per stage."""
    stages = need(recs, "stage")
    last = need(recs, "last_resort")[0]
    try:
        low, high, top = stages[0]["low"], stages[0]["high"], stages[0]["max_pages"]
        fig, (ax, bx) = plt.subplots(1, 2, figsize=(11, 4.2), width_ratios=(3, 2))
        ax.axhspan(low, top, color="#eef6ee", zorder=0)
        ax.axhspan(high, low, color="#fff4dd", zorder=0)
        ax.axhspan(0, high, color="#fbe3e3", zorder=0)
        ax.axhline(low, color="#54a24b", lw=1)
        ax.axhline(high, color="#e45756", lw=1)
        x, y = [], []
        for i, s in enumerate(stages):
            x += [i, i + 0.5, i + 1]
            y += [s["free_before"], s["lowest_free"], s["free_after"]]
            mark = "" if s["same"] else " DIFFERS"
            ax.annotate(f"stage {s['stage']}{mark}", (i + 0.5, s["lowest_free"]),
                        textcoords="offset points", xytext=(0, -14), ha="center", fontsize=8)
        ax.plot(x, y, "-o", color=USED[0], ms=3)
        ax.text(0.99, low, f"low {low}: below it the background worker cleans ",
                transform=ax.get_yaxis_transform(), va="bottom", ha="right", fontsize=8)
        ax.text(0.99, high, f"high {high}: below it the allocating task cleans ",
                transform=ax.get_yaxis_transform(), va="top", ha="right", fontsize=8)
        lo = min(min(y), high) - 600
        hi = max(max(y), low) + 600
        ax.set_ylim(max(0, lo), min(top, hi))
        ax.set_xticks([])
        ax.set_ylabel("free pages of the arena (/proc/rkmem/watermarks)")
        ax.set_title(f"free pages through the stages (arena max {top} pages)")
        xs = range(len(stages))
        w = [s["async_pages"] for s in stages]
        t = [s["sync_pages"] for s in stages]
        bx.bar([i - 0.2 for i in xs], w, 0.4, label="background worker (async)", color=USED[1])
        bx.bar([i + 0.2 for i in xs], t, 0.4, label="allocating task (sync)", color=USED[3])
        bx.set_xticks(list(xs), [f"stage {s['stage']}" for s in stages])
        bx.set_ylabel("pages cleaned")
        bx.legend(fontsize=8)
        bx.set_title(f"who cleaned; then {last['blocks']} more 4 MiB blocks and "
                     f"{last['error'].split(':')[0]}", fontsize=9)
    except (KeyError, TypeError, IndexError) as e:
        raise BadData(f"watermarks record without {e}") from e
    fig.suptitle("Cleaning with two thresholds: rkmem's watermarks", fontsize=10)
    fig.tight_layout()
    return fig


# ------------------------------------------------------------------- chapter 6: fragmentation


def draw_fragmentation(plt, recs):
    """Left: the arena's slots before and after compaction, every block to scale (used, exact,
    free); right: the unusable free space index and the free blocks per order, both states."""
    states = need(recs, "state")
    comp = need(recs, "compaction")[0]
    try:
        kinds = states[0]["block_kinds"]
        color = {kinds["used"]: USED[0], kinds["exact"]: USED[2], kinds["free"]: FREE}
        nslots = max(len(s["slots"]) for s in states)
        fig = plt.figure(figsize=(12, 1.1 + 0.45 * nslots * len(states) + 1.2))
        grid = fig.add_gridspec(len(states), 2, width_ratios=(3, 2))
        for i, s in enumerate(states):
            ax = fig.add_subplot(grid[i, 0])
            for y, slot in enumerate(s["slots"]):
                for start, pages, kind in slot["blocks"]:
                    ax.barh(y, pages, left=start, height=0.7, color=color.get(kind, "#999999"),
                            edgecolor="#333333" if pages >= 16 else "none", linewidth=0.2)
            ax.set_yticks(range(len(s["slots"])), [f"slot {x['slot']}" for x in s["slots"]])
            ax.set_ylim(nslots - 0.5, -0.5)
            ax.set_xlim(0, s["slots"][0]["pages"] if s["slots"] else 1024)
            ax.set_xticks([])
            mark = "" if s["same"] else " (indices DIFFER from the textbook's)"
            ax.set_title(f"{s['label']}: {s['free_pages']} of {s['arena_pages']} pages free, "
                         f"largest free block order {s['largest_free_order']}{mark}",
                         fontsize=9, loc="left")
        ax.set_xlabel("pages of each 4 MiB slot (blue: used, green: exact, light: free)")
        ux = fig.add_subplot(grid[0, 1])
        for s, c in zip(states, (USED[3], USED[2])):
            ux.plot(range(len(s["unusable"])), [u / 1000 for u in s["unusable"]], "-o", ms=3,
                    color=c, label=s["label"])
        ux.axvline(comp["request_order"], color="#888888", lw=0.8, ls="--")
        ux.set_ylabel("unusable free space index")
        ux.set_ylim(-0.05, 1.05)
        ux.legend(fontsize=8)
        ux.set_title(f"order-{comp['request_order']} request (dashed): "
                     f"{'new block from the host' if comp['grew_before'] else 'served'} before",
                     fontsize=9)
        if len(states) > 1:
            bx = fig.add_subplot(grid[1, 1])
            orders = range(len(states[0]["nr_free"]))
            for k, (s, c) in enumerate(zip(states, (USED[3], USED[2]))):
                bx.bar([o + (k - 0.5) * 0.4 for o in orders], s["nr_free"], 0.4, color=c,
                       label=s["label"])
            bx.set_yscale("symlog")
            bx.set_xlabel("order")
            bx.set_ylabel("free blocks (buddyinfo)")
            bx.set_title(f"compaction: {comp['pages_moved']} pages moved behind handles, "
                         f"{comp['slots_emptied']} slots emptied", fontsize=9)
    except (KeyError, TypeError, IndexError, ValueError) as e:
        raise BadData(f"fragmentation record without {e}") from e
    fig.suptitle("Fragmentation and compaction of rkmem's arena", fontsize=10)
    fig.tight_layout()
    return fig


# ------------------------------------------------------------------- chapter 5: routes

KIND_COLORS = {"slab": "#4c78a8", "pages": "#f58518", "vmalloc": "#54a24b", "none": "#bbbbbb"}


def human_bytes(n):
    for unit, div in (("M", 1 << 20), ("K", 1 << 10)):
        if n >= div and n % div == 0:
            return f"{n // div}{unit}"
    if n >= 1 << 10:
        return f"{n / 1024:.1f}K"
    return str(n)


def draw_routes(plt, recs):
    """Top: per size, one bar per route of the share of the bytes used that were not asked
    for (internal fragmentation), coloured by where the memory came from, the bytes used on
    top. Bottom: alloc_pages_exact's pages against the power-of-two block's, the saving."""
    sizes = need(recs, "size")
    exact = need(recs, "exact")
    try:
        routes = [r["route"] for r in sizes[0]["routes"]]
        fig, (ax, bx) = plt.subplots(2, 1, figsize=(12, 8.2),
                                     gridspec_kw={"height_ratios": [3, 2]})
        width = 0.8 / len(routes)
        for i, s in enumerate(sizes):
            for j, r in enumerate(s["routes"]):
                x = i + (j - (len(routes) - 1) / 2) * width
                if r["kind"] == "none":
                    ax.bar(x, 100, width=width * 0.92, color="white", edgecolor="#bbbbbb",
                           hatch="//", linewidth=0.6)
                    ax.text(x, 2, "none", ha="center", va="bottom", rotation=90, fontsize=6.5,
                            color="#777777")
                    continue
                used = r["bytes"]
                waste = 100.0 * (used - s["size"]) / used if used else 0.0
                # A tab below the axis in the route's colour: visible also when nothing is
                # wasted.
                ax.bar(x, -4, width=width * 0.92, color=KIND_COLORS[r["kind"]], linewidth=0)
                ax.bar(x, waste, width=width * 0.92, color=KIND_COLORS[r["kind"]],
                       edgecolor="#b00000" if not r["same"] else "#333333",
                       linewidth=1.6 if not r["same"] else 0.5)
                label = human_bytes(used) + ("+g" if r.get("guard") else "")
                ax.text(x, waste + 1.5, label, ha="center", va="bottom", rotation=90,
                        fontsize=6.5)
        ax.set_xticks(range(len(sizes)), [f"{s['label']} B" if "MiB" not in s["label"]
                                          else s["label"] for s in sizes])
        ax.set_ylim(-6, 125)
        ax.axhline(0, color="#333333", linewidth=0.6)
        ax.set_yticks([0, 25, 50, 75, 100])
        ax.set_ylabel("wasted, % of the bytes used\n(used - asked) / used")
        ax.set_xlabel("size asked; bars left to right: " + ", ".join(routes) +
                      " (label: bytes used, +g: and a guard page of address space)")
        handles = [plt.Rectangle((0, 0), 1, 1, color=c) for c in KIND_COLORS.values()]
        ax.legend(handles, ["a slab cache", "whole pages", "vmalloc", "not taken"],
                  loc="upper right", ncol=4, fontsize=8, frameon=False)
        same = sum(r["same"] for s in sizes for r in s["routes"])
        total = sum(len(s["routes"]) for s in sizes)
        ax.set_title(f"kmalloc, vmalloc, kvmalloc and rkmalloc: where each size came from and "
                     f"what it wasted ({same} of {total} as the textbook's)")
        ax.grid(axis="y", color="#dddddd", linewidth=0.6)
        for sp in ("top", "right"):
            ax.spines[sp].set_visible(False)

        # Each block as 100%: what alloc_pages_exact keeps of it, the rest saved.
        xs = range(len(exact))
        bw = 0.38
        bx.bar([x - bw / 2 for x in xs], [100.0] * len(exact), width=bw,
               color=KIND_COLORS["pages"], label="alloc_pages(get_order(size)): 2^order pages")
        bx.bar([x + bw / 2 for x in xs],
               [100.0 * e["kernel_exact_pages"] / e["kernel_block_pages"] for e in exact],
               width=bw, color="#72b7b2", label="alloc_pages_exact(size): the pages it kept")
        for x, e in zip(xs, exact):
            saved = e["block_pages"] - e["exact_pages"]
            mark = "" if e["same"] else "  DIFFERS"
            bx.text(x - bw / 2, 102, f"{e['kernel_block_pages']} pages", ha="center",
                    fontsize=8)
            bx.text(x + bw / 2, 100.0 * e["kernel_exact_pages"] / e["kernel_block_pages"] + 2,
                    f"keeps {e['kernel_exact_pages']}, saves {saved}{mark}", ha="center", fontsize=8,
                    color="#b00000" if mark else "#333333")
        bx.set_xticks(list(xs), [f"{e['pages']} pages asked\n(order {e['order']})"
                                 for e in exact])
        bx.set_ylim(0, 122)
        bx.set_yticks([0, 25, 50, 75, 100])
        bx.set_ylabel("pages held, % of the block")
        bx.legend(loc="upper right", fontsize=8, frameon=False, ncol=2,
                  bbox_to_anchor=(1.0, 1.12))
        bx.set_title("alloc_pages_exact against a power-of-two block", fontsize=9, loc="left")
        bx.grid(axis="y", color="#dddddd", linewidth=0.6)
        for sp in ("top", "right"):
            bx.spines[sp].set_visible(False)
    except (KeyError, TypeError, IndexError, ValueError) as e:
        raise BadData(f"routes record without {e}") from e
    fig.tight_layout()
    return fig


DRAW = OrderedDict(buddy=draw_buddy, bitmap=draw_bitmap, slab=draw_slab,
                   watermarks=draw_watermarks, routes=draw_routes,
                   fragmentation=draw_fragmentation)


def draw(inp, outdir, chapters):
    recs = records(inp)
    by = OrderedDict()
    for r in recs:
        by.setdefault(r["chapter"], []).append(r)
    for c in chapters:
        if c not in by:
            raise BadData(f"chapter {c!r} is not in {inp}")
    unknown = [c for c in by if c not in DRAW]
    if unknown:
        raise BadData(f"no drawing for chapter(s) {', '.join(unknown)} (lab_figures.py DRAW)")
    if not by:
        raise BadData(f"no figure records in {inp}")
    plt = pyplot()
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    drawn = []
    for c, rs in by.items():
        if chapters and c not in chapters:
            continue
        try:
            fig = DRAW[c](plt, rs)
        except BadData as e:
            raise BadData(f"chapter {c}: {e}") from e
        fig.savefig(outdir / f"{c}.png", dpi=100, metadata={"Software": None})
        plt.close(fig)
        drawn.append(outdir / f"{c}.png")
    return drawn


def main(argv):
    if len(argv) < 3 or argv[0] != "draw":
        sys.exit(__doc__)
    try:
        for p in draw(argv[1], argv[2], argv[3:]):
            print(p)
    except (BadData, OSError) as e:
        sys.exit(f"lab_figures.py: {e}")


if __name__ == "__main__":
    main(sys.argv[1:])
