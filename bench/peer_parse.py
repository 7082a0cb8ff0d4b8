#!/usr/bin/python3
"""Times postfix-mta-sts-resolver's parsers on the corpus bench-parse dumped.

    /usr/bin/python3 bench/peer_parse.py DUMP_DIR [--rounds N] [--json]

Reads DUMP_DIR/policies.ns and DUMP_DIR/txt.ns (netstrings, written by
`bench-parse --dump`) and runs the peer's own functions from the Debian
package (postfix_mta_sts_resolver.utils) on every item, the way its
resolver.py does after a fetch:

  policy, parse only:      bytes.decode('ascii') + parse_mta_sts_policy()
  policy, parse+validate:  the above + resolver.py's checks (version,
                           int(max_age) in range, mode, mx present)
  txt:                     filter_text() + startswith('v=STSv1') +
                           parse_mta_sts_record() + resolver.py's v/id checks

"parse+validate" is the work that matches sts_policy_parse, which always
validates; "parse only" is reported too as the peer's most favourable figure.
Each measurement: one warm-up round, then N timed rounds; best and median.
Needs the Debian package: apt-get install postfix-mta-sts-resolver (its
service need not run; only the module is imported).
"""
import json
import os
import statistics
import sys
import time

from postfix_mta_sts_resolver.utils import (filter_text, parse_mta_sts_policy,
                                            parse_mta_sts_record)


def read_netstrings(path):
    with open(path, "rb") as fp:
        blob = fp.read()
    items, i = [], 0
    while i < len(blob):
        colon = blob.index(b":", i)
        n = int(blob[i:colon])
        start = colon + 1
        items.append(blob[start:start + n])
        if blob[start + n:start + n + 1] != b",":
            raise ValueError("%s: bad netstring at byte %d" % (path, i))
        i = start + n + 1
    return items


def policy_parse_only(items):
    valid = 0
    for raw in items:
        try:
            text = raw.decode("ascii")   # resolver.py: charset defaults to ascii
        except UnicodeDecodeError:
            continue
        pol = parse_mta_sts_policy(text)
        valid += pol.get("version") is not None
    return valid


def policy_parse_validate(items):
    """resolver.py's acceptance checks after parse_mta_sts_policy()."""
    valid = 0
    for raw in items:
        try:
            text = raw.decode("ascii")
        except UnicodeDecodeError:
            continue
        pol = parse_mta_sts_policy(text)
        if pol.get("version", None) != "STSv1":
            continue
        try:
            max_age = int(pol.get("max_age", "-1"))
            pol["max_age"] = max_age
        except ValueError:
            continue
        if not 0 <= max_age <= 31557600:
            continue
        if "mode" not in pol:
            continue
        if pol["mode"] == "none":
            valid += 1
            continue
        if pol["mode"] not in ("none", "testing", "enforce"):
            continue
        if not pol["mx"]:
            continue
        valid += 1
    return valid


def txt_parse_validate(items):
    """resolver.py: filter_text, v=STSv1 prefix, parse, v and id present."""
    valid = 0
    for text in filter_text(items):
        if not text.startswith("v=STSv1"):
            continue
        rec = parse_mta_sts_record(text)
        if rec.get("v", None) != "STSv1" or "id" not in rec:
            continue
        valid += 1
    return valid


def measure(name, fn, items, rounds):
    nbytes = sum(len(x) for x in items)
    fn(items)   # warm-up
    times, valid = [], 0
    for _ in range(rounds):
        t0 = time.perf_counter()   # monotonic clock
        valid = fn(items)
        times.append(time.perf_counter() - t0)
    best, median = min(times), statistics.median(times)
    return {
        "name": name, "items": len(items), "bytes": nbytes, "valid": valid,
        "best_s": best, "median_s": median,
        "best_per_s": len(items) / best, "median_per_s": len(items) / median,
        "best_mb_per_s": nbytes / 1e6 / best, "median_mb_per_s": nbytes / 1e6 / median,
    }


def main(argv):
    args = [a for a in argv[1:]]
    as_json = "--json" in args
    rounds = 5
    if "--rounds" in args:
        rounds = int(args[args.index("--rounds") + 1])
        del args[args.index("--rounds"):args.index("--rounds") + 2]
    args = [a for a in args if a != "--json"]
    if len(args) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    d = args[0]
    policies = read_netstrings(os.path.join(d, "policies.ns"))
    txts = read_netstrings(os.path.join(d, "txt.ns"))
    res = [
        measure("policy_parse", policy_parse_only, policies, rounds),
        measure("policy", policy_parse_validate, policies, rounds),
        measure("txt", txt_parse_validate, txts, rounds),
    ]
    if as_json:
        print(json.dumps({"rounds": rounds, "python": sys.version.split()[0],
                          **{r["name"]: r for r in res}}, indent=1))
    else:
        print("peer_parse: postfix-mta-sts-resolver, Python %s, %d rounds (+1 warm-up)"
              % (sys.version.split()[0], rounds))
        for r in res:
            print("%-13s %7d items %8.2f MB  valid %5.1f%%  best %10.0f items/s %7.1f MB/s"
                  "  median %10.0f items/s %7.1f MB/s"
                  % (r["name"], r["items"], r["bytes"] / 1e6, 100.0 * r["valid"] / r["items"],
                     r["best_per_s"], r["best_mb_per_s"], r["median_per_s"],
                     r["median_mb_per_s"]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
