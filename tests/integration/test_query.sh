#!/usr/bin/env bash
# mta-sts query, end to end, against the local test world (tests/world):
# knotd on 127.0.54.1:53 and nginx on 127.0.60.x:443, started here and
# stopped on exit. One case per category of tests/world/README.md: status,
# error code, TLSRPT result type and exit code; then the cache: an id
# change, a cached policy that outlives its TXT record (rule 9) and a failed
# refresh (rule 38). Speaks TAP. Needs $MTA_STS (set by meson) and root.
set -u
M=${MTA_STS:?MTA_STS must point at the mta-sts binary}
# shellcheck source=tests/world/testlib.sh
. "${MTASTS_SOURCE_ROOT:-$(dirname "$0")/../..}/tests/world/testlib.sh"
command -v python3 >/dev/null || { echo "Bail out! python3 is missing"; exit 1; }
# shellcheck disable=SC2119
world_start
if "$M" query --help >/dev/null 2>&1; then :; else
	echo "# '$M query --help' fails: the query command is missing or broken; every case below will fail"
fi

# Q ARGS...: mta-sts query ARGS; stdout in $tmp/out, stderr in $tmp/err,
# exit status in $qrc, wall-clock seconds in $qsecs.
Q() {
	local t0=$SECONDS
	timeout 60 "$M" query "$@" >"$tmp/out" 2>"$tmp/err"
	qrc=$?
	qsecs=$((SECONDS - t0))
}
# q DOMAIN... [OPTIONS]: --json with the world's resolver and CA, no cache.
q() { Q --json --resolver "$RESOLVER" --ca-file "$CA_FILE" --cache none --timeout 3 "$@"; }
# qc DOMAIN...: the same with the sqlite cache $tmp/cache.db
qc() { Q --json --resolver "$RESOLVER" --ca-file "$CA_FILE" --cache "$tmp/cache.db" --timeout 3 "$@"; }

# expect DESC RC PYEXPR: the last query exited RC and PYEXPR holds for its
# JSON Lines output. In PYEXPR: o (first object), objs (all of them),
# err(key) (o["error"][key] or None), times_ok() (fetched_at/expires_at
# present and max_age apart).
expect() {
	local desc=$1 want=$2 expr=$3
	if [ "$qrc" -ne "$want" ]; then
		not_ok "$desc: exit $want (got $qrc)"
		diag "$tmp/out" "$tmp/err"
	else
		ok "$desc: exit $want"
	fi
	if python3 - "$tmp/out" "$expr" >"$tmp/py" 2>&1 <<'PY'; then ok "$desc: $expr"; else
import datetime, json, sys
objs = [json.loads(l) for l in open(sys.argv[1], encoding="utf-8") if l.strip()]
o = objs[0] if objs else {}
def err(k):
    return (o.get("error") or {}).get(k)
def ts(v):
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return v
    return datetime.datetime.fromisoformat(str(v).replace("Z", "+00:00")).timestamp()
def times_ok():
    return ts(o["expires_at"]) - ts(o["fetched_at"]) == o["max_age"]
if not eval(sys.argv[2]):
    print("false:", sys.argv[2])
    sys.exit(1)
PY
		not_ok "$desc: $expr"
		diag "$tmp/py" "$tmp/out" "$tmp/err"
	fi
}

fetch_err() { # fetch_err NAME CODE TLSRPT: no policy because the fetch failed
	q "$1.test"
	expect "$1" 1 "o['domain'] == '$1.test' and o['status'] == 'no-policy' and err('code') == '$2' and err('tlsrpt_result_type') == '$3'"
}

# --- policies in force -------------------------------------------------------------
q enforce.test
expect enforce 0 "len(objs) == 1 and o['domain'] == 'enforce.test' and o['status'] == 'policy' and o['mode'] == 'enforce' and o['mx'] == ['mail.enforce.test'] and o['max_age'] == 604800 and o['id'] == 'enforce1' and o['source'] == 'fetch' and not o.get('error') and times_ok()"
q testing.test
expect testing 0 "o['status'] == 'policy' and o['mode'] == 'testing' and o['mx'] == ['mail.testing.test', '*.backup.testing.test'] and o['max_age'] == 86400 and o['source'] == 'fetch'"
q split.test
expect "split (TXT of two character-strings)" 0 "o['status'] == 'policy' and o['id'] == '20240101' and o['mode'] == 'enforce'"
q cname.test
expect "cname (TXT through a CNAME)" 0 "o['status'] == 'policy' and o['id'] == 'cname1' and o['mx'] == ['mail.cname.test']"
q ENFORCE.Test.
expect "domain in capitals with a trailing dot" 0 "o['domain'] == 'enforce.test' and o['status'] == 'policy'"

# --- no policy --------------------------------------------------------------------------
q none.test
expect "none (mode none)" 1 "o['status'] == 'none' and o['mode'] == 'none'"
q notxt.test
expect notxt 1 "o['status'] == 'no-policy' and err('code') == 'txt.rrset.none'"
q twotxt.test
expect twotxt 1 "o['status'] == 'no-policy' and err('code') == 'txt.rrset.multiple'"
fetch_err refused fetch.connect sts-policy-fetch-error
fetch_err notfound fetch.http.status sts-policy-fetch-error
fetch_err redirect fetch.http.redirect sts-policy-fetch-error
fetch_err ctype fetch.http.content_type sts-policy-fetch-error
fetch_err bigcl fetch.http.too_large sts-policy-fetch-error
fetch_err bigchunked fetch.http.too_large sts-policy-fetch-error
fetch_err stall fetch.timeout sts-policy-fetch-error
if [ "$qsecs" -le 10 ]; then ok "stall: --timeout 3 is kept (${qsecs}s)"; else not_ok "stall: --timeout 3 is kept (${qsecs}s)"; fi
fetch_err wrongname fetch.tls.name sts-webpki-invalid
fetch_err untrusted fetch.tls.untrusted sts-webpki-invalid
fetch_err expired fetch.tls.expired sts-webpki-invalid
fetch_err noaddr fetch.dns.no_address sts-policy-fetch-error
while read -r c diag_code; do
	q "$c.test"
	expect "$c" 1 "o['status'] == 'no-policy' and err('code') == 'policy.invalid' and err('tlsrpt_result_type') == 'sts-policy-invalid' and '$diag_code' in err('message')"
done <<'LIST'
syntax-mode policy.mode.invalid
syntax-maxage policy.max_age.invalid
syntax-missingmx policy.mx.missing
syntax-version policy.version.invalid
syntax-ulabel policy.mx.ulabel
syntax-html policy.line.not_field
syntax-barecr policy.bare_cr
syntax-empty policy.empty
LIST

# --- temporary failure -------------------------------------------------------------------
q tempfail.test
expect "tempfail (TXT lookup SERVFAIL, nothing cached)" 2 "o['status'] == 'error' and err('code') == 'dns.txt.temporary'"

# --- several domains, exit status, plain output, usage --------------------------------------
q enforce.test testing.test
expect "two policies" 0 "[x['domain'] for x in objs] == ['enforce.test', 'testing.test'] and all(x['status'] == 'policy' for x in objs)"
q enforce.test notxt.test
expect "a policy and no policy" 1 "[x['status'] for x in objs] == ['policy', 'no-policy']"
Q --resolver "$RESOLVER" --ca-file "$CA_FILE" --cache none --timeout 3 enforce.test
is "plain output: exit 0" "$qrc" 0
like "plain output names mode and mx" "$(tr '\n' ' ' <"$tmp/out")" "enforce.*mail\.enforce\.test|mail\.enforce\.test.*enforce"
Q --resolver "$RESOLVER" --ca-file "$CA_FILE" --cache none --timeout 3 notxt.test
is "plain output, no policy: exit 1" "$qrc" 1
like "plain output says no policy" "$(cat "$tmp/out" "$tmp/err" | tr '\n' ' ')" "[Nn]o policy"
Q
is "no domain: usage error, exit 3" "$qrc" 3
Q --bogus enforce.test
is "unknown option: exit 3" "$qrc" 3
Q --timeout soon enforce.test
is "bad --timeout: exit 3" "$qrc" 3
Q --resolver not-an-address enforce.test
is "bad --resolver: exit 3" "$qrc" 3

# --- the cache ------------------------------------------------------------------------------------
qc idchange.test
expect "idchange, first fetch" 0 "o['status'] == 'policy' and o['mode'] == 'testing' and o['id'] == 'idchange1' and o['source'] == 'fetch'"
qc idchange.test
expect "idchange, same id: from the cache" 0 "o['status'] == 'policy' and o['id'] == 'idchange1' and o['source'] == 'cache'"
sed -i 's/id=idchange1/id=idchange2/' "$ZONE_FILE"
printf 'version: STSv1\r\nmode: enforce\r\nmx: mail.idchange.test\r\nmax_age: 604800\r\n' >"$WWW/idchange/.well-known/mta-sts.txt"
"$WORLD/reload" "$WDIR" >"$tmp/r" 2>&1 || { echo "Bail out! tests/world/reload failed"; diag "$tmp/r"; exit 1; }
qc idchange.test
expect "idchange, new id: fetched again" 0 "o['status'] == 'policy' and o['mode'] == 'enforce' and o['id'] == 'idchange2' and o['max_age'] == 604800 and o['source'] == 'fetch'"
qc idchange.test
expect "idchange, new id cached" 0 "o['status'] == 'policy' and o['mode'] == 'enforce' and o['id'] == 'idchange2' and o['source'] == 'cache'"
# Rule 38: a new id whose policy is broken leaves the cached one in force.
sed -i 's/id=idchange2/id=idchange3/' "$ZONE_FILE"
printf 'version: STSv1\r\nmode: enforced\r\nmx: mail.idchange.test\r\nmax_age: 604800\r\n' >"$WWW/idchange/.well-known/mta-sts.txt"
"$WORLD/reload" "$WDIR" >"$tmp/r" 2>&1 || { echo "Bail out! tests/world/reload failed"; diag "$tmp/r"; exit 1; }
qc idchange.test
expect "idchange, refresh fails: cached policy stays (rule 38)" 0 "o['status'] == 'policy' and o['mode'] == 'enforce' and o['id'] == 'idchange2' and o['source'] == 'cache'"

# Rule 9: a cached enforce policy outlives its TXT record; a cached mode
# none policy does not (rule 67).
qc enforce.test none.test
expect "enforce and none cached" 1 "[(x['status'], x['source']) for x in objs] == [('policy', 'fetch'), ('none', 'fetch')]"
sed -i -e '/^_mta-sts\.enforce /d' -e '/^_mta-sts\.none /d' "$ZONE_FILE"
"$WORLD/reload" "$WDIR" >"$tmp/r" 2>&1 || { echo "Bail out! tests/world/reload failed"; diag "$tmp/r"; exit 1; }
q enforce.test
expect "enforce TXT removed, no cache: no policy" 1 "o['status'] == 'no-policy' and err('code') == 'txt.rrset.none'"
qc enforce.test
expect "enforce TXT removed: cached policy still applies (rule 9)" 0 "o['status'] == 'policy' and o['mode'] == 'enforce' and o['id'] == 'enforce1' and o['source'] == 'cache'"
qc none.test
expect "none TXT removed: cached none policy dropped (rule 67)" 1 "o['status'] == 'no-policy'"

finish
