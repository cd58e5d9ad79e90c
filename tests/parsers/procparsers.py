#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Real parsers of /proc/rkmem's kernel formats.

The fast guest's suite (tests/guest/procfiles.sh) captures /proc/rkmem/{buddyinfo, slabinfo,
stats, compaction, extfrag} under load and prints them to the console between markers with
their line counts and sha256. This script takes them out of the console log, parses each
independently (a strict parse of the kernel's exact layout: every line must render back to
itself), and feeds them to the Debian-packaged programs that read the kernel's files:

  procps slabtop                 slabinfo, bind-mounted over /proc/slabinfo in a private
                                 mount namespace (unshare -m)
  prometheus-node-exporter       buddyinfo, slabinfo, and stats and compaction as vmstat,
                                 through --path.procfs
  collectd (buddyinfo plugin)    buddyinfo, bind-mounted over /proc/buddyinfo (the plugin
                                 reads no other path), values through the csv plugin
  jc                             --proc-buddyinfo, --proc-slabinfo, --proc-vmstat (stats,
                                 compaction)

Each client's output is compared with the independent parse row by row and value by value;
a missing or extra row fails as a wrong value does. The self-test feeds every client a copy
with one value changed and requires the comparison to name that value, so that the checks
cannot pass vacuously. extfrag has no Debian client (debugfs's extfrag files have none): only
its layout is checked.

  procparsers.py CONSOLE_LOG     (scripts/check.sh: the fast guest's log)
  procparsers.py --dir DIR       (files named as in /proc/rkmem, e.g. copied from a guest)

Prints ok/not ok lines and ends with `procparsers: N passed, N failed`; exits 1 on a failure.
"""

import hashlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

FILES = ["buddyinfo", "slabinfo", "stats", "compaction", "extfrag"]
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
SLAB_HEADER = [
    "slabinfo - version: 2.1",
    "# name            <active_objs> <num_objs> <objsize> <objperslab> <pagesperslab>"
    " : tunables <limit> <batchcount> <sharedfactor> : slabdata <active_slabs> <num_slabs>"
    " <sharedavail>",
]
SLAB_FIELDS = ["active_objs", "num_objs", "objsize", "objperslab", "pagesperslab",
               "limit", "batchcount", "sharedfactor", "active_slabs", "num_slabs",
               "sharedavail"]

PASSED = 0
FAILED = 0


def report(ok, name, why=""):
    global PASSED, FAILED
    if ok:
        PASSED += 1
        print(f"ok - {name}")
    else:
        FAILED += 1
        print(f"not ok - {name}: {why}")
    sys.stdout.flush()


def plural(n, word):
    return f"{n} {word}" + ("" if n == 1 else "s")


class Bad(Exception):
    """A file or a client's output that does not parse."""


# --- The capture ---------------------------------------------------------------------------

def extract(log):
    """The files of the console log's RKPROC blocks (the last capture of each), each checked
    against the line count and sha256 the guest printed."""
    with open(log, "rb") as f:
        text = f.read().decode("utf-8", "replace")
    files = {}
    cur = None
    for raw in text.split("\n"):
        line = raw[:-1] if raw.endswith("\r") else raw
        m = re.search(r"RKPROC-BEGIN ([a-z_]+) lines=(\d+) sha256=([0-9a-f]{64})$", line)
        if m:
            cur = m.group(1)
            files[cur] = {"lines": int(m.group(2)), "sha": m.group(3), "body": [], "end": False}
            continue
        if cur is None:
            continue
        if line == f"RKPROC-END {cur}":
            files[cur]["end"] = True
            cur = None
        elif line.startswith(f"RKPROC {cur} |"):
            files[cur]["body"].append(line[len(f"RKPROC {cur} |"):])
        elif line.startswith("RKPROC"):
            raise Bad(f"line '{line}' inside the capture of {cur}")
    out = {}
    for name in FILES:
        c = files.get(name)
        if c is None:
            report(False, f"capture {name}", f"no RKPROC-BEGIN {name} in {log}")
            continue
        data = "".join(b + "\n" for b in c["body"])
        sha = hashlib.sha256(data.encode()).hexdigest()
        if not c["end"]:
            report(False, f"capture {name}", "no RKPROC-END line")
        elif len(c["body"]) != c["lines"] or sha != c["sha"]:
            report(False, f"capture {name}", f"{len(c['body'])} lines, sha256 {sha}; the guest"
                   f" printed {c['lines']} lines, sha256 {c['sha']} (a kernel message in a line?)")
        else:
            report(True, f"capture {name}: {plural(c['lines'], 'line')}, sha256 as the guest's")
            out[name] = data
    return out


# --- The independent parse: the kernel's exact layouts ---------------------------------------

def buddy_line(node, zone, counts):
    # mm/vmstat.c frag_show_print: "Node %d, zone %8s " then "%6lu " per order.
    return f"Node {node}, zone {zone:>8} " + "".join(f"{c:6d} " for c in counts)


def parse_buddyinfo(text):
    rows = []
    for line in text.splitlines():
        m = re.fullmatch(r"Node (\d+), zone +(\S+) ((?: *\d+ )+)", line)
        if not m:
            raise Bad(f"buddyinfo line '{line}'")
        row = (int(m.group(1)), m.group(2), [int(x) for x in m.group(3).split()])
        if len(row[2]) != 11 or buddy_line(*row) != line:
            raise Bad(f"buddyinfo line '{line}' is not the kernel's layout")
        rows.append(row)
    if not rows:
        raise Bad("buddyinfo is empty")
    return rows


def slab_line(name, v):
    # mm/slab_common.c cache_show.
    return (f"{name:<17} {v[0]:6d} {v[1]:6d} {v[2]:6d} {v[3]:4d} {v[4]:4d} : tunables "
            f"{v[5]:4d} {v[6]:4d} {v[7]:4d} : slabdata {v[8]:6d} {v[9]:6d} {v[10]:6d}")


def parse_slabinfo(text):
    lines = text.splitlines()
    if lines[:2] != SLAB_HEADER:
        raise Bad(f"slabinfo header {lines[:2]}")
    rows = {}
    for line in lines[2:]:
        w = line.split()
        if len(w) != 16 or w[6] != ":" or w[7] != "tunables" or w[11] != ":" or w[12] != "slabdata":
            raise Bad(f"slabinfo row '{line}'")
        name = w[0]
        vals = [int(x) for x in w[1:6] + w[8:11] + w[13:16]]
        if slab_line(name, vals) != line or name in rows:
            raise Bad(f"slabinfo row '{line}' is not the kernel's layout (or a second {name})")
        rows[name] = dict(zip(SLAB_FIELDS, vals))
    if not rows:
        raise Bad("slabinfo has no row")
    return rows


def parse_counters(text):
    rows = {}
    for line in text.splitlines():
        m = re.fullmatch(r"([a-z_]+) (\d+)", line)
        if not m or m.group(1) in rows:
            raise Bad(f"counter line '{line}'")
        rows[m.group(1)] = int(m.group(2))
    if not rows:
        raise Bad("no counter")
    return rows


# --- Comparisons: each answers a list of differences ---------------------------------------

def diff_map(want, got):
    """Differences of two {key: value} maps, as (key, what): missing and extra keys, wrong
    values."""
    d = []
    for k in want:
        if k not in got:
            d.append((k, f"{k}: missing (want {want[k]})"))
        elif got[k] != want[k]:
            d.append((k, f"{k}: {got[k]}, want {want[k]}"))
    d += [(k, f"{k}: extra ({got[k]})") for k in got if k not in want]
    return d


def why(d):
    return "; ".join(w for _, w in d[:8]) + (f" (and {len(d) - 8} more)" if len(d) > 8 else "")


def buddy_map(rows):
    return {(n, z, o): c for n, z, counts in rows for o, c in enumerate(counts)}


def slab_map(rows, fields=SLAB_FIELDS):
    return {(name, f): r[f] for name, r in rows.items() for f in fields}


# --- The clients ---------------------------------------------------------------------------

def run(cmd, stdin=None, timeout=30):
    p = subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=timeout)
    if p.returncode != 0:
        raise Bad(f"{' '.join(cmd)} exited {p.returncode}: {p.stderr.strip()[-300:]}")
    return p.stdout


def bind_mounted(src, target, cmd):
    """cmd in a private mount namespace where src is bind-mounted over target (a /proc file
    the client reads and has no option for); root, or an unprivileged user namespace."""
    script = 'mount --bind "$1" "$2" && shift 2 && exec "$@"'
    ns = ["unshare", "-m"] if os.geteuid() == 0 else ["unshare", "-r", "-m"]
    return ns + ["sh", "-c", script, "sh", src, target] + cmd


def jc_buddyinfo(path):
    out = json.loads(run(["jc", "--proc-buddyinfo"], stdin=open(path).read()))
    return {(r["node"], r["zone"], o): c for r in out for o, c in enumerate(r["free_chunks"])}


def jc_slabinfo(path):
    out = json.loads(run(["jc", "--proc-slabinfo"], stdin=open(path).read()))
    keys = {"active_objs": ("active_objs",), "num_objs": ("num_objs",),
            "objsize": ("obj_size",), "objperslab": ("obj_per_slab",),
            "pagesperslab": ("pages_per_slab",), "limit": ("tunables", "limit"),
            "batchcount": ("tunables", "batch_count"),
            "sharedfactor": ("tunables", "shared_factor"),
            "active_slabs": ("slabdata", "active_slabs"), "num_slabs": ("slabdata", "num_slabs"),
            "sharedavail": ("slabdata", "shared_avail")}
    got = {}
    for r in out:
        for f, path_ in keys.items():
            v = r
            for k in path_:
                v = v.get(k) if isinstance(v, dict) else None
            if (r["name"], f) in got:
                raise Bad(f"jc: a second row {r['name']}")
            got[(r["name"], f)] = v
    return got


def jc_vmstat(path):
    return json.loads(run(["jc", "--proc-vmstat"], stdin=open(path).read()))


def slabtop_expected(rows):
    """What slabtop must print for these rows, computed here from the independent parse
    (procps' library: use = 100 * active / total, cache size = slabs * pages per slab * page
    size; the summary adds them up)."""
    table = {}
    for name, r in rows.items():
        use = 100 * r["active_objs"] // r["num_objs"] if r["num_objs"] else 0
        table[name] = [str(r["num_objs"]), str(r["active_objs"]), f"{use}%",
                       f"{r['objsize'] / 1024:.2f}K", str(r["num_slabs"]), str(r["objperslab"]),
                       f"{r['num_slabs'] * r['pagesperslab'] * PAGE_SIZE // 1024}K"]
    objs = sum(r["num_objs"] for r in rows.values())
    aobjs = sum(r["active_objs"] for r in rows.values())
    slabs = sum(r["num_slabs"] for r in rows.values())
    aslabs = sum(r["active_slabs"] for r in rows.values())
    caches = len(rows)
    acaches = sum(1 for r in rows.values() if r["num_objs"])
    total = sum(r["num_objs"] * r["objsize"] for r in rows.values())
    active = sum(r["active_objs"] * r["objsize"] for r in rows.values())
    sizes = [r["objsize"] for r in rows.values()]
    avg = total // objs if objs else 0

    def pct(a, b):
        return f"{100.0 * a / b:.1f}%" if b else "0.0%"
    summary = {
        "Active / Total Objects (% used)": f"{aobjs} / {objs} ({pct(aobjs, objs)})",
        "Active / Total Slabs (% used)": f"{aslabs} / {slabs} ({pct(aslabs, slabs)})",
        "Active / Total Caches (% used)": f"{acaches} / {caches} ({pct(acaches, caches)})",
        "Active / Total Size (% used)":
            f"{active / 1024:.2f}K / {total / 1024:.2f}K ({pct(active, total)})",
        "Minimum / Average / Maximum Object":
            f"{min(sizes) / 1024:.2f}K / {avg / 1024:.2f}K / {max(sizes) / 1024:.2f}K",
    }
    return table, summary


def slabtop_output(path):
    out = run(bind_mounted(path, "/proc/slabinfo", ["slabtop", "-o", "-s", "c"]))
    lines = out.splitlines()
    summary = {}
    table = {}
    order = []
    header = None
    for line in lines:
        if header is None:
            if line.split() == ["OBJS", "ACTIVE", "USE", "OBJ", "SIZE", "SLABS", "OBJ/SLAB",
                                "CACHE", "SIZE", "NAME"]:
                header = line
            elif ":" in line:
                k, v = line.split(":", 1)
                summary[k.strip()] = v.strip()
            continue
        w = line.split()
        if not w:
            continue
        if len(w) != 8 or w[7] in table:
            raise Bad(f"slabtop row '{line}'")
        table[w[7]] = w[:7]
        order.append(int(w[6].rstrip("K")))
    if header is None:
        raise Bad(f"no table header in slabtop's output: {out[:300]}")
    if order != sorted(order, reverse=True):
        raise Bad(f"slabtop -s c rows not by cache size: {order}")
    return table, summary


def slabtop_diff(want_rows, path):
    want_table, want_summary = slabtop_expected(want_rows)
    got_table, got_summary = slabtop_output(path)
    cols = ["OBJS", "ACTIVE", "USE", "OBJ SIZE", "SLABS", "OBJ/SLAB", "CACHE SIZE"]
    flat_want = {(n, c): v[i] for n, v in want_table.items() for i, c in enumerate(cols)}
    flat_got = {(n, c): v[i] for n, v in got_table.items() for i, c in enumerate(cols)}
    return diff_map(want_summary, got_summary) + diff_map(flat_want, flat_got)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def node_exporter(procfs, collectors, extra=()):
    """The metrics node_exporter serves for a procfs directory: {(name, labels): value}."""
    port = free_port()
    cmd = ["prometheus-node-exporter", f"--path.procfs={procfs}", "--collector.disable-defaults",
           f"--web.listen-address=127.0.0.1:{port}", *[f"--collector.{c}" for c in collectors],
           *extra]
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        body = None
        for _ in range(100):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
                    body = r.read().decode()
                break
            except OSError:
                if p.poll() is not None:
                    raise Bad(f"node_exporter exited {p.returncode}: {p.stderr.read()[-300:]}")
                time.sleep(0.1)
        if body is None:
            raise Bad("node_exporter did not answer in 10 s")
    finally:
        p.terminate()
        p.wait(timeout=10)
    metrics = {}
    for line in body.splitlines():
        if line.startswith("#") or not line:
            continue
        m = re.fullmatch(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)", line)
        if not m:
            raise Bad(f"metrics line '{line}'")
        labels = tuple(sorted(re.findall(r'([a-zA-Z_]+)="([^"]*)"', m.group(2) or "")))
        metrics[(m.group(1), labels)] = float(m.group(3))
    for c in collectors:
        if metrics.get(("node_scrape_collector_success", (("collector", c),))) != 1.0:
            raise Bad(f"node_exporter's {c} collector did not succeed")
    return metrics


def ne_select(metrics, prefix):
    return {(n, labels): v for (n, labels), v in metrics.items() if n.startswith(prefix)}


def ne_buddyinfo(path):
    d = tempfile.mkdtemp(prefix="rkmem-procfs-")
    try:
        shutil.copy(path, f"{d}/buddyinfo")
        m = ne_select(node_exporter(d, ["buddyinfo"]), "node_buddyinfo_")
    finally:
        shutil.rmtree(d)
    got = {}
    for (n, labels), v in m.items():
        lab = dict(labels)
        if n != "node_buddyinfo_blocks" or set(lab) != {"node", "zone", "size"}:
            raise Bad(f"unexpected metric {n}{labels}")
        got[(int(lab["node"]), lab["zone"], int(lab["size"]))] = v
    return got


NE_SLAB = {"node_slabinfo_active_objects": "active_objs", "node_slabinfo_objects": "num_objs",
           "node_slabinfo_object_size_bytes": "objsize",
           "node_slabinfo_objects_per_slab": "objperslab",
           "node_slabinfo_pages_per_slab": "pagesperslab"}


def ne_slabinfo(path):
    d = tempfile.mkdtemp(prefix="rkmem-procfs-")
    try:
        shutil.copy(path, f"{d}/slabinfo")
        m = ne_select(node_exporter(d, ["slabinfo"]), "node_slabinfo_")
    finally:
        shutil.rmtree(d)
    got = {}
    for (n, labels), v in m.items():
        if n not in NE_SLAB or [k for k, _ in labels] != ["slab"]:
            raise Bad(f"unexpected metric {n}{labels}")
        got[(labels[0][1], NE_SLAB[n])] = v
    return got


def ne_vmstat(path):
    d = tempfile.mkdtemp(prefix="rkmem-procfs-")
    try:
        shutil.copy(path, f"{d}/vmstat")
        m = ne_select(node_exporter(d, ["vmstat"], ["--collector.vmstat.fields=.*"]),
                      "node_vmstat_")
    finally:
        shutil.rmtree(d)
    return {n[len("node_vmstat_"):]: v for (n, labels), v in m.items() if not labels}


def collectd_buddyinfo(path):
    """collectd's buddyinfo plugin (reads only /proc/buddyinfo) through the csv plugin, run in
    the foreground until every order's first value is written."""
    values = 11 * len(parse_buddyinfo(open(path).read()))
    d = tempfile.mkdtemp(prefix="rkmem-collectd-")
    try:
        with open(f"{d}/collectd.conf", "w") as f:
            f.write(f"""Hostname "rkmem"
FQDNLookup false
BaseDir "{d}"
PIDFile "{d}/collectd.pid"
PluginDir "/usr/lib/collectd"
TypesDB "/usr/share/collectd/types.db"
Interval 1
LoadPlugin buddyinfo
LoadPlugin csv
<Plugin csv>
  DataDir "{d}/csv"
  StoreRates false
</Plugin>
""")
        p = subprocess.Popen(bind_mounted(path, "/proc/buddyinfo",
                                          ["collectd", "-f", "-C", f"{d}/collectd.conf"]),
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        got = {}
        try:
            deadline = time.time() + 15
            while time.time() < deadline:
                got = {}
                for root, _, names in os.walk(f"{d}/csv"):
                    for name in names:
                        vals = open(f"{root}/{name}").read().split("\n")[1:]
                        if vals and vals[0]:
                            got[(os.path.basename(root), name)] = vals[0].split(",")[1]
                if len(got) >= values or p.poll() is not None:
                    break
                time.sleep(0.2)
        finally:
            p.terminate()
            log = p.communicate(timeout=10)[0]
        if not got:
            raise Bad(f"collectd wrote no value: {log[-300:]}")
    finally:
        shutil.rmtree(d)
    out = {}
    for (inst, name), v in got.items():
        m1 = re.fullmatch(r"buddyinfo-Node(\d+)_(\S+)", inst)
        m2 = re.fullmatch(r"freepages-(\d+)KB-\d{4}-\d\d-\d\d", name)
        kb = int(m2.group(1)) if m2 else 0
        if not m1 or not m2 or kb * 1024 % PAGE_SIZE or (kb * 1024 // PAGE_SIZE) & (kb * 1024 // PAGE_SIZE - 1):
            raise Bad(f"unexpected collectd value {inst}/{name}")
        order = (kb * 1024 // PAGE_SIZE).bit_length() - 1
        out[(int(m1.group(1)), m1.group(2), order)] = float(v)
    return out


# --- extfrag: no client; its layout ------------------------------------------------------------

def parse_extfrag(text):
    """debugfs extfrag's rows ("%d.%03d " per order for unusable_index, "%2d.%03d " for
    extfrag_index, after "Node %d, zone %8s "), behind arena_pages, arena_mib, free_pages and
    largest_free_order."""
    lines = text.splitlines()
    if len(lines) != 6:
        raise Bad(f"extfrag has {len(lines)} lines, want 6")
    vals = {}
    for line, key in zip(lines[:4], ["arena_pages", "arena_mib", "free_pages",
                                      "largest_free_order"]):
        m = re.fullmatch(key + r" (-1|\d+)", line)
        if not m:
            raise Bad(f"extfrag line '{line}'")
        vals[key] = int(m.group(1))
    for line, key, fmt in [(lines[4], "unusable", "{}.{:03d} "), (lines[5], "extfrag", "{:2d}.{:03d} ")]:
        prefix = f"{key} Node 0, zone    rkmem "
        if not line.startswith(prefix):
            raise Bad(f"extfrag line '{line}'")
        idx = []
        for w in line[len(prefix):].split():
            m = re.fullmatch(r"(-?\d+)\.(-?\d{3})", w)
            if not m:
                raise Bad(f"extfrag index '{w}' in '{line}'")
            i, f = int(m.group(1)), int(m.group(2))
            idx.append(i * 1000 + f if i >= 0 and f >= 0 else i * 1000 - abs(f))
        # C's / and % truncate toward zero: -500 prints as " 0.-500", -1000 as "-1.000".
        text_back = prefix + "".join(fmt.format(int(x / 1000), int(abs(x) % 1000 * (1 if x >= 0 else -1))) for x in idx)
        if len(idx) != 11 or text_back != line:
            raise Bad(f"extfrag line '{line}' is not the kernel's layout")
        vals[key] = idx
    return vals


# --- The checks ----------------------------------------------------------------------------

def check(name, want, got_fn, path, alter):
    """Compares a client's reading of path with want; then, the self-test, its reading of an
    altered copy (alter(text) -> (text, key)) must differ from want at that key."""
    try:
        d = diff_map(want, got_fn(path))
        report(not d, f"{name}: every row and value ({len(want)} values)", why(d))
    except (Bad, OSError, subprocess.SubprocessError, ValueError, KeyError) as e:
        report(False, name, str(e))
        return
    bad = tempfile.NamedTemporaryFile("w", delete=False, prefix="rkmem-altered-")
    try:
        text, key = alter(open(path).read())
        bad.write(text)
        bad.close()
        os.chmod(bad.name, 0o644)
        d = diff_map(want, got_fn(bad.name))
        report([k for k, _ in d] == [key],
               f"{name}: self-test, one value changed in the file, the check names it ({key})",
               f"differences found: {why(d) or 'none'}")
    except (Bad, OSError, subprocess.SubprocessError, ValueError, KeyError) as e:
        report(False, f"{name}: self-test", str(e))
    finally:
        os.unlink(bad.name)


def alter_buddyinfo(text):
    n, z, counts = parse_buddyinfo(text)[0]
    counts = list(counts)
    counts[3] += 1
    lines = text.splitlines()
    lines[0] = buddy_line(n, z, counts)
    return "\n".join(lines) + "\n", (n, z, 3)


def alter_slabinfo(field):
    def alter(text):
        lines = text.splitlines()
        rows = parse_slabinfo(text)
        # The busiest row: a real value, not a zero.
        name = max(rows, key=lambda k: rows[k]["num_objs"])
        v = [rows[name][f] for f in SLAB_FIELDS]
        v[SLAB_FIELDS.index(field)] += 1
        i = [j for j, l in enumerate(lines) if l.split()[0] == name][0]
        lines[i] = slab_line(name, v)
        return "\n".join(lines) + "\n", (name, field)
    return alter


def alter_counter(text):
    rows = parse_counters(text)
    name = max(rows, key=lambda k: rows[k])
    rows[name] += 1
    return "".join(f"{k} {v}\n" for k, v in rows.items()), name


def main(argv):
    if len(argv) == 3 and argv[1] == "--dir":
        files = {n: open(f"{argv[2]}/{n}").read() for n in FILES}
    elif len(argv) == 2:
        try:
            files = extract(argv[1])
        except (Bad, OSError) as e:
            report(False, "capture", str(e))
            files = {}
    else:
        print(__doc__, file=sys.stderr)
        return 2
    tools = ["slabtop", "prometheus-node-exporter", "collectd", "jc", "unshare"]
    missing = [t for t in tools if not shutil.which(t)]
    if missing:
        report(False, "clients installed", f"missing {missing}: run scripts/setup.sh")
    d = tempfile.mkdtemp(prefix="rkmem-capture-")
    try:
        for n, text in files.items():
            with open(f"{d}/{n}", "w") as f:
                f.write(text)
            os.chmod(f"{d}/{n}", 0o644)
        parsed = {}
        for n, fn in [("buddyinfo", parse_buddyinfo), ("slabinfo", parse_slabinfo),
                      ("stats", parse_counters), ("compaction", parse_counters),
                      ("extfrag", parse_extfrag)]:
            if n not in files:
                continue
            try:
                parsed[n] = fn(files[n])
                report(True, f"{n}: the kernel's exact layout, {plural(len(parsed[n]), 'row')}")
            except Bad as e:
                report(False, f"{n}: the kernel's exact layout", str(e))
        if "buddyinfo" in parsed:
            want = buddy_map(parsed["buddyinfo"])
            p = f"{d}/buddyinfo"
            check("buddyinfo: prometheus-node-exporter node_buddyinfo_blocks", want,
                  ne_buddyinfo, p, alter_buddyinfo)
            check("buddyinfo: collectd buddyinfo plugin (over /proc/buddyinfo)", want,
                  collectd_buddyinfo, p, alter_buddyinfo)
            check("buddyinfo: jc --proc-buddyinfo", want, jc_buddyinfo, p, alter_buddyinfo)
        if "slabinfo" in parsed:
            rows = parsed["slabinfo"]
            p = f"{d}/slabinfo"
            slabtop_check(rows, p)
            check("slabinfo: prometheus-node-exporter node_slabinfo_*",
                  slab_map(rows, list(NE_SLAB.values())), ne_slabinfo, p,
                  alter_slabinfo("active_objs"))
            check("slabinfo: jc --proc-slabinfo", slab_map(rows), jc_slabinfo, p,
                  alter_slabinfo("sharedavail"))
        for n in ["stats", "compaction"]:
            if n in parsed:
                p = f"{d}/{n}"
                check(f"{n}: prometheus-node-exporter node_vmstat_* (as vmstat)", parsed[n],
                      ne_vmstat, p, alter_counter)
                check(f"{n}: jc --proc-vmstat", parsed[n], jc_vmstat, p, alter_counter)
    finally:
        shutil.rmtree(d)
    print(f"procparsers: {PASSED} passed, {FAILED} failed")
    return 1 if FAILED else 0


def slabtop_check(rows, path):
    name = "slabinfo: procps slabtop -o -s c (over /proc/slabinfo)"
    try:
        d = slabtop_diff(rows, path)
        report(not d, f"{name}: every row, column and summary line ({len(rows)} rows)", why(d))
    except (Bad, OSError, subprocess.SubprocessError, ValueError) as e:
        report(False, name, str(e))
        return
    # Self-test: one cache's active objects one more in the file: its ACTIVE (and the
    # summary's totals) must differ from what the unaltered parse predicts.
    text, (cache, _) = alter_slabinfo("active_objs")(open(path).read())
    with tempfile.NamedTemporaryFile("w", delete=False, prefix="rkmem-altered-") as f:
        f.write(text)
    os.chmod(f.name, 0o644)
    try:
        d = slabtop_diff(rows, f.name)
        # The row's ACTIVE (and its USE when the percentage moves) and the summary's totals.
        keys = [k for k, _ in d]
        report((cache, "ACTIVE") in keys and all(isinstance(k, str) or k[0] == cache for k in keys),
               f"{name}: self-test, one value changed in the file, the check names it ({cache})",
               f"differences found: {why(d) or 'none'}")
    except (Bad, OSError, subprocess.SubprocessError, ValueError) as e:
        report(False, f"{name}: self-test", str(e))
    finally:
        os.unlink(f.name)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
