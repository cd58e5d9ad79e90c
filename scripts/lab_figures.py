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
        fig, ax = plt.subplots(figsize=(10, 0.55 * len(rows) + 1.4))
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


DRAW = OrderedDict(buddy=draw_buddy, bitmap=draw_bitmap, slab=draw_slab)


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
