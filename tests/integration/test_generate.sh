#!/usr/bin/env bash
# mta-sts generate, end to end: durations, argument checks, U-label domains,
# strict validity of the output, --out-dir, --json. Speaks TAP.
# Needs $MTA_STS (set by meson).
set -u
. "$(dirname "$0")/clitap.sh"
# has DESC PATTERN FILE: an extended regex matches a line of FILE
has() {
	if grep -qE -- "$2" "$3"; then ok "$1"; else
		not_ok "$1"
		echo "# no /$2/ in $(basename "$3"):"
		sed 's/^/#   /' "$3"
	fi
}
# lacks DESC PATTERN FILE
lacks() {
	if ! grep -qE -- "$2" "$3"; then ok "$1"; else
		not_ok "$1"
		grep -E -- "$2" "$3" | sed 's/^/# unexpected: /'
	fi
}

# 2026-11-29T12:00:00Z, so the default id is known.
export MTA_STS_NOW=1795953600
NOW_ID=20261129120000
G=("$M" generate --domain example.com)

# --- help and usage -------------------------------------------------------
check "--help exits 0" 0 "$M" generate --help
has "--help prints usage to stdout" "^usage: mta-sts generate" "$tmp/out"
has "--help documents the MTA_STS_NOW test hook" "MTA_STS_NOW" "$tmp/out"
has "--help names the TXT TTL" "zone-file line of the TXT record \(TTL 3600\)" "$tmp/out"
has "  ... and why it is short (rule 63)" "^TTL short: senders see a new id only once the old record's TTL has passed" "$tmp/out"
check "help generate exits 0" 0 "$M" help generate
check "unknown option exits 2" 2 "$M" generate --bogus
has "unknown option is named" "unknown option '--bogus'" "$tmp/err"
has "unknown option prints usage to stderr" "^usage: mta-sts generate" "$tmp/err"
check "option without value exits 2" 2 "$M" generate --domain
has "option without value is named" "'--domain' needs a value" "$tmp/err"
check "option with a value it does not take exits 2" 2 "$M" generate --json=1
has "  ... is named" "^mta-sts generate: option '--json' takes no value\$" "$tmp/err"
check "unknown short option exits 2" 2 "$M" generate -q
has "  ... is named" "^mta-sts generate: unknown option '-q'\$" "$tmp/err"

# --- missing and invalid arguments (table: rc | stderr regex | args...) ----
while IFS='|' read -r want re args; do
	[ -z "$want" ] && continue
	eval "set -- $args"
	check "args [$args] exit $want" "$want" "$M" generate "$@"
	has "args [$args] explain: $re" "$re" "$tmp/err"
done <<'EOF'
2|--domain is required|--mode enforce --mx mail.example.com --max-age 1w
2|--mode is required|--domain example.com --mx mail.example.com --max-age 1w
2|--max-age is required|--domain example.com --mode enforce --mx mail.example.com
2|--mode 'enforced' is not a mode: use enforce, testing or none|--domain example.com --mode enforced --mx m.example.com --max-age 1w
2|--mode 'Enforce' is not a mode|--domain example.com --mode Enforce --mx m.example.com --max-age 1w
2|mode enforce needs at least one --mx|--domain example.com --mode enforce --max-age 1w
2|mode testing needs at least one --mx|--domain example.com --mode testing --max-age 1w
2|unexpected argument 'mail.example.com'|--domain example.com --mode enforce mail.example.com --max-age 1w
2|--domain given twice|--domain example.com --domain example.org --mode none --max-age 1w
2|--max-age given twice|--domain example.com --mode none --max-age 1w --max-age 2w
2|--id 'a-b' is not a valid id: give 1-32 letters or digits|--domain example.com --mode none --max-age 1w --id a-b
2|--id '' is not a valid id|--domain example.com --mode none --max-age 1w --id ''
2|--id '123456789012345678901234567890123' is not a valid id|--domain example.com --mode none --max-age 1w --id 123456789012345678901234567890123
EOF
check "missing everything lists every missing option" 2 "$M" generate
has "  ... --domain" "--domain is required" "$tmp/err"
has "  ... --mode" "--mode is required" "$tmp/err"
has "  ... --max-age" "--max-age is required" "$tmp/err"
check "mode none needs no --mx" 0 "${G[@]}" --mode none --max-age 1d

# --- durations that work (table: input | seconds) -------------------------
while IFS='|' read -r in secs; do
	[ -z "$in" ] && continue
	check "--max-age $in is accepted" 0 "${G[@]}" --mode testing --mx mail.example.com --max-age "$in"
	has "--max-age $in is $secs seconds" "^max_age: $secs"$'\r'"\$" "$tmp/out"
done <<'EOF'
86400|86400
0|0
90s|90
15m|900
36h|129600
1d|86400
1w|604800
1w2d|777600
2d1w|777600
2h30m|9000
1w1d1h1m1s|694861
52w|31449600
31557600|31557600
365d6h|31557600
007|7
EOF

# --- durations that do not (table: input | stderr regex) ------------------
while IFS='|' read -r in re; do
	[ "$in" = "<empty>" ] && in=""
	check "--max-age '$in' is rejected" 2 "${G[@]}" --mode testing --mx mail.example.com --max-age "$in"
	has "--max-age '$in' explains: $re" "^mta-sts generate: --max-age .*$re" "$tmp/err"
	if [ -s "$tmp/out" ]; then not_ok "--max-age '$in' prints no policy"; else ok "--max-age '$in' prints no policy"; fi
done <<'EOF'
31557601|maximum max_age of 31557600 seconds \(one year, rule 15\)
53w|maximum max_age of 31557600
365d6h1s|maximum max_age of 31557600
99999999999999999999999999999999|maximum max_age of 31557600
18446744073709551616s|maximum max_age of 31557600
9999999999999w|maximum max_age of 31557600
1x|unknown unit 'x': use s, m, h, d or w
1W|unknown unit 'W'
1.5d|fractions are not allowed
1d1d|unit 'd' appears twice
1d30|the last number has no unit
-1|without sign
+5|without sign
d|every unit needs a number before it
1d |contains white space
 1d|contains white space
1 d|contains white space
abc|not a duration
<empty>|is empty
EOF

# --- mx patterns (table: pattern | stderr regex) --------------------------
while IFS='|' read -r pat re; do
	check "--mx '$pat' is rejected" 2 "${G[@]}" --mode enforce --mx ok.example.com --mx "$pat" --max-age 1w
	has "--mx '$pat' is named with the fix: $re" "--mx .*$re" "$tmp/err"
done <<'EOF'
mail.example.com.|ends with '.': remove the trailing dot
møx.example|write it as A-labels: 'mx: xn--mx-lka.example'
1.2.3.4|looks like an IP address
a.example.com,b.example.com|one 'mx:' line per host
*.*.example.com|'\*' may only stand as the whole left-most label
mail.*.example.com|'\*' may only stand
https://mail.example.com|not a host name
[192.0.2.1]|address literal
-mail.example.com|may not begin or end with '-'
mail..example.com|empty label
EOF
l63=$(printf 'a%.0s' $(seq 1 63))
long="*.$l63.$l63.$l63.${l63:0:61}"   # 253 after "*.", so no host can match
check "--mx longer than any host name is rejected" 2 "${G[@]}" --mode enforce --mx "$long" --max-age 1w
has "  ... naming the limit" "a pattern has at most 253" "$tmp/err"
check "repeated --mx is listed once" 0 "${G[@]}" --mode enforce --mx a.example.com --mx A.example.com --max-age 1w
has "  ... with a warning" "warning: --mx 'a.example.com' given more than once" "$tmp/err"
if [ "$(grep -c '^mx: ' "$tmp/out")" -eq 1 ]; then ok "  ... and one mx line"; else not_ok "  ... and one mx line"; fi
check "upper-case --mx is lowered" 0 "${G[@]}" --mode enforce --mx MAIL.Example.COM --max-age 1w
has "  ... in the policy" "^mx: mail.example.com"$'\r'"\$" "$tmp/out"
check "'*.example' wildcard gets a broad-wildcard warning" 0 "${G[@]}" --mode testing --mx '*.example' --max-age 1w
has "  ... rule 73" "warning: --mx '\*.example'.*\[rule 73\]" "$tmp/err"

# --- domains (table: domain | stderr regex) -------------------------------
while IFS='|' read -r dom re; do
	[ "$dom" = "<empty>" ] && dom=""
	check "--domain '$dom' is rejected" 2 "$M" generate --domain "$dom" --mode none --max-age 1d
	has "--domain '$dom' explains: $re" "^mta-sts generate: --domain .*$re" "$tmp/err"
done <<'EOF'
<empty>|is empty
a..example|empty label
.example.com|empty label
-a.example|may not begin or end with '-'
exa_mple.com|'_' is not allowed
exa mple.com|' ' is not allowed
exa!mple.com|'!' is not allowed
_mta-sts.example.com|without the '_mta-sts.' prefix
localhost|single label
192.0.2.1|looks like an IP address
https://example.com|not a domain name
user@example.com|not a domain name
xn--zz.example|not a valid A-label
aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.example|a label has 65 characters; at most 63
EOF
u254=$(printf 'a%.0s' $(seq 1 254))
check "--domain of 255 characters is rejected" 2 "$M" generate --domain "$u254.é" --mode none --max-age 1d
has "  ... as IDNA2008 rejects it" "not a valid domain name \\(an internationalised name that IDNA2008 rejects\\)" "$tmp/err"
d63=$(printf 'a%.0s' $(seq 1 63))
check "--domain of 248 characters is rejected" 2 "$M" generate --domain "$d63.$d63.$d63.${d63:0:56}" --mode none --max-age 1d
has "  ... naming the TXT owner limit" "is 248 characters; .*TXT owner name would pass 253, so at most 244" "$tmp/err"
check "--domain of 244 characters is fine" 0 "$M" generate --domain "$d63.$d63.$d63.${d63:0:52}" --mode none --max-age 1d
check "--domain mta-sts.example.com warns" 0 "$M" generate --domain mta-sts.example.com --mode none --max-age 1d
has "  ... that it looks like the policy host" "warning: --domain 'mta-sts.example.com' starts with 'mta-sts.'" "$tmp/err"

# --- U-label domain, upper case, trailing dot -----------------------------
check "U-label domain is accepted" 0 "$M" generate --domain 'Bücher.Example' --mode testing --mx mail.example.com --max-age 1w
has "  ... TXT owner uses the A-label" "^_mta-sts\.xn--bcher-kva\.example\. 3600 IN TXT \"v=STSv1; id=$NOW_ID\"\$" "$tmp/err"
has "  ... guidance names the policy host as A-label" "https://mta-sts\.xn--bcher-kva\.example/\.well-known/mta-sts\.txt" "$tmp/err"
check "upper-case domain with trailing dot" 0 "$M" generate --domain EXAMPLE.COM. --mode none --max-age 1d
has "  ... is normalised" "^_mta-sts\.example\.com\. 3600 IN TXT" "$tmp/err"

# --- the policy itself passes lint --strict, exact bytes ------------------
# lintwarn: the warning code lint may add ("-" for none)
while IFS='|' read -r mode mxs age lintwarn want; do
	[ -z "$mode" ] && continue
	mxargs=()
	for x in $mxs; do mxargs+=(--mx "$x"); done
	check "generate $mode [$mxs] $age" 0 "${G[@]}" --mode "$mode" "${mxargs[@]}" --max-age "$age"
	cp "$tmp/out" "$tmp/policy.txt"
	printf "$want" >"$tmp/want.txt"
	if cmp -s "$tmp/policy.txt" "$tmp/want.txt"; then ok "  ... exact bytes, CRLF, RFC order"; else
		not_ok "  ... exact bytes, CRLF, RFC order"; od -c "$tmp/policy.txt" | sed 's/^/# /'; fi
	check "  ... passes lint --strict" 0 "$M" lint --strict "$tmp/policy.txt"
	if [ "$lintwarn" = - ]; then
		lacks "  ... without warnings" "warning:" "$tmp/out"
	else
		has "  ... lint warns ($lintwarn)" "warning: .*\($lintwarn\)" "$tmp/out"
		grep -vF "($lintwarn)" "$tmp/out" >"$tmp/out2"
		lacks "  ... and nothing else" "warning:" "$tmp/out2"
	fi
done <<'EOF'
enforce|mail.example.com *.mx.example.net|1w|-|version: STSv1\r\nmode: enforce\r\nmx: mail.example.com\r\nmx: *.mx.example.net\r\nmax_age: 604800\r\n
testing|mail.example.com|1d|-|version: STSv1\r\nmode: testing\r\nmx: mail.example.com\r\nmax_age: 86400\r\n
none||300|-|version: STSv1\r\nmode: none\r\nmax_age: 300\r\n
none|mail.example.com|1d|-|version: STSv1\r\nmode: none\r\nmx: mail.example.com\r\nmax_age: 86400\r\n
enforce|xn--mx-lka.example b.example c.example|31557600|-|version: STSv1\r\nmode: enforce\r\nmx: xn--mx-lka.example\r\nmx: b.example\r\nmx: c.example\r\nmax_age: 31557600\r\n
EOF
check "TXT line goes to stderr, not into the policy" 0 "${G[@]}" --mode testing --mx m.example.com --max-age 1w
has "  ... zone-file line on stderr" "^_mta-sts\.example\.com\. 3600 IN TXT \"v=STSv1; id=$NOW_ID\"\$" "$tmp/err"
has "  ... guidance: policy first, then TXT (rule 64)" "serve the policy at https://mta-sts\.example\.com/.*then publish the TXT record \[rule 64\]" "$tmp/err"
lacks "  ... stdout holds only policy lines" "TXT|^$" "$tmp/out"
check "generated TXT value passes lint --record --strict" 0 sh -c "printf 'v=STSv1; id=$NOW_ID' | \"$M\" lint --strict --record -"

# --- max_age warnings (table: mode | age | warns? ) -----------------------
while IFS='|' read -r mode age warns; do
	check "$mode max_age $age" 0 "${G[@]}" --mode "$mode" --mx m.example.com --max-age "$age"
	if [ "$warns" = yes ]; then
		has "  ... warns (rule 17)" "warning: max_age .*rules 17, 70" "$tmp/err"
	else
		lacks "  ... does not warn" "warning" "$tmp/err"
	fi
done <<'EOF'
enforce|6d23h59m59s|yes
enforce|1w|no
testing|86399|yes
testing|1d|no
none|60|no
EOF

# --- ids ------------------------------------------------------------------
check "--id is used as given" 0 "${G[@]}" --mode none --max-age 1d --id abcXYZ123
has "  ... in the TXT line" "id=abcXYZ123\"\$" "$tmp/err"
check "32-character --id is fine" 0 "${G[@]}" --mode none --max-age 1d --id 12345678901234567890123456789012
while IFS='|' read -r now id; do
	MTA_STS_NOW=$now check "clock $now gives id $id" 0 "${G[@]}" --mode none --max-age 1d --json
	has "  ... id $id" "\"id\":\"$id\"" "$tmp/out"
done <<'EOF'
0|19700101000000
1795953600|20261129120000
1795953659|20261129120059
253402300799|99991231235959
EOF
for bad in abc -5 1e9 253402300800 ''; do
	MTA_STS_NOW=$bad check "MTA_STS_NOW='$bad' is refused" 2 "${G[@]}" --mode none --max-age 1d
	has "  ... naming the variable" "MTA_STS_NOW='$bad' is not a Unix time" "$tmp/err"
done
check "without MTA_STS_NOW the id is a 14-digit time" 0 env -u MTA_STS_NOW "${G[@]}" --mode none --max-age 1d --json
has "  ... today's date" "\"id\":\"$(date -u +%Y%m%d)[0-9]{6}\"" "$tmp/out"

# --- --out-dir ------------------------------------------------------------
out="$tmp/site/www"
check "--out-dir writes the file" 0 "${G[@]}" --mode enforce --mx mail.example.com --max-age 1w --out-dir "$out"
f="$out/.well-known/mta-sts.txt"
if [ -f "$f" ]; then ok "  ... creating .well-known"; else not_ok "  ... creating .well-known"; fi
has "  ... stdout names the path" "^wrote $f\$" "$tmp/out"
has "  ... stdout has the zone-file line" "^_mta-sts\.example\.com\. 3600 IN TXT \"v=STSv1; id=$NOW_ID\"\$" "$tmp/out"
if [ "$(wc -l <"$tmp/out")" -eq 2 ]; then ok "  ... and nothing else on stdout"; else not_ok "  ... and nothing else on stdout"; fi
leftover=$(find "$out" -name '*.tmp.*' | wc -l)
if [ "$leftover" -eq 0 ]; then ok "  ... no temporary files left"; else not_ok "  ... no temporary files left"; fi
perm=$(stat -c %a "$f")
if [ "$perm" = 644 ]; then ok "  ... mode 0644"; else not_ok "  ... mode 0644 (got $perm)"; fi
check "  ... the file passes lint --strict" 0 "$M" lint --strict "$f"
"${G[@]}" --mode enforce --mx mail.example.com --max-age 1w >"$tmp/stdout-policy.txt" 2>/dev/null
if cmp -s "$f" "$tmp/stdout-policy.txt"; then ok "  ... same bytes as printed without --out-dir"; else not_ok "  ... same bytes as printed without --out-dir"; fi
check "--out-dir replaces an existing file" 0 "${G[@]}" --mode testing --mx other.example.com --max-age 2w --out-dir "$out/"
has "  ... with the new policy" "^mode: testing" "$f"
has "  ... trailing slash not doubled" "^wrote $out/\.well-known/mta-sts\.txt\$" "$tmp/out"
touch "$tmp/plainfile"
check "--out-dir that is a file is an I/O error" 2 "${G[@]}" --mode none --max-age 1d --out-dir "$tmp/plainfile"
has "  ... naming the path and the fix" "cannot write $tmp/plainfile/\.well-known/mta-sts\.txt: .*writable directory" "$tmp/err"
check "invalid arguments write nothing" 2 "${G[@]}" --mode enforce --max-age 1w --out-dir "$tmp/never"
if [ ! -e "$tmp/never" ]; then ok "  ... not even the directory"; else not_ok "  ... not even the directory"; fi

# --- --json ---------------------------------------------------------------
json_check() { # json_check DESC FILE PYTHON-ASSERTIONS (o = the object)
	if python3 - "$2" "$3" <<'PY' >"$tmp/py" 2>&1; then ok "$1"; else not_ok "$1"; sed 's/^/# /' "$tmp/py"; fi
import json, sys
text = open(sys.argv[1]).read()
assert text.count("\n") == 1, "one line"
o = json.loads(text)
exec(sys.argv[2])
PY
}
check "--json without --out-dir" 0 "$M" generate --domain bücher.example --mode enforce --mx mail.example.com --max-age 1w --json
json_check "  ... has exactly the documented fields" "$tmp/out" '
assert sorted(o) == sorted(["domain","policy","txt_owner","txt_value","zone_line","path","id"]), sorted(o)
assert o["domain"] == "xn--bcher-kva.example"
assert o["policy"] == "version: STSv1\r\nmode: enforce\r\nmx: mail.example.com\r\nmax_age: 604800\r\n"
assert o["txt_owner"] == "_mta-sts.xn--bcher-kva.example."
assert o["txt_value"] == "v=STSv1; id=20261129120000"
assert o["zone_line"] == "_mta-sts.xn--bcher-kva.example. 3600 IN TXT \"v=STSv1; id=20261129120000\""
assert o["path"] is None and o["id"] == "20261129120000"'
check "--json with --out-dir and --id" 0 "${G[@]}" --mode none --max-age 1d --json --out-dir "$tmp/j" --id X1
json_check "  ... path and id" "$tmp/out" "
assert o['path'] == '$tmp/j/.well-known/mta-sts.txt'
assert o['id'] == 'X1' and o['txt_value'] == 'v=STSv1; id=X1'
assert open(o['path'], newline='').read() == o['policy']"

echo "1..$n"
[ "$fails" -eq 0 ]
