#!/usr/bin/python3
"""The source tree's layering (docs/internals/README.md), checked on every
#include in src/: dependencies point one way only.

  base (pure part: err, log, util, strbuf, backoff)  -> itself only
  codec                                              -> codec, base's pure part
  base (loop, sock, dns, list)                       -> base, codec (addresses)
  xport                                              -> xport, codec, base
  plane                                              -> plane, xport, codec, base
  role                                               -> role, plane, xport, codec, base
  src/*.c (main, cli, envvars)                       -> anything

and no role includes another role's header (server and client share only
role/runtime.h and role/chan.h); role/reload.c, which runs one of them and
applies reloads to it, is the one module that includes both. The codec modules may not include the
event-loop or socket system headers either. Prints every violation; exit 1
if any.

Usage: check_layers.py SRC_DIR"""
import os
import re
import sys

PURE_BASE = {"err", "log", "util", "strbuf", "backoff"}
# ranks, lowest first: a file may include its own rank or lower
RANK = {"base-pure": 0, "codec": 1, "base": 2, "xport": 3, "plane": 4, "role": 5}
# metrics: the counters and snapshot types every role fills for the admin
# endpoint; admin_page: the status page's bytes, served by admin.c
ROLE_SHARED = {"runtime", "chan", "conf_check", "grace", "watch", "metrics", "admin_page"}
ROLE_DRIVERS = {"reload"}   # may include the roles it drives
CODEC_FORBIDDEN_SYS = {"sys/epoll.h", "sys/signalfd.h", "sys/timerfd.h", "ares.h", "netdb.h"}
INCLUDE = re.compile(r'^\s*#\s*include\s*([<"])([^>"]+)[>"]', re.M)


def layer_of(rel):
    parts = rel.split("/")
    return parts[0] if len(parts) > 1 else "top"


def module_of(rel):
    return os.path.splitext(os.path.basename(rel))[0]


def rank_of(rel):
    layer = layer_of(rel)
    if layer == "base" and module_of(rel) in PURE_BASE:
        layer = "base-pure"
    return layer, RANK[layer]


def allowed(src_rel, inc):
    if layer_of(inc) == "top":
        return layer_of(src_rel) == "top", "a module below main includes a top-level header"
    if layer_of(src_rel) == "top":
        return True, ""
    (src_layer, src_rank), (inc_layer, inc_rank) = rank_of(src_rel), rank_of(inc)
    if inc_rank > src_rank:
        return False, f"{src_layer} includes the higher layer {inc_layer}"
    src_mod, inc_mod = module_of(src_rel), module_of(inc)
    if (src_layer == "role" and inc_layer == "role" and src_mod != inc_mod and inc_mod not in ROLE_SHARED
            and src_mod not in ROLE_DRIVERS):
        return False, "a role includes another role"
    return True, ""


def main():
    src = sys.argv[1]
    bad = 0
    files = 0
    for root, _, names in os.walk(src):
        for n in sorted(names):
            if not n.endswith((".c", ".h")):
                continue
            path = os.path.join(root, n)
            rel = os.path.relpath(path, src)
            files += 1
            text = open(path, encoding="utf-8").read()
            for kind, inc in INCLUDE.findall(text):
                if kind == "<":
                    if layer_of(rel) == "codec" and inc in CODEC_FORBIDDEN_SYS:
                        print(f"{rel}: includes <{inc}>: pure code (codec) uses no loop or resolver")
                        bad += 1
                    continue
                if "/" not in inc and layer_of(rel) != "top":
                    print(f'{rel}: #include "{inc}": name the folder ("base/loop.h")')
                    bad += 1
                    continue
                if not os.path.exists(os.path.join(src, inc)):
                    continue  # not one of ours (tools/lib's toml_json.h is never included by src/)
                ok, why = allowed(rel, inc)
                if not ok:
                    print(f'{rel}: #include "{inc}": {why}')
                    bad += 1
    print(f"layering: {files} files, {bad} violation(s)")
    return 1 if bad or files == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
