#!/usr/bin/env bash
# mta-sts check, end to end, against the local test world (tests/world):
# knotd on 127.0.54.1:53, nginx on 127.0.60.x:443 and a private Postfix on
# 127.0.70.x:25, started here and stopped on exit. One case per check-*.test
# domain of tests/world/README.md: the exact set of findings that are not
# "pass" (id and status, duplicates per address folded), the passes the case
# rests on, and the exit status; check-good.test must pass completely. Then
# --no-smtp, --smtp-port, the id discipline with --state and a policy swapped
# under an unchanged id, bulk mode (-f FILE --concurrency 20) streaming one
# JSON line per domain, and usage errors. Speaks TAP. Needs $MTA_STS (set by
# meson), python3 and root.
set -u
M=${MTA_STS:?MTA_STS must point at the mta-sts binary}
# shellcheck source=tests/world/testlib.sh
. "${MTASTS_SOURCE_ROOT:-$(dirname "$0")/../..}/tests/world/testlib.sh"
command -v python3 >/dev/null || { echo "Bail out! python3 is missing"; exit 1; }
world_start --scale 40
# check remembers ids in $XDG_CACHE_HOME/mtasts/check-state unless told
# otherwise: keep that in the test's directory, not in $HOME.
export XDG_CACHE_HOME=$TMPROOT/xdg
if "$M" check --help >/dev/null 2>&1; then :; else
	echo "# '$M check --help' fails: the check command is missing or broken; every case below will fail"
fi

# C ARGS...: mta-sts check ARGS; stdout in $tmp/out, stderr in $tmp/err,
# exit status in $crc.
C() {
	timeout 120 "$M" check "$@" >"$tmp/out" 2>"$tmp/err"
	crc=$?
}
# c DOMAIN... [OPTIONS]: --json with the world's resolver and CA, no id
# memory (cs: with the default one)
cs() { C --json --resolver "$RESOLVER" --ca-file "$CA_FILE" --timeout 5 "$@"; }
c() { cs --state none "$@"; }

# py EXPR: evaluate a Python expression over the last output (JSON Lines);
# prints its value (lists and sets space-joined, sorted). In EXPR: objs (all
# objects), o (the first), F (o's findings), pairs(o) (sorted "id:status"
# without duplicates), nonpass(o), ids(o), find(o, id) (findings with id).
py() {
	python3 - "$tmp/out" "$1" <<'PY'
import json, sys
objs = []
for line in open(sys.argv[1], encoding="utf-8"):
    if line.strip():
        objs.append(json.loads(line))
o = objs[0] if objs else {"findings": []}
F = o.get("findings", [])
def pairs(x=None):
    return sorted({f["id"] + ":" + f["status"] for f in (x or o)["findings"]})
def nonpass(x=None):
    return [p for p in pairs(x) if not p.endswith(":pass")]
def ids(x=None):
    return sorted({f["id"] for f in (x or o)["findings"]})
def find(x, i):
    return [f for f in x["findings"] if f["id"] == i]
v = eval(sys.argv[2])
if isinstance(v, (list, set, tuple)):
    v = " ".join(sorted(str(e) for e in v))
print(v)
PY
}

# expect_rc DESC WANT: the last run exited WANT
expect_rc() {
	if [ "$crc" = "$2" ]; then ok "$1: exit $2"; else
		not_ok "$1: exit $2 (got $crc)"
		diag "$tmp/err"
		py 'pairs()' 2>&1 | diag
	fi
}

# case DOMAIN EXIT "NONPASS" "PASSES": check DOMAIN; every finding that is
# not a pass, exactly (id:status, sorted); each of PASSES is there as a pass
# (or several of them for several addresses, none other).
case_() {
	local d=$1 want_rc=$2 want_np=$3 passes=$4 p got
	c "$d"
	expect_rc "$d" "$want_rc"
	is "$d: one JSON object for the domain" "$(py 'len(objs) == 1 and o.get("domain") == "'"$d"'"' 2>&1)" True
	got=$(py 'nonpass()' 2>&1)
	is "$d: findings that are not pass" "$got" "$want_np"
	for p in $passes; do
		is "$d: $p pass" "$(py 'sorted({f["status"] for f in find(o, "'"$p"'")})' 2>&1)" pass
	done
}

# Every domain's record, policy host and TLSRPT are fine unless its case
# says otherwise; these passes hold wherever nothing else is said.
# (host.consistent is judged only where the policy host has two addresses.)
TXT_OK="txt.present txt.single txt.syntax"
HOST_OK="host.address host.tls host.cert.trusted host.cert.name host.cert.expiry host.http.status host.http.content_type host.http.size"
POL_OK="policy.syntax policy.mode policy.max_age policy.mx.coverage"
MX_OK="mx.present mx.address mx.reachable mx.starttls mx.cert.trusted mx.cert.name mx.cert.expiry"
TLSRPT_OK="tlsrpt.present tlsrpt.syntax"

# --- check-good.test: everything passes ------------------------------------------------
c check-good.test
expect_rc check-good.test 0
all="$TXT_OK $HOST_OK $POL_OK $MX_OK $TLSRPT_OK"
is "check-good.test: every finding, each a pass" "$(py 'pairs()' 2>&1)" \
	"$(for i in $all; do echo "$i:pass"; done | sort | tr '\n' ' ' | sed 's/ $//')"
is "check-good.test: the findings carry id, section, status, rule, subject, message, fix" \
	"$(py 'all(set(f) >= {"id", "section", "status", "rule", "subject", "message", "fix"} for f in F) and len(F) > 0' 2>&1)" True
is "check-good.test: sections as documented" \
	"$(py 'sorted({f["section"] for f in F})' 2>&1)" "mx policy policy-host tlsrpt txt"
is "check-good.test: the SMTP findings name $SMTP_GOOD or mail.check-good.test" \
	"$(py 'all(("'"$SMTP_GOOD"'" in f["subject"] or "mail.check-good.test" in f["subject"]) for f in F if f["id"].startswith("mx.") and f["id"] not in ("mx.present",))' 2>&1)" True

# --- one fault each ----------------------------------------------------------------------
case_ check-nostarttls.test 2 "mx.starttls:fail" "$TXT_OK $POL_OK mx.present mx.address mx.reachable $TLSRPT_OK"
is "check-nostarttls.test: the STARTTLS failure names the server" \
	"$(py 'all(("'"$SMTP_NOTLS"'" in f["subject"] or "mail.check-nostarttls.test" in f["subject"]) for f in find(o, "mx.starttls"))' 2>&1)" True
is "check-nostarttls.test: no certificate findings without TLS" \
	"$(py '[i for i in ids() if i.startswith("mx.cert.")]' 2>&1)" ""
case_ check-mxexpired.test 2 "mx.cert.expiry:fail" "$TXT_OK $POL_OK mx.reachable mx.starttls mx.cert.name $TLSRPT_OK"
case_ check-mxwrongname.test 2 "mx.cert.name:fail" "$TXT_OK $POL_OK mx.reachable mx.starttls mx.cert.expiry $TLSRPT_OK"
case_ check-mxuntrusted.test 2 "mx.cert.trusted:fail" "$TXT_OK $POL_OK mx.reachable mx.starttls $TLSRPT_OK"
case_ check-uncovered.test 2 "policy.mx.coverage:fail policy.mx.unused:warn" "$TXT_OK $HOST_OK policy.syntax policy.mode $MX_OK"
is "check-uncovered.test: the coverage failure names the MX host" \
	"$(py 'any("mail.check-uncovered.test" in f["subject"] + f["message"] for f in find(o, "policy.mx.coverage"))' 2>&1)" True
case_ check-testing.test 1 "policy.mode:warn" "$TXT_OK $HOST_OK policy.syntax policy.max_age policy.mx.coverage $MX_OK $TLSRPT_OK"
case_ check-twobodies.test 2 "host.consistent:fail" "$TXT_OK $HOST_OK $POL_OK $MX_OK"
is "check-twobodies.test: both policy-host addresses probed" \
	"$(py 'all(any(a in f["subject"] for f in find(o, "host.tls")) for a in ("'"$ADDR_OK"'", "'"$ADDR_SYNTAX"'"))' 2>&1)" True
case_ check-notlsrpt.test 1 "tlsrpt.present:warn" "$TXT_OK $HOST_OK $POL_OK $MX_OK"
case_ check-badtlsrpt.test 2 "tlsrpt.syntax:fail" "$TXT_OK $HOST_OK $POL_OK $MX_OK tlsrpt.present"
case_ check-dane.test 0 "dane.tlsa:info" "$TXT_OK $HOST_OK $POL_OK $MX_OK $TLSRPT_OK"
is "check-dane.test: the TLSA finding names the MX host" \
	"$(py 'any("mail.check-dane.test" in f["subject"] + f["message"] for f in find(o, "dane.tlsa"))' 2>&1)" True
case_ check-nullmx.test 0 "mx.null:info policy.mode:info" "$TXT_OK $HOST_OK policy.syntax policy.max_age $TLSRPT_OK"
is "check-nullmx.test: no SMTP probe of the null MX" \
	"$(py '[i for i in ids() if i in ("mx.reachable", "mx.starttls") or i.startswith("mx.cert.")]' 2>&1)" ""
case_ check-mxcname.test 1 "mx.cname:warn" "$TXT_OK $HOST_OK $POL_OK $MX_OK $TLSRPT_OK"
case_ check-misplaced.test 2 "txt.misplaced:warn txt.present:fail" "$MX_OK $TLSRPT_OK"
case_ check-shortage.test 1 "policy.max_age:warn" "$TXT_OK $HOST_OK policy.syntax policy.mode policy.mx.coverage $MX_OK $TLSRPT_OK"
case_ check-hostexpired.test 2 "host.cert.expiry:fail" "$TXT_OK host.address host.tls host.cert.trusted host.cert.name $MX_OK $TLSRPT_OK"
case_ check-idchange.test 0 "" "$TXT_OK $HOST_OK $POL_OK $MX_OK $TLSRPT_OK"
case_ d00001.bench.test 0 "" "$TXT_OK $HOST_OK $POL_OK $MX_OK $TLSRPT_OK"
is "d00001.bench.test: the shared MX mx.bench.test probed at $SMTP_BENCH" \
	"$(py 'all(("'"$SMTP_BENCH"'" in f["subject"] or "mx.bench.test" in f["subject"]) for f in find(o, "mx.starttls")) and len(find(o, "mx.starttls")) > 0' 2>&1)" True

# --- --no-smtp, --smtp-port ----------------------------------------------------------------
c check-good.test --no-smtp
expect_rc "check-good.test --no-smtp" 0
is "--no-smtp: no mx.reachable, mx.starttls, mx.cert.*" \
	"$(py '[i for i in ids() if i in ("mx.reachable", "mx.starttls") or i.startswith("mx.cert.")]' 2>&1)" ""
is "--no-smtp: mx.present and mx.address still judged" "$(py '[p for p in pairs() if p in ("mx.present:pass", "mx.address:pass")]' 2>&1)" \
	"mx.address:pass mx.present:pass"
c check-nostarttls.test --no-smtp
expect_rc "check-nostarttls.test --no-smtp (its only fault is behind port 25)" 0
c check-good.test --smtp-port 2526
expect_rc "check-good.test --smtp-port 2526 (nothing listens)" 2
is "--smtp-port 2526: mx.reachable fails" "$(py 'sorted({f["status"] for f in find(o, "mx.reachable")})' 2>&1)" fail

# --- id discipline: --state, a new policy under the same id ---------------------------------
state=$tmp/state
mkdir -p "$state"
c check-idchange.test --state "$state"
expect_rc "first --state run" 0
is "first --state run: id.first_seen info" "$(py '[p for p in pairs() if p.startswith("id.")]' 2>&1)" "id.first_seen:info"
c check-idchange.test --state "$state"
expect_rc "second run, nothing changed" 0
is "second run: id.discipline pass" "$(py '[p for p in pairs() if p.startswith("id.")]' 2>&1)" "id.discipline:pass"
if "$WORLD/swap" "$WDIR" check-idchange >"$tmp/r" 2>&1; then ok "swap the policy of check-idchange.test (TXT id unchanged)"; else
	not_ok "swap the policy of check-idchange.test"; diag "$tmp/r"; fi
c check-idchange.test --state "$state"
expect_rc "policy changed, id not" 2
is "policy changed, id not: id.policy_changed_same_id fail" "$(py '[p for p in pairs() if p.startswith("id.")]' 2>&1)" \
	"id.policy_changed_same_id:fail"
like "id.policy_changed_same_id: the message names a date" \
	"$(py '" ".join(f["message"] for f in find(o, "id.policy_changed_same_id"))' 2>&1)" "[0-9]{4}-[0-9]{2}-[0-9]{2}"
is "policy changed, id not: nothing else is wrong" "$(py '[p for p in nonpass() if not p.startswith("id.")]' 2>&1)" ""
c check-idchange.test
expect_rc "the same with --state none: no id findings" 0
is "--state none: no id findings" "$(py '[i for i in ids() if i.startswith("id.")]' 2>&1)" ""
"$WORLD/swap" "$WDIR" check-idchange >/dev/null 2>&1

# The default memory: $XDG_CACHE_HOME/mtasts/check-state.
cs check-good.test
expect_rc "default state, first run" 0
is "default state, first run: id.first_seen info" "$(py '[p for p in pairs() if p.startswith("id.")]' 2>&1)" "id.first_seen:info"
cs check-good.test
is "default state, second run: id.discipline pass" "$(py '[p for p in pairs() if p.startswith("id.")]' 2>&1)" "id.discipline:pass"
if [ -n "$(ls -A "$XDG_CACHE_HOME/mtasts/check-state" 2>/dev/null)" ]; then
	ok "default state kept in \$XDG_CACHE_HOME/mtasts/check-state"
else
	not_ok "default state kept in \$XDG_CACHE_HOME/mtasts/check-state"
fi

# --- bulk: -f FILE --concurrency 20, one JSON line per domain as it finishes -----------------
list=$tmp/domains
{
	for d in good nostarttls mxexpired testing notlsrpt dane nullmx; do echo "check-$d.test"; done
	seq -f 'd%05g.bench.test' 1 30
	echo stall.test   # its policy host stalls: done last, after --timeout
} >"$list"
n_list=$(grep -c . "$list")
# The lines with the time each arrived, to see them stream.
timeout 120 python3 - "$M" "$RESOLVER" "$CA_FILE" "$list" >"$tmp/bulk" 2>"$tmp/err" <<'PY'
import subprocess, sys, time
m, resolver, ca, lst = sys.argv[1:5]
t0 = time.monotonic()
p = subprocess.Popen([m, "check", "-f", lst, "--concurrency", "20", "--json", "--state", "none", "--resolver", resolver,
                      "--ca-file", ca, "--timeout", "5"], stdout=subprocess.PIPE)
for line in p.stdout:
    print("%.3f %s" % (time.monotonic() - t0, line.decode().rstrip("\n")), flush=True)
print("exit %d %.3f" % (p.wait(), time.monotonic() - t0))
PY
bulk_rc=$(awk '$1 == "exit" { print $2 }' "$tmp/bulk")
is "bulk: exit 2 (some domains fail)" "$bulk_rc" 2
grep -v '^exit ' "$tmp/bulk" | cut -d' ' -f2- >"$tmp/out"
is "bulk: one line per domain ($n_list)" "$(grep -c . "$tmp/out")" "$n_list"
is "bulk: every line a JSON object with domain and findings, each domain once" \
	"$(py 'sorted(x["domain"] for x in objs if isinstance(x.get("findings"), list))' 2>&1 | tr ' ' '\n' | sort | tr '\n' ' ')" \
	"$(sort "$list" | tr '\n' ' ')"
is "bulk: the same verdicts as one by one" \
	"$(py '" ".join(x["domain"] + "=" + ",".join(nonpass(x)) for x in sorted(objs, key=lambda x: x["domain"]) if x["domain"].startswith("check-"))' 2>&1)" \
	"check-dane.test=dane.tlsa:info check-good.test= check-mxexpired.test=mx.cert.expiry:fail check-nostarttls.test=mx.starttls:fail check-notlsrpt.test=tlsrpt.present:warn check-nullmx.test=mx.null:info,policy.mode:info check-testing.test=policy.mode:warn"
is "bulk: the bench domains (shared MX) all pass" \
	"$(py 'sorted({",".join(nonpass(x)) or "ok" for x in objs if x["domain"].endswith(".bench.test")})' 2>&1)" ok
is "bulk: stall.test is the last line" "$(tail -n 1 "$tmp/out" | python3 -c 'import json, sys; print(json.load(sys.stdin)["domain"])' 2>&1)" stall.test
first=$(head -n 1 "$tmp/bulk" | cut -d' ' -f1)
last=$(grep -v '^exit ' "$tmp/bulk" | tail -n 1 | cut -d' ' -f1)
if python3 -c "import sys; sys.exit(0 if float('$last') - float('$first') >= 2 else 1)" 2>/dev/null; then
	ok "bulk: lines stream (first at ${first}s, stall.test at ${last}s)"
else
	not_ok "bulk: lines stream (first at ${first}s, stall.test at ${last}s: all at once)"
fi

# --- usage ----------------------------------------------------------------------------------------
C
expect_rc "no domain" 3
C --json --resolver not-an-address check-good.test
expect_rc "--resolver not-an-address" 3
C --json --smtp-port 70000 check-good.test
expect_rc "--smtp-port 70000" 3
finish
