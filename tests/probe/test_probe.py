#!/usr/bin/env python3
"""Tests of ringloop-probe (registered with CTest by tools/CMakeLists.txt).

    test_probe.py --probe BIN --loopinfo BIN --refuse BIN --source FILE CASE

CASE is one of the functions named case_* below. Exit status: 0 passed,
1 failed (each failure says why on stderr), 77 skipped.

probe-loopinfo creates a loop the way any program does and prints what it
uses; probe-seccomp-refuse runs a program with io_uring_setup refused by a
seccomp filter. Both are built from tests/probe/.
"""
import argparse
import json
import os
import re
import subprocess
import sys

SKIP = 77


class Failed(Exception):
    pass


def check(cond, msg):
    if not cond:
        raise Failed(msg)


# Every documented field, with its JSON type(s). Keep in step with the
# comment block at the top of tools/ringloop-probe.c.
INT, STR, BOOL, LIST, OBJ, NULL = int, str, bool, list, dict, type(None)
SCHEMA = {
    "probe_version": INT,
    "ringloop_version": STR,
    "liburing_version": STR,
    "usable": BOOL,
    "kernel": {"sysname": STR, "release": STR, "version": STR,
               "machine": STR},
    "io_uring": {
        "setup_ok": BOOL, "setup_errno": INT, "setup_error": STR,
        "nop_ok": BOOL, "cause": STR, "explanation": STR,
        "io_uring_disabled": (INT, NULL), "io_uring_group": (INT, NULL),
        "seccomp_mode": (INT, NULL), "seccomp_filters": (INT, NULL),
        "memlock_limit": (INT, NULL), "sq_entries": INT, "cq_entries": INT,
    },
    "setup_flags": [{"name": STR, "value": INT, "tried_with": LIST,
                     "accepted": BOOL, "errno": INT, "error": STR,
                     "note": STR}],
    "unknown_setup_flags": [INT],
    "setup_flag_rules": [{"rule": STR, "flags": LIST, "applicable": BOOL,
                          "enforced": BOOL, "errno": INT}],
    "features": {"value": INT, "names": [STR], "unknown_bits": [INT]},
    "opcodes": {"last_op": INT, "supported": [STR], "unsupported": [STR]},
    "loop": {"ok": BOOL, "errno": INT, "backend": STR,
             "fallback_errno": INT, "fallback_reason": STR,
             "features": [STR], "env_backend": (STR, NULL),
             "env_disable": (STR, NULL), "env_enable": (STR, NULL)},
    "auto": {"ok": BOOL, "errno": INT, "backend": STR,
             "fallback_errno": INT, "fallback_reason": STR,
             "features": [STR]},
    "fast_paths": [{"word": STR, "bit": INT, "opt_in": BOOL,
                    "supported": BOOL, "available": BOOL,
                    "active": BOOL, "disabled": BOOL, "enabled": BOOL,
                    "reason": STR, "status": STR}],
}
CAUSES = {"ok", "enosys", "sysctl_disabled", "sysctl_group", "seccomp",
          "memlock", "other"}
STATUSES = {"active", "disabled", "inactive", "opt_in", "fallback",
            "unavailable"}
OPT_IN = {"sqpoll", "napi", "send_zc", "fixed_files"}
EPERM, ENOSYS, EINVAL = 1, 38, 22


def check_schema(value, schema, path):
    """value matches schema: exact keys for objects, types for leaves."""
    if isinstance(schema, dict):
        check(isinstance(value, dict), f"{path}: not an object")
        missing = set(schema) - set(value)
        extra = set(value) - set(schema)
        check(not missing, f"{path}: missing fields {sorted(missing)}")
        check(not extra, f"{path}: undocumented fields {sorted(extra)}")
        for k, sub in schema.items():
            check_schema(value[k], sub, f"{path}.{k}")
    elif isinstance(schema, list):
        check(isinstance(value, list), f"{path}: not an array")
        for i, item in enumerate(value):
            check_schema(item, schema[0], f"{path}[{i}]")
    else:
        types = schema if isinstance(schema, tuple) else (schema,)
        # bool is an int in Python: keep them apart.
        ok = any(isinstance(value, t) and
                 (t is not int or not isinstance(value, bool))
                 for t in types)
        check(ok, f"{path}: {value!r} is not {types}")


class Ctx:
    def __init__(self, args):
        self.a = args
        self.base_env = {k: v for k, v in os.environ.items()
                         if k not in ("RINGLOOP_BACKEND",
                                      "RINGLOOP_DISABLE",
                                      "RINGLOOP_ENABLE")}

    def env(self, **kw):
        e = dict(self.base_env)
        e.update({k: v for k, v in kw.items() if v is not None})
        return e

    def run(self, argv, env):
        p = subprocess.run(argv, env=env, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, universal_newlines=True,
                           timeout=60)
        return p.returncode, p.stdout, p.stderr

    def refuse(self, err):
        return [self.a.refuse, "-e", err]

    def probe(self, env, wrap=()):
        rc, out, err = self.run(list(wrap) + [self.a.probe, "--json"], env)
        if rc == SKIP and wrap:
            raise Skip(f"seccomp helper cannot filter: {err.strip()}")
        try:
            doc = json.loads(out)
        except ValueError as e:
            raise Failed(f"--json output is not valid JSON ({e}):\n{out}")
        check(isinstance(doc, dict), "--json output is not one object")
        check_schema(doc, SCHEMA, "$")
        return rc, doc

    def loopinfo(self, env, wrap=()):
        rc, out, err = self.run(list(wrap) + [self.a.loopinfo], env)
        try:
            info = json.loads(out)
        except ValueError as e:
            raise Failed(f"probe-loopinfo output is not JSON ({e}): {out}"
                         f"{err}")
        return rc, info


class Skip(Exception):
    pass


def check_consistent(rc, doc, where):
    """What must hold for any report."""
    io = doc["io_uring"]
    auto = doc["auto"]
    usable = (io["setup_ok"] and io["nop_ok"] and auto["ok"] and
              auto["backend"] == "uring")
    check(doc["usable"] == usable,
          f"{where}: usable={doc['usable']} but setup_ok={io['setup_ok']} "
          f"nop_ok={io['nop_ok']} auto.backend={auto['backend']}")
    check(rc in (0, 1, 2), f"{where}: exit status {rc}")
    if rc != 2:
        check(rc == (0 if usable else 1),
              f"{where}: exit status {rc} with usable={usable}")
    check(io["cause"] in CAUSES, f"{where}: cause {io['cause']!r}")
    check((io["cause"] == "ok") == io["setup_ok"],
          f"{where}: cause {io['cause']} with setup_ok={io['setup_ok']}")
    check(io["setup_ok"] == (io["setup_errno"] == 0),
          f"{where}: setup_ok={io['setup_ok']} errno={io['setup_errno']}")
    check(io["explanation"], f"{where}: empty explanation")
    if io["setup_ok"]:
        names = [f["name"] for f in doc["setup_flags"]]
        for want in ("SQPOLL", "COOP_TASKRUN", "SINGLE_ISSUER",
                     "DEFER_TASKRUN", "SUBMIT_ALL", "NO_SQARRAY"):
            check(want in names, f"{where}: setup flag {want} not reported")
        for f in doc["setup_flags"]:
            check(f["accepted"] == (f["errno"] == 0),
                  f"{where}: flag {f['name']} accepted={f['accepted']} "
                  f"errno={f['errno']}")
        ops = doc["opcodes"]
        check(ops["last_op"] >= 0 and "NOP" in ops["supported"],
              f"{where}: opcode probe empty: {ops}")
        check(len(ops["supported"]) + len(ops["unsupported"]) ==
              ops["last_op"] + 1,
              f"{where}: opcodes do not cover 0..last_op")
        check(doc["features"]["value"] != 0, f"{where}: no feature bits")
    else:
        check(doc["setup_flags"] == [] and doc["opcodes"]["supported"] == [],
              f"{where}: flags/opcodes reported for a refused ring")
        check(io["setup_error"], f"{where}: no errno name")
    disable = doc["loop"]["env_disable"]
    for fp in doc["fast_paths"]:
        w = fp["word"]
        check(fp["status"] in STATUSES, f"{where}: {w} status {fp['status']}")
        check(not (fp["active"] and fp["disabled"]),
              f"{where}: {w} active although RINGLOOP_DISABLE={disable}")
        check(fp["active"] == (w in doc["loop"]["features"]),
              f"{where}: {w} active={fp['active']} vs loop.features")
        check(fp["available"] == (w in doc["auto"]["features"]),
              f"{where}: {w} available={fp['available']} vs auto.features")
        check(fp["supported"] or not fp["available"],
              f"{where}: {w} available but not supported")
        check(fp["opt_in"] == (w in OPT_IN),
              f"{where}: {w} opt_in={fp['opt_in']}")
        check(not (fp["opt_in"] and fp["available"]),
              f"{where}: opt-in {w} active on the auto loop")
        check(not (fp["active"] and fp["reason"]),
              f"{where}: {w} active with a reason: {fp['reason']!r}")
        if fp["opt_in"] and fp["active"]:
            check(fp["enabled"], f"{where}: {w} active, not enabled")
        want = ("active" if fp["active"] else
                "disabled" if fp["disabled"] else
                "inactive" if fp["available"] else
                "opt_in" if fp["opt_in"] and fp["supported"] else
                "fallback" if fp["supported"] else "unavailable")
        check(fp["status"] == want,
              f"{where}: {w} status {fp['status']}, expected {want}")


def check_agrees(doc, info, where):
    """The probe's loop is the loop a program gets."""
    lp = doc["loop"]
    check(info["ok"] == lp["ok"] and info["errno"] == lp["errno"],
          f"{where}: probe loop ok={lp['ok']}/{lp['errno']}, "
          f"a new loop ok={info['ok']}/{info['errno']}")
    check(info["backend"] == lp["backend"],
          f"{where}: probe says backend {lp['backend']!r}, "
          f"a new loop uses {info['backend']!r}")
    check(sorted(info["features"]) == sorted(lp["features"]),
          f"{where}: probe says fast paths {lp['features']}, "
          f"a new loop has {info['features']}")
    active = sorted(f["word"] for f in doc["fast_paths"] if f["active"])
    check(active == sorted(info["features"]),
          f"{where}: fast_paths active {active} vs loop {info['features']}")
    check(info["fallback_errno"] == lp["fallback_errno"],
          f"{where}: fallback_errno {lp['fallback_errno']} vs "
          f"{info['fallback_errno']}")
    if info["ok"]:
        check(info["nop_ok"], f"{where}: the new loop did not run a NOP")


# ---- cases ---------------------------------------------------------------

def case_cli(c):
    rc, out, _ = c.run([c.a.probe, "--help"], c.env())
    check(rc == 0 and "usage: ringloop-probe" in out,
          f"--help: exit {rc}, output {out!r}")
    rc, _, err = c.run([c.a.probe, "--no-such-option"], c.env())
    check(rc == 2 and "unknown argument" in err,
          f"bad option: exit {rc} (want 2), stderr {err!r}")
    rc, _, err = c.run([c.a.probe], c.env(RINGLOOP_DISABLE="no_such_path"))
    check(rc == 2, f"RINGLOOP_DISABLE=no_such_path: exit {rc} (want 2)")
    rc, out, _ = c.run([c.a.probe], c.env())
    jrc, doc = c.probe(c.env())
    check(rc == jrc, f"table exit {rc} but --json exit {jrc}")
    for want in ("kernel", doc["kernel"]["release"], "auto backend",
                 "ringloop fast paths"):
        check(want in out, f"table lacks {want!r}:\n{out}")
    for fp in doc["fast_paths"]:
        check(re.search(rf"^\s+{fp['word']}\s+{fp['status']}\b", out, re.M),
              f"table lacks the row for {fp['word']} ({fp['status']})")
    if doc["io_uring"]["setup_ok"]:
        check("setup flags" in out and "opcodes" in out,
              f"table lacks setup flags/opcodes:\n{out}")


def case_json(c):
    rc, doc = c.probe(c.env())
    check_consistent(rc, doc, "default env")
    with open(c.a.source) as f:
        src = f.read()
    doc_block = src[:src.index("*/")]

    def keys(v):
        if isinstance(v, dict):
            for k, sub in v.items():
                yield k
                yield from keys(sub)
        elif isinstance(v, list):
            for sub in v:
                yield from keys(sub)
    for k in set(keys(SCHEMA)):
        check(re.search(rf"^ \*\s+{k}\s", doc_block, re.M),
              f"field {k} is not documented in {c.a.source}")
    check(doc["loop"]["env_backend"] is None and
          doc["loop"]["env_disable"] is None and
          doc["loop"]["env_enable"] is None,
          "env_backend/env_disable/env_enable not null with the variables "
          "unset")


def case_agree(c):
    for env in (c.env(), c.env(RINGLOOP_BACKEND="epoll"),
                c.env(RINGLOOP_BACKEND="uring")):
        where = "RINGLOOP_BACKEND=" + env.get("RINGLOOP_BACKEND", "(unset)")
        rc, doc = c.probe(env)
        check_consistent(rc, doc, where)
        _, info = c.loopinfo(env)
        check_agrees(doc, info, where)
        if "RINGLOOP_BACKEND" not in env:
            check(doc["loop"]["backend"] == doc["auto"]["backend"],
                  f"{where}: loop and auto differ with nothing set")
    rc, doc = c.probe(c.env(RINGLOOP_BACKEND="epoll"))
    check(doc["loop"]["backend"] == "epoll",
          f"RINGLOOP_BACKEND=epoll: loop backend {doc['loop']['backend']}")
    for fp in doc["fast_paths"]:
        check(fp["status"] in ("inactive", "opt_in", "fallback",
                               "unavailable"),
              f"epoll loop: {fp['word']} is {fp['status']}")


def case_disable(c):
    _, base = c.probe(c.env())
    words = [fp["word"] for fp in base["fast_paths"]]
    check(words, "no fast paths listed")
    for sel in [[w] for w in words] + [["multishot_recv", "bufring"], words]:
        val = ",".join(sel)
        env = c.env(RINGLOOP_DISABLE=val)
        where = f"RINGLOOP_DISABLE={val}"
        rc, doc = c.probe(env)
        check_consistent(rc, doc, where)
        check(doc["loop"]["env_disable"] == val,
              f"{where}: env_disable {doc['loop']['env_disable']!r}")
        check(doc["auto"] == base["auto"],
              f"{where}: the auto loop changed: {doc['auto']} vs "
              f"{base['auto']}")
        for fp, bfp in zip(doc["fast_paths"], base["fast_paths"]):
            if fp["word"] in sel:
                check(fp["disabled"] and not fp["active"] and
                      fp["status"] == "disabled",
                      f"{where}: {fp['word']} is {fp['status']}")
            else:
                # Switching one path off may take others with it (a
                # multishot recv needs the buffer ring), or bring in its
                # fallback (coop_taskrun for defer_taskrun), nothing else.
                check(not fp["disabled"], f"{where}: {fp['word']} disabled")
                check(not fp["active"] or bfp["active"] or
                      bfp["status"] == "fallback",
                      f"{where}: {fp['word']} active only when another is "
                      f"disabled, but it is no fallback ({bfp['status']})")
        _, info = c.loopinfo(env)
        check_agrees(doc, info, where)


def case_enable(c):
    """RINGLOOP_ENABLE turns the opt-ins on; RINGLOOP_DISABLE wins; an
    unknown word is a usage error, as in RINGLOOP_DISABLE."""
    rc, _, err = c.run([c.a.probe], c.env(RINGLOOP_ENABLE="sqpoll,bogus"))
    check(rc == 2 and "RINGLOOP_ENABLE=sqpoll,bogus" in err,
          f"RINGLOOP_ENABLE=sqpoll,bogus: exit {rc} (want 2), {err!r}")
    _, base = c.probe(c.env())
    for val in ("sqpoll", "napi", "sqpoll,napi", "ring_fd,napi"):
        env = c.env(RINGLOOP_ENABLE=val)
        where = f"RINGLOOP_ENABLE={val}"
        rc, doc = c.probe(env)
        check_consistent(rc, doc, where)
        check(doc["loop"]["env_enable"] == val,
              f"{where}: env_enable {doc['loop']['env_enable']!r}")
        check(doc["auto"] == base["auto"],
              f"{where}: the auto loop changed")
        for fp in doc["fast_paths"]:
            asked = fp["word"] in val.split(",")
            check(fp["enabled"] == asked,
                  f"{where}: {fp['word']} enabled={fp['enabled']}")
            if fp["opt_in"] and asked and doc["loop"]["backend"] == "uring":
                # Used, or refused with the reason kept.
                check(fp["active"] or fp["reason"],
                      f"{where}: {fp['word']} neither active nor explained")
                check(fp["active"] == fp["supported"],
                      f"{where}: {fp['word']} active={fp['active']} but "
                      f"supported={fp['supported']}")
        sq = {fp["word"]: fp for fp in doc["fast_paths"]}
        if "sqpoll" in val and sq["sqpoll"]["active"]:
            check(not sq["defer_taskrun"]["active"] and
                  "sqpoll" in sq["defer_taskrun"]["reason"],
                  f"{where}: defer_taskrun {sq['defer_taskrun']}")
        _, info = c.loopinfo(env)
        check_agrees(doc, info, where)
    env = c.env(RINGLOOP_ENABLE="sqpoll", RINGLOOP_DISABLE="sqpoll")
    rc, doc = c.probe(env)
    check_consistent(rc, doc, "sqpoll enabled and disabled")
    sq = {fp["word"]: fp for fp in doc["fast_paths"]}["sqpoll"]
    check(sq["status"] == "disabled" and sq["enabled"] and not sq["active"],
          f"sqpoll enabled and disabled: {sq}")


def refused(c, err, errno_val, **env_kw):
    env = c.env(**env_kw)
    wrap = c.refuse(err)
    where = f"io_uring_setup refused with {err}" + "".join(
        f" {k}={v}" for k, v in env_kw.items())
    rc, doc = c.probe(env, wrap)
    check_consistent(rc, doc, where)
    io = doc["io_uring"]
    check(rc == 1, f"{where}: exit status {rc}, want 1")
    check(not doc["usable"] and not io["setup_ok"],
          f"{where}: io_uring reported usable")
    check(io["setup_errno"] == -errno_val and io["setup_error"] == err,
          f"{where}: setup_errno {io['setup_errno']} {io['setup_error']}")
    check(io["cause"] == "seccomp",
          f"{where}: cause {io['cause']!r} ({io['explanation']})")
    check(io["seccomp_mode"] == 2 and io["seccomp_filters"] >= 1,
          f"{where}: seccomp_mode {io['seccomp_mode']}")
    check(err in io["explanation"] and "seccomp" in io["explanation"],
          f"{where}: explanation {io['explanation']!r}")
    auto = doc["auto"]
    check(auto["ok"] and auto["backend"] == "epoll",
          f"{where}: auto picks {auto['backend']!r}")
    check(auto["fallback_errno"] == -errno_val and auto["fallback_reason"],
          f"{where}: auto fallback {auto['fallback_errno']} "
          f"{auto['fallback_reason']!r}")
    for fp in doc["fast_paths"]:
        check(not (fp["supported"] or fp["available"] or fp["active"]),
              f"{where}: {fp['word']} supported/available/active on epoll")
    _, info = c.loopinfo(env, wrap)
    check_agrees(doc, info, where)
    return doc


def case_refused_eperm(c):
    doc = refused(c, "EPERM", EPERM)
    check(doc["loop"]["backend"] == "epoll" and
          doc["loop"]["fallback_errno"] == -EPERM and
          doc["loop"]["fallback_reason"],
          f"loop: {doc['loop']}")
    for fp in doc["fast_paths"]:
        check(fp["status"] == "unavailable",
              f"{fp['word']} is {fp['status']}, want unavailable")


def case_refused_enosys(c):
    doc = refused(c, "ENOSYS", ENOSYS)
    check(doc["loop"]["fallback_errno"] == -ENOSYS,
          f"loop fallback_errno {doc['loop']['fallback_errno']}")


def case_refused_disable(c):
    off = ["multishot_recv", "bufring"]
    doc = refused(c, "EPERM", EPERM, RINGLOOP_DISABLE=",".join(off))
    for fp in doc["fast_paths"]:
        want = "disabled" if fp["word"] in off else "unavailable"
        check(fp["status"] == want and fp["disabled"] == (want == "disabled"),
              f"{fp['word']} is {fp['status']}, want {want}")


def case_refused_forced_uring(c):
    env = c.env(RINGLOOP_BACKEND="uring")
    rc, doc = c.probe(env, c.refuse("EPERM"))
    check_consistent(rc, doc, "refused, RINGLOOP_BACKEND=uring")
    check(rc == 1, f"exit status {rc}, want 1 (not a usage error)")
    check(not doc["loop"]["ok"] and doc["loop"]["errno"] == -EPERM,
          f"an explicit uring loop should fail with EPERM: {doc['loop']}")
    _, info = c.loopinfo(env, c.refuse("EPERM"))
    check_agrees(doc, info, "refused, RINGLOOP_BACKEND=uring")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--probe", required=True)
    ap.add_argument("--loopinfo", required=True)
    ap.add_argument("--refuse", required=True)
    ap.add_argument("--source", required=True)
    ap.add_argument("case", choices=[n[5:] for n in globals()
                                     if n.startswith("case_")])
    args = ap.parse_args()
    try:
        globals()["case_" + args.case](Ctx(args))
    except Skip as e:
        print(f"SKIP {args.case}: {e}", file=sys.stderr)
        return SKIP
    except (Failed, subprocess.TimeoutExpired) as e:
        print(f"FAIL {args.case}: {e}", file=sys.stderr)
        return 1
    print(f"PASS {args.case}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
