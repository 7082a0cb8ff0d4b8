#!/usr/bin/env bash
# mta-sts lint and match, end to end: exit codes, compiler-style lines, JSON
# shape, bad-input paths. Speaks TAP. Needs $MTA_STS (set by meson).
set -u
M=${MTA_STS:?MTA_STS must point at the mta-sts binary}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
n=0
fails=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
not_ok() { n=$((n + 1)); fails=$((fails + 1)); echo "not ok $n - $1"; }
check() { # check DESC EXPECTED_RC CMD... ; output in $tmp/out
	local desc=$1 want=$2
	shift 2
	"$@" >"$tmp/out" 2>"$tmp/err"
	local rc=$?
	if [ "$rc" -eq "$want" ]; then ok "$desc"; else
		not_ok "$desc (exit $rc, want $want)"
		sed 's/^/# /' "$tmp/out" "$tmp/err"
	fi
}
has() { # has DESC PATTERN FILE
	if grep -qE -- "$2" "$3"; then ok "$1"; else not_ok "$1"; echo "# no /$2/ in:"; sed 's/^/# /' "$3"; fi
}

printf 'version: STSv1\nmode: enforce\nmx: mail.example.com\nmx: *.example.net\nmax_age: 604800\n' >"$tmp/good.txt"
printf 'version: STSv1\nmode: enforced\nmx: mail.example.com\nmax_age: 604800\n' >"$tmp/bad.txt"
printf 'version: STSv1\n\nmode: testing\nmx: mail.example.com.\nmax_age: 99999999\n' >"$tmp/tolerated.txt"

check "valid policy exits 0" 0 "$M" lint "$tmp/good.txt"
has "valid policy says valid" "good.txt: valid$" "$tmp/out"
check "invalid policy exits 1" 1 "$M" lint "$tmp/bad.txt"
has "error line is FILE:LINE:COL: error: MSG [rule N]" "bad.txt:2:7: error: mode 'enforced' .*\[rule 15\]" "$tmp/out"
check "tolerated deviations pass by default" 0 "$M" lint "$tmp/tolerated.txt"
has "tolerated deviations are warnings" "tolerated.txt:2:1: warning: empty line" "$tmp/out"
check "tolerated deviations fail --strict" 1 "$M" lint --strict "$tmp/tolerated.txt"
has "--strict reports three errors" "invalid: 3 errors" "$tmp/out"
check "standard input" 0 sh -c "\"$M\" lint - < \"$tmp/good.txt\""
has "standard input is named <stdin>" "^<stdin>: valid" "$tmp/out"
check "missing file exits 2" 2 "$M" lint "$tmp/nope.txt"
has "missing file is named" "nope.txt: No such file" "$tmp/err"
check "directory exits 2" 2 "$M" lint "$tmp"
check "no file argument exits 2" 2 "$M" lint
check "unknown option exits 2" 2 "$M" lint --bogus "$tmp/good.txt"
has "  ... named with the command's prefix" "^mta-sts lint: unknown option '--bogus'\$" "$tmp/err"
has "  ... usage on stderr" "^usage: mta-sts lint" "$tmp/err"
if ! grep -q "unrecognized" "$tmp/err"; then ok "  ... and not getopt's wording"; else not_ok "  ... and not getopt's wording"; sed 's/^/# /' "$tmp/err"; fi
check "unknown short option in a group exits 2" 2 "$M" lint -sx "$tmp/good.txt"
has "  ... names the letter" "^mta-sts lint: unknown option '-x'\$" "$tmp/err"
check "lint option with a value exits 2" 2 "$M" lint --json=yes "$tmp/good.txt"
has "  ... says it takes none" "^mta-sts lint: option '--json' takes no value\$" "$tmp/err"
check "--record and --tlsrpt together exit 2" 2 "$M" lint --record --tlsrpt "$tmp/good.txt"
check "help exits 0" 0 "$M" lint --help
check "unknown command exits 2" 2 "$M" frobnicate

head -c 70000 /dev/zero | tr '\0' 'a' >"$tmp/huge.txt"
check "oversized policy is invalid, not a crash" 1 "$M" lint "$tmp/huge.txt"
has "oversized policy names the limit" "65536" "$tmp/out"

check "json valid" 0 "$M" lint --json "$tmp/good.txt"
if python3 - "$tmp/out" <<'PY'
import json, sys
o = json.load(open(sys.argv[1]))
assert o["valid"] is True and o["errors"] == [] and o["warnings"] == []
p = o["policy"]
assert p["version"] == "STSv1" and p["mode"] == "enforce" and p["max_age"] == 604800
assert p["mx"] == ["mail.example.com", "*.example.net"] and p["extensions"] == {}
PY
then ok "json policy object"; else not_ok "json policy object"; fi
check "json invalid" 1 "$M" lint --json "$tmp/bad.txt"
if python3 - "$tmp/out" <<'PY'
import json, sys
o = json.load(open(sys.argv[1]))
assert o["valid"] is False
e = o["errors"][0]
assert e["code"] == "policy.mode.invalid" and e["line"] == 2 and e["column"] == 7 and e["rule"] == "15"
assert set(e) >= {"code", "line", "column", "rule", "message"}
PY
then ok "json error object"; else not_ok "json error object"; fi

printf 'v=STSv1; id=20261129120000\n' >"$tmp/rec.txt"
check "record valid (trailing newline of the file ignored)" 0 "$M" lint --record "$tmp/rec.txt"
check "record json" 0 "$M" lint --record --json "$tmp/rec.txt"
has "record json has id" '"record":\{"id":"20261129120000"' "$tmp/out"
printf 'v=STSv1; id=2026-11-29' >"$tmp/rec-bad.txt"
check "record invalid id exits 1" 1 "$M" lint --record "$tmp/rec-bad.txt"
has "record error names the column" "rec-bad.txt:1:13: error: id '2026-11-29'" "$tmp/out"
printf 'v=TLSRPTv1; rua=mailto:tlsrpt@example.com,https://r.example/v1' >"$tmp/tls.txt"
check "tlsrpt valid" 0 "$M" lint --tlsrpt --json "$tmp/tls.txt"
has "tlsrpt json rua" '"rua":\["mailto:tlsrpt@example.com","https://r.example/v1"\]' "$tmp/out"
printf 'v=TLSRPTv1; rua=http://r.example/' >"$tmp/tls-bad.txt"
check "tlsrpt http rejected" 1 "$M" lint --tlsrpt "$tmp/tls-bad.txt"

check "match wildcard" 0 "$M" match '*.example.com' MX1.Example.COM.
check "match no deeper label" 1 "$M" match '*.example.com' a.b.example.com
check "match IDN host" 0 "$M" match 'xn--mx-lka.example' 'møx.example'
check "match invalid pattern exits 2" 2 "$M" match 'a..example' a.example
has "invalid pattern gives the reason" "empty label" "$tmp/err"
check "match U-label pattern exits 2 with the A-label" 2 "$M" match 'møx.example' a
has "U-label hint" "xn--mx-lka.example" "$tmp/err"
check "match --policy all hosts" 0 "$M" match --policy "$tmp/good.txt" mail.example.com a.example.net
has "match --policy names the pattern" "a.example.net: match \(mx: \*.example.net\)" "$tmp/out"
check "match --policy one miss exits 1" 1 "$M" match --policy "$tmp/good.txt" mail.example.com evil.example.org
has "match --policy miss line" "evil.example.org: no match" "$tmp/out"
check "match --policy invalid policy exits 2" 2 "$M" match --policy "$tmp/bad.txt" mail.example.com
check "match --policy oversized policy exits 2 like any invalid policy" 2 "$M" match --policy "$tmp/huge.txt" mail.example.com
has "  ... with the parser's diagnostic" "huge\.txt:1:1: error: the policy is larger than 65536 bytes.*\(policy\.too_large\)" "$tmp/err"
has "  ... and the invalid-policy line, not an I/O error" "^mta-sts match: .*huge\.txt: policy is invalid" "$tmp/err"
check "match unknown option exits 2" 2 "$M" match --bogus a b
has "  ... named with the command's prefix" "^mta-sts match: unknown option '--bogus'\$" "$tmp/err"
check "match --policy without a value exits 2" 2 "$M" match --policy
has "  ... says it needs one" "^mta-sts match: option '--policy' needs a value\$" "$tmp/err"
check "match -p without a value exits 2" 2 "$M" match -p
has "  ... says it needs one" "^mta-sts match: option '-p' needs a value\$" "$tmp/err"

echo "1..$n"
[ "$fails" -eq 0 ]
