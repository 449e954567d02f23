#!/usr/bin/python3
"""Every reference to docs/protocol.md in the repository ("protocol.md#q14",
"[...](../protocol.md#p-udp)") names an anchor that docs/protocol.md has,
and nothing refers to the compatibility spec outside the repository
(shared/spec, rathole-compat.md, "§N" section numbers), so a reader can
follow every reference with the repository alone. Prints each problem; exit
1 if any.

Usage: check_protocol_refs.py REPO_ROOT"""
import os
import re
import sys

ROOT = sys.argv[1]
SKIP = {".git", "corpus", "results"}
REF = re.compile(r"protocol\.md#([a-z0-9-]+)")
OUTSIDE = re.compile(r"shared/spec|rathole-compat\.md|rathole-compat §|§\d")
EXT = (".c", ".h", ".py", ".md", ".toml", ".sh", ".txt", ".cmake", ".1", ".5", ".service")

anchors = set(re.findall(r'<a id="([^"]+)"></a>', open(os.path.join(ROOT, "docs", "protocol.md")).read()))
bad = refs = 0
for root, dirs, files in os.walk(ROOT):
    dirs[:] = [d for d in dirs if d not in SKIP and not d.startswith("build")]
    for n in files:
        p = os.path.join(root, n)
        rel = os.path.relpath(p, ROOT)
        if not (n.endswith(EXT) or n in ("run", "soak", "CMakeLists.txt")):
            continue
        try:
            text = open(p, encoding="utf-8").read()
        except UnicodeDecodeError:
            continue
        for i, line in enumerate(text.splitlines(), 1):
            for a in REF.findall(line):
                refs += 1
                if a not in anchors:
                    print(f"{rel}:{i}: protocol.md#{a}: no such anchor in docs/protocol.md")
                    bad += 1
            if rel != "docs/protocol.md" and rel != "tests/docs/check_protocol_refs.py" and OUTSIDE.search(line):
                print(f"{rel}:{i}: refers to the external spec; point to docs/protocol.md instead: {line.strip()[:100]}")
                bad += 1
print(f"protocol references: {refs} checked, {len(anchors)} anchors, {bad} problem(s)")
sys.exit(1 if bad or refs == 0 else 0)
