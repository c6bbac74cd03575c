#!/usr/bin/env python3
"""The layering check: modules may reach only the modules they declare, lower in the order, and no two files
form an include or call loop.

The order and each module's allowed uses are written once, in the table under "## Module order" in
docs/architecture.md (rows lowest first: module, folder, public headers, uses). This script reads that table and
checks the tree against it:

  1. every src/<folder>/ is a module of the table and every include/magpie/*.h belongs to exactly one module;
  2. each module's "uses" lie below it in the order (so the table itself is acyclic);
  3. includes: a file of module M (src/<M>/*.[ch], or one of M's public headers) includes only public headers of M
     or of a module M uses, and private headers ("dir/x.h") only of its own folder; a module outside libmagpie
     (serve) names its interface headers in the table as "serve/server.h", and those count as public;
  4. calls: in the object files under BUILD/src/<M>/, every undefined symbol that another object of the tree
     defines belongs to M or to a module M uses (so a call through a header-less extern is caught too);
  5. loops: no cycle among files through #include, and no cycle among object files through symbol references
     (two files of one module calling each other is a loop too).

Standard library only (runs on the pyenv python3 and on Debian's). Exit status 0 when the tree is clean, 1 with
one line per violation otherwise, 2 on a usage or table error.

usage: check_layers.py [--root DIR] [--build DIR] [--no-objects]
"""
import argparse
import os
import re
import subprocess
import sys

TABLE_HEADING = "## Module order"
INCLUDE_RE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


class TableError(Exception):
    pass


def read_table(path):
    """Returns [(module, folder, [headers], [uses])] in table order (lowest first)."""
    try:
        text = open(path, encoding="utf-8").read()
    except OSError as e:
        raise TableError(f"{path}: {e.strerror}")
    at = text.find(TABLE_HEADING)
    if at < 0:
        raise TableError(f"{path}: no '{TABLE_HEADING}' section")
    rows = []
    in_table = False
    for lineno, line in enumerate(text[at:].splitlines(), text[:at].count("\n") + 1):
        s = line.strip()
        if not s.startswith("|"):
            if in_table:
                break
            continue
        cells = [c.strip().strip("`") for c in s.strip("|").split("|")]
        if not in_table:  # the header row, then the |---| row
            in_table = True
            if [c.lower() for c in cells[:4]] != ["module", "folder", "public headers", "uses"]:
                raise TableError(f"{path}:{lineno}: the table's columns must be: module | folder | public headers | uses")
            continue
        if set(cells[0]) <= set("-: "):
            continue
        if len(cells) < 4:
            raise TableError(f"{path}:{lineno}: a row needs 4 cells, got {len(cells)}")
        split = lambda c: [w.strip().strip("`") for w in re.split(r"[,\s]+", c) if w.strip() and w.strip() != "-"]
        rows.append((cells[0], cells[1].rstrip("/"), split(cells[2]), split(cells[3])))
    if not rows:
        raise TableError(f"{path}: the '{TABLE_HEADING}' table has no rows")
    return rows


def strongly_connected(graph):
    """Tarjan's algorithm, iterative; returns the components of more than one node."""
    index, low, on_stack, stack, out = {}, {}, set(), [], []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph.get(root, ()))))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            v, it = work[-1]
            advanced = False
            for w in it:
                if w not in index:
                    index[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(sorted(graph.get(w, ())))))
                    advanced = True
                    break
                if w in on_stack:
                    low[v] = min(low[v], index[w])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                if len(comp) > 1:
                    out.append(sorted(comp))
    return out


def check(root, build, with_objects):
    problems = []
    table_path = os.path.join(root, "docs", "architecture.md")
    rows = read_table(table_path)
    rank = {}
    folder_of = {}
    module_of_folder = {}
    module_of_header = {}
    interface_of = {}  # "serve/server.h" -> "serve": headers of modules outside libmagpie that others may include
    uses = {}
    for i, (mod, folder, headers, used) in enumerate(rows):
        if mod in rank:
            raise TableError(f"{table_path}: module `{mod}` appears twice")
        rank[mod] = i
        folder_of[mod] = folder
        module_of_folder[folder] = mod
        for h in headers:
            h = h if h.endswith(".h") else h + ".h"
            if "/" in h:  # an interface header of a module outside libmagpie (src/<folder>/x.h)
                if h in interface_of:
                    problems.append(f"table: header {h} is listed under both `{interface_of[h]}` and `{mod}`")
                interface_of[h] = mod
                continue
            if h in module_of_header:
                problems.append(f"table: header {h} is listed under both `{module_of_header[h]}` and `{mod}`")
            module_of_header[h] = mod
    for i, (mod, _, _, used) in enumerate(rows):
        allowed = set()
        for u in used:
            if u == "all":
                allowed |= {m for m in rank if rank[m] < i}
            elif u not in rank:
                problems.append(f"table: `{mod}` uses `{u}`, which is not a module of the table")
            elif rank[u] >= i:
                problems.append(f"table: `{mod}` uses `{u}`, which is not below it in the order")
            else:
                allowed.add(u)
        uses[mod] = allowed

    # 1. every folder and header is placed.
    src = os.path.join(root, "src")
    folders = sorted(d for d in os.listdir(src) if os.path.isdir(os.path.join(src, d)))
    for d in folders:
        if f"src/{d}" not in module_of_folder:
            problems.append(f"src/{d}/: a folder that is no module of the table in docs/architecture.md")
    for mod, folder in folder_of.items():
        if not os.path.isdir(os.path.join(root, folder)):
            problems.append(f"table: module `{mod}` names folder {folder}, which does not exist")
    inc = os.path.join(root, "include", "magpie")
    headers = sorted(h for h in os.listdir(inc) if h.endswith(".h"))
    for h in headers:
        if h not in module_of_header:
            problems.append(f"include/magpie/{h}: a public header that no module of the table lists")
    for h in module_of_header:
        if h not in headers:
            problems.append(f"table: header {h} (module `{module_of_header[h]}`) does not exist")
    for h, mod in interface_of.items():
        if not os.path.exists(os.path.join(src, h)):
            problems.append(f"table: header {h} (module `{mod}`) does not exist")
        elif not h.startswith(folder_of[mod][len("src/"):] + "/"):
            problems.append(f"table: header {h} is not in the folder of module `{mod}`")

    def allowed(frm, to):
        return frm == to or to in uses.get(frm, ())

    # 3. includes, and the include graph for 5.
    files = []  # (path relative to root, module)
    for h in headers:
        if h in module_of_header:
            files.append((f"include/magpie/{h}", module_of_header[h]))
    for d in folders:
        mod = module_of_folder.get(f"src/{d}")
        if mod is None:
            continue
        for name in sorted(os.listdir(os.path.join(src, d))):
            if name.endswith((".c", ".h")):
                files.append((f"src/{d}/{name}", mod))
    include_graph = {}
    for rel, mod in files:
        text = open(os.path.join(root, rel), encoding="utf-8", errors="replace").read()
        edges = set()
        for m in INCLUDE_RE.finditer(text):
            target = m.group(1)
            line = text[: m.start()].count("\n") + 1
            if target.startswith("magpie/"):
                h = target[len("magpie/"):]
                to = module_of_header.get(h)
                if to is None:
                    continue  # reported above when the header exists
                edges.add(f"include/{target}")
                if not allowed(mod, to):
                    problems.append(f"{rel}:{line}: includes {target} of module `{to}`, which `{mod}` may not use")
            elif "/" in target:
                folder = "src/" + target.split("/")[0]
                owner = module_of_folder.get(folder)
                if owner is None:
                    continue
                edges.add(f"src/{target}")
                if owner == mod:
                    pass
                elif target in interface_of:
                    if not allowed(mod, owner):
                        problems.append(f"{rel}:{line}: includes {target} of module `{owner}`, which `{mod}` may not use")
                else:
                    problems.append(f"{rel}:{line}: includes {target}, a private header of module `{owner}`")
            else:
                sibling = os.path.join(os.path.dirname(rel), target)
                if os.path.exists(os.path.join(root, sibling)):
                    edges.add(sibling)
        include_graph[rel] = edges
    for comp in strongly_connected(include_graph):
        problems.append("include loop: " + " <-> ".join(comp))

    # 4. and 5. calls, through the object files of the build.
    if with_objects:
        objs = []
        for d in folders:
            mod = module_of_folder.get(f"src/{d}")
            od = os.path.join(build, "src", d)
            if mod is None or not os.path.isdir(od):
                continue
            # An object whose source is gone is a leftover of an older tree, not part of this one.
            objs += [(os.path.join(od, o), f"src/{d}/{o[:-2]}.c", mod) for o in sorted(os.listdir(od))
                     if o.endswith(".o") and os.path.exists(os.path.join(src, d, o[:-2] + ".c"))]
        if not objs:
            problems.append(f"{build}/src: no object files (build first, or pass --no-objects)")
        defined = {}
        undefined = {}
        for path, rel, mod in objs:
            out = subprocess.run(["nm", "-P", path], capture_output=True, text=True)
            if out.returncode != 0:
                problems.append(f"{path}: nm failed: {out.stderr.strip()}")
                continue
            und = set()
            for line in out.stdout.splitlines():
                p = line.split()
                if len(p) < 2:
                    continue
                if p[1] == "U":
                    und.add(p[0])
                elif p[1] in "TDBRVWCG":
                    defined.setdefault(p[0], (rel, mod))
            undefined[rel] = (mod, und)
        call_graph = {}
        for rel, (mod, und) in undefined.items():
            edges = set()
            for sym in sorted(und):
                hit = defined.get(sym)
                if hit is None or hit[0] == rel:
                    continue
                to_rel, to = hit
                edges.add(to_rel)
                if not allowed(mod, to):
                    problems.append(f"{rel}: calls {sym} ({to_rel}) of module `{to}`, which `{mod}` may not use")
            call_graph[rel] = edges
        for comp in strongly_connected(call_graph):
            problems.append("call loop: " + " <-> ".join(comp))
    return problems


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--root", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    ap.add_argument("--build", default=None, help="build folder with the object files (default: ROOT/build)")
    ap.add_argument("--no-objects", action="store_true", help="check the table and the includes only")
    a = ap.parse_args()
    root = os.path.abspath(a.root)
    build = os.path.abspath(a.build) if a.build else os.path.join(root, "build")
    try:
        problems = check(root, build, not a.no_objects)
    except TableError as e:
        print(f"check_layers: {e}", file=sys.stderr)
        return 2
    for p in problems:
        print(p)
    if problems:
        print(f"{len(problems)} layering problem(s); the allowed order is the '{TABLE_HEADING}' table in docs/architecture.md")
        return 1
    print("layering: clean")
    return 0


if __name__ == "__main__":
    sys.exit(main())
