#!/usr/bin/env bash
# mta-sts publish, end to end: id issuing and keeping, ids that only grow,
# refusal paths that leave the state alone, corrupt state, concurrent runs.
# Speaks TAP. Needs $MTA_STS (set by meson).
set -u
. "$(dirname "$0")/clitap.sh"
has() { # has DESC PATTERN FILE
	if grep -qE -- "$2" "$3"; then ok "$1"; else
		not_ok "$1"
		echo "# no /$2/ in $(basename "$3"):"
		sed 's/^/#   /' "$3"
	fi
}
lacks() { # lacks DESC PATTERN FILE
	if ! grep -qE -- "$2" "$3"; then ok "$1"; else
		not_ok "$1"
		grep -E -- "$2" "$3" | sed 's/^/# unexpected: /'
	fi
}
same_file() { # same_file DESC A B
	if cmp -s "$2" "$3"; then ok "$1"; else not_ok "$1"; diff "$2" "$3" | sed 's/^/# /'; fi
}
# jget FILE EXPR: a value of a JSON file, by Python expression on o
jget() { python3 -c 'import json,sys; o=json.load(open(sys.argv[1])); v=eval(sys.argv[2]); print(json.dumps(v) if not isinstance(v, str) else v)' "$1" "$2"; }
# raw_is STATE FILE: does the state record exactly FILE's bytes? (True/False)
raw_is() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["policy"] == open(sys.argv[2], newline="").read())' "$1" "$2"; }
is() { # is DESC GOT WANT
	if [ "$2" = "$3" ]; then ok "$1"; else not_ok "$1"; echo "# got '$2', want '$3'"; fi
}

export MTA_STS_NOW=1795953600   # 2026-11-29T12:00:00Z
T0=20261129120000
D=example.com
S="$tmp/state"
W="$tmp/www"
STATE="$S/$D/state.json"
WEB="$W/.well-known/mta-sts.txt"
P=("$M" publish --domain "$D" --state "$S")

crlf() { printf '%s\r\n' "$@"; }
crlf 'version: STSv1' 'mode: enforce' 'mx: mail.example.com' 'mx: *.mx.example.net' 'max_age: 604800' >"$tmp/p1.txt"

# --- help and usage -------------------------------------------------------
check "--help exits 0" 0 "$M" publish --help
has "--help prints usage to stdout" "^usage: mta-sts publish" "$tmp/out"
has "--help documents the MTA_STS_NOW test hook" "MTA_STS_NOW=SECONDS .*test hook" "$tmp/out"
has "--help documents --strict" "^  --strict +refuse a policy that fails 'mta-sts lint --strict'" "$tmp/out"
has "--help names the TXT TTL" "zone-file line with TTL 3600" "$tmp/out"
has "  ... and why it is short (rule 63)" "^TTL short: senders see a new id only once the old record's TTL has passed" "$tmp/out"
has "--help step 3 covers added hosts and mode none" "do not point MX records at hosts the new policy adds" "$tmp/out"
check "unknown option exits 2" 2 "$M" publish --frob
has "unknown option is named, usage on stderr" "^mta-sts publish: unknown option '--frob'\$" "$tmp/err"
has "  ... usage on stderr" "^usage: mta-sts publish" "$tmp/err"
# table: rc | stderr regex | args
while IFS='|' read -r want re args; do
	[ -z "$want" ] && continue
	eval "set -- $args"
	check "option error [$args] exit $want" "$want" "$M" publish "$@"
	has "  ... explained: $re" "$re" "$tmp/err"
done <<'EOF'
2|^mta-sts publish: unknown option '-x'$|-x
2|^mta-sts publish: option '--domain' needs a value$|--domain
2|^mta-sts publish: option '--strict' takes no value$|--strict=yes
2|^mta-sts publish: option '--st' is ambiguous \(--state, --strict\)|--st x
EOF
while IFS='|' read -r want re args; do
	[ -z "$want" ] && continue
	eval "set -- $args"
	shown=${args//$tmp/TMP}   # stable test names
	check "args [$shown] exit $want" "$want" "$M" publish "$@"
	has "args [$shown] explain: $re" "$re" "$tmp/err"
done <<EOF
2|--domain is required|--policy $tmp/p1.txt --state $S
2|--policy is required|--domain $D --state $S
2|--state is required|--domain $D --policy $tmp/p1.txt
2|--domain 'not a domain': ' ' is not allowed in a domain name|--domain 'not a domain' --policy $tmp/p1.txt --state $S
2|--domain 'localhost' has a single label|--domain localhost --policy $tmp/p1.txt --state $S
2|--policy given twice|--domain $D --policy $tmp/p1.txt --policy $tmp/p1.txt --state $S
2|unexpected argument 'extra'|--domain $D --policy $tmp/p1.txt --state $S extra
2|cannot read the --policy file|--domain $D --policy $tmp/missing.txt --state $S
2|--webroot is empty|--domain $D --policy $tmp/p1.txt --state $S --webroot ''
2|--state is empty|--domain $D --policy $tmp/p1.txt --state ''
EOF
if [ ! -e "$S" ]; then ok "usage errors create no state"; else not_ok "usage errors create no state"; fi
MTA_STS_NOW=soon check "malformed MTA_STS_NOW is a usage error" 2 "${P[@]}" --policy "$tmp/p1.txt"
has "  ... naming the variable" "MTA_STS_NOW='soon' is not a Unix time" "$tmp/err"

# --- first publication ----------------------------------------------------
check "first publish succeeds" 0 "${P[@]}" --policy "$tmp/p1.txt" --webroot "$W"
has "  ... says it is the first, with the id from the clock" "^$D: first publication: id $T0\$" "$tmp/out"
has "  ... prints the TXT record with TTL 3600" "^  _mta-sts\.example\.com\. 3600 IN TXT \"v=STSv1; id=$T0\"\$" "$tmp/out"
has "  ... step 1 done (policy on the webroot)" "^  1\. \[done\] the policy is in $WEB" "$tmp/out"
has "  ... step 2 to do: TXT after the policy (rule 64)" "^  2\. \[to do\] after step 1, not before: .*rule 64" "$tmp/out"
has "  ... step 3: no earlier policy" "^  3\. \[nothing to do\] no earlier policy" "$tmp/out"
same_file "  ... webroot holds the file's bytes" "$tmp/p1.txt" "$WEB"
is "  ... state records the id" "$(jget "$STATE" 'o["id"]')" "$T0"
is "  ... state records the domain" "$(jget "$STATE" 'o["domain"]')" "$D"
is "  ... state records the highest id" "$(jget "$STATE" 'o["highest_issued_id"]')" "$T0"
is "  ... state records the raw policy" "$(raw_is "$STATE" "$tmp/p1.txt")" True
is "  ... state records mode, max_age, mx" "$(jget "$STATE" '[o["mode"], o["max_age"], o["mx"]]')" '["enforce", 604800, ["mail.example.com", "*.mx.example.net"]]'
is "  ... and the time" "$(jget "$STATE" 'o["published_at"]')" "2026-11-29T12:00:00Z"
if [ -e "$S/$D/lock" ]; then ok "  ... lock file beside the state"; else not_ok "  ... lock file beside the state"; fi
left=$(find "$S" "$W" -name '*.tmp.*' | wc -l)
is "  ... no temporary files left" "$left" 0

# --- same meaning in other bytes keeps the id -----------------------------
printf 'version: STSv1\nmode: enforce\nmx: mail.example.com\nmx: *.mx.example.net\nmax_age: 604800\n' >"$tmp/v-lf.txt"
printf 'max_age: 604800\nmx: *.mx.example.net\nmode: enforce\nversion: STSv1\nmx: mail.example.com\n' >"$tmp/v-order.txt"
printf 'version:STSv1  \r\nmode:\t enforce\r\nmx:    mail.example.com \r\nmx: *.mx.example.net\t\r\nmax_age:  604800\r\n' >"$tmp/v-space.txt"
printf 'version: STSv1\nmode: enforce\nmx: MAIL.Example.com\nmx: *.MX.example.net\nmax_age: 604800' >"$tmp/v-case.txt"
printf 'version: STSv1\nmode: enforce\nmx: mail.example.com\nmx: *.mx.example.net\nmx: mail.example.com\nmax_age: 604800\n' >"$tmp/v-dupmx.txt"
printf 'version: STSv1\nmode: enforce\nmode: testing\nmx: mail.example.com\nmx: *.mx.example.net\nmax_age: 604800\n' >"$tmp/v-dupmode.txt"
for v in lf order space case dupmx dupmode; do
	cp "$STATE" "$tmp/before.json"
	for now in 1795953600 1795960000; do
		MTA_STS_NOW=$now check "same meaning ($v) at $now succeeds" 0 "${P[@]}" --policy "$tmp/v-$v.txt" --webroot "$W"
		has "  ... keeps the id and says so" "^$D: unchanged in meaning: keeping id $T0\$" "$tmp/out"
		has "  ... TXT record unchanged" "^  2\. \[nothing to do\] the TXT record keeps id $T0" "$tmp/out"
	done
	is "  ... state id still $T0" "$(jget "$STATE" 'o["id"]')" "$T0"
	is "  ... no id issued" "$(jget "$STATE" '[o["highest_issued_id"], len(o["issued"])]')" "[\"$T0\", 1]"
	same_file "  ... webroot has the new bytes" "$tmp/v-$v.txt" "$WEB"
done
check "same meaning, --json" 0 "${P[@]}" --policy "$tmp/p1.txt" --json
is "  ... changed false, id kept" "$(jget "$tmp/out" '[o["changed"], o["id"], o["previous_id"]]')" "[false, \"$T0\", \"$T0\"]"
check "same bytes again records nothing new" 0 "${P[@]}" --policy "$tmp/p1.txt"
has "  ... says the state is up to date" "^state already up to date in $STATE\$" "$tmp/out"

# --- meaning changes get new, growing ids ---------------------------------
# Each row: description | policy body (printf format) | clock | expected id
last=$T0
while IFS='|' read -r desc body now want; do
	[ -z "$desc" ] && continue
	printf "$body" >"$tmp/change.txt"
	MTA_STS_NOW=$now check "change: $desc" 0 "${P[@]}" --policy "$tmp/change.txt" --webroot "$W" --json
	id=$(jget "$tmp/out" 'o["id"]')
	is "  ... id $want" "$id" "$want"
	is "  ... reported as changed, previous id $last" "$(jget "$tmp/out" '[o["changed"], o["previous_id"]]')" "[true, \"$last\"]"
	if [[ "$id" > "$last" ]] && [ "$id" -gt "$last" ]; then ok "  ... greater than $last as string and number"; else not_ok "  ... greater than $last as string and number"; fi
	is "  ... state follows" "$(jget "$STATE" '[o["id"], o["highest_issued_id"]]')" "[\"$id\", \"$id\"]"
	same_file "  ... webroot follows" "$tmp/change.txt" "$WEB"
	last=$id
done <<'EOF'
max_age, same second|version: STSv1\nmode: enforce\nmx: mail.example.com\nmx: *.mx.example.net\nmax_age: 1209600\n|1795953600|20261129120001
mode, same second|version: STSv1\nmode: testing\nmx: mail.example.com\nmx: *.mx.example.net\nmax_age: 1209600\n|1795953600|20261129120002
mx removed, clock one hour earlier|version: STSv1\nmode: testing\nmx: mail.example.com\nmax_age: 1209600\n|1795950000|20261129120003
extension added, clock years earlier|version: STSv1\nmode: testing\nmx: mail.example.com\nmax_age: 1209600\nfoo: bar\n|1000000000|20261129120004
extension value, clock at 0|version: STSv1\nmode: testing\nmx: mail.example.com\nmax_age: 1209600\nfoo: baz\n|0|20261129120005
mx added, clock later|version: STSv1\nmode: testing\nmx: mail.example.com\nmx: new.example.com\nmax_age: 1209600\nfoo: baz\n|1795960000|20261129134640
back to the first policy, same second|version: STSv1\nmode: enforce\nmx: mail.example.com\nmx: *.mx.example.net\nmax_age: 604800\n|1795960000|20261129134641
EOF
is "every issued id is in the history, in order" "$(jget "$STATE" '[e["id"] for e in o["issued"]] == sorted(set(e["id"] for e in o["issued"])) and len(o["issued"])')" 8

# --- step 3 names the dropped MX hosts and the old max_age ----------------
crlf 'version: STSv1' 'mode: enforce' 'mx: mail.example.com' 'max_age: 604800' >"$tmp/drop.txt"
check "dropping an MX host" 0 "${P[@]}" --policy "$tmp/drop.txt"
has "  ... step 1 to do without --webroot" "^  1\. \[to do\] upload $tmp/drop\.txt so that https://mta-sts\.example\.com/\.well-known/mta-sts\.txt serves it" "$tmp/out"
has "  ... step 3: keep the dropped host for the old max_age" "^  3\. \[to do\] after step 2, keep the MX host the old policy lists \(\*\.mx\.example\.net\) working for the old max_age, 604800 seconds \(1w\).*rule 63" "$tmp/out"
same_file "  ... without --webroot the webroot is not touched" "$tmp/change.txt" "$WEB"

# --- step 3: added MX hosts wait for the previous max_age -----------------
# A domain of its own, one hour per publication: ids and dates are known.
iso() { date -u -d "@$1" +%Y-%m-%dT%H:%M:%SZ; }
t3() { echo $((1795953600 + 3600 * $1)); }   # 12:00Z plus N hours
P3=("$M" publish --domain retire.example --state "$tmp/s3")
crlf 'version: STSv1' 'mode: enforce' 'mx: mail.retire.example' 'mx: *.mx.retire.example' 'max_age: 31557600' >"$tmp/s3-1.txt"
MTA_STS_NOW=$(t3 0) check "step 3: first policy, max_age 1y" 0 "${P3[@]}" --policy "$tmp/s3-1.txt"
crlf 'version: STSv1' 'mode: enforce' 'mx: mail.retire.example' 'mx: *.mx.retire.example' 'mx: new.other.example' 'max_age: 604800' >"$tmp/s3-2.txt"
MTA_STS_NOW=$(t3 1) check "step 3: adding an MX host" 0 "${P3[@]}" --policy "$tmp/s3-2.txt"
has "  ... to do: senders with the previous policy reject it until now + the previous max_age" "^  3\. \[to do\] senders that cached the previous policy \(id 20261129120000\) reject the new MX host until $(iso $(($(t3 1) + 31557600))) \(the previous max_age, 31557600 seconds \(52w1d6h\), counted from now" "$tmp/out"
has "  ... do not point MX records at it before that date" "do not point MX records at new\.other\.example before that date \(rule 63\)\$" "$tmp/out"
lacks "  ... and nothing about keeping hosts" "keep the MX host" "$tmp/out"
crlf 'version: STSv1' 'mode: enforce' 'mx: mail.retire.example' 'mx: *.mx.retire.example' 'mx: new.other.example' 'mx: a.mx.retire.example' 'max_age: 604800' >"$tmp/s3-3.txt"
MTA_STS_NOW=$(t3 2) check "step 3: a host the previous wildcard matched" 0 "${P3[@]}" --policy "$tmp/s3-3.txt" --json
is "  ... is not a new host: nothing to do" "$(jget "$tmp/out" '[o["changed"], o["steps"][2]["status"], o["steps"][2]["action"]]')" '[true, "none", "no MX host was added or dropped: no MX change to wait for"]'
crlf 'version: STSv1' 'mode: enforce' 'mx: mail.retire.example' 'mx: *.mx.retire.example' 'mx: *.retire.example' 'mx: a.mx.retire.example' 'max_age: 604800' >"$tmp/s3-4.txt"
MTA_STS_NOW=$(t3 3) check "step 3: a wildcard added, a host dropped, --json" 0 "${P3[@]}" --policy "$tmp/s3-4.txt" --json
if python3 - "$tmp/out" "$(iso $(($(t3 3) + 604800)))" <<'PY' >"$tmp/py" 2>&1; then ok "  ... one todo step names both, the new host first"; else not_ok "  ... one todo step names both, the new host first"; sed 's/^/# /' "$tmp/py"; fi
import json, sys
s = json.load(open(sys.argv[1]))["steps"][2]
assert s["status"] == "todo", s
a = s["action"]
new = ("senders that cached the previous policy (id 20261129140000) reject the new MX host until %s"
       " (the previous max_age, 604800 seconds (1w), counted from now: add any delay before step 2 and the TXT"
       " record's TTL): do not point MX records at *.retire.example before that date (rule 63)" % sys.argv[2])
old = ("after step 2, keep the MX host the old policy lists (new.other.example) working for the old"
       " max_age, 604800 seconds (1w), before removing it: senders may use the old policy that long (rule 63)")
assert a == new + "; " + old, a
PY
crlf 'version: STSv1' 'mode: testing' 'mx: mail.retire.example' 'mx: *.mx.retire.example' 'mx: *.retire.example' 'max_age: 604800' >"$tmp/s3-5.txt"
MTA_STS_NOW=$(t3 4) check "step 3: to testing, dropping a host a wildcard still covers" 0 "${P3[@]}" --policy "$tmp/s3-5.txt"
has "  ... names it as dropped all the same" "^  3\. \[to do\] after step 2, keep the MX host the old policy lists \(a\.mx\.retire\.example\)" "$tmp/out"
crlf 'version: STSv1' 'mode: testing' 'mx: mail.retire.example' 'mx: *.mx.retire.example' 'mx: *.retire.example' 'mx: x.other.example' 'max_age: 604800' >"$tmp/s3-6.txt"
MTA_STS_NOW=$(t3 5) check "step 3: adding a host after a testing policy" 0 "${P3[@]}" --policy "$tmp/s3-6.txt"
has "  ... nothing to do: senders only report it" "^  3\. \[nothing to do\] the previous policy \(id 20261129160000\) was mode testing: senders that cached it deliver to the new MX host \(x\.other\.example\) but report it as a failure until $(iso $(($(t3 5) + 604800)))" "$tmp/out"

# --- step 3: retiring with mode none (rule 67) ----------------------------
crlf 'version: STSv1' 'mode: none' 'max_age: 86400' >"$tmp/none.txt"
MTA_STS_NOW=$(t3 6) check "step 3: mode none after an earlier 1y policy" 0 "${P3[@]}" --policy "$tmp/none.txt"
has "  ... counts the longest max_age published, not only the previous one" "^  3\. \[to do\] senders may keep the previous policy \(id 20261129170000, mode testing\) or an earlier one until $(iso $(($(t3 6) + 31557600))) \(the longest max_age published, 31557600 seconds \(52w1d6h\) for id 20261129120000, counted from now" "$tmp/out"
lacks "  ... says nothing about keeping or adding MX hosts" "keep the MX host|do not point MX" "$tmp/out"
crlf 'version: STSv1' 'mode: enforce' 'mx: mail.retire.example' 'max_age: 604800' >"$tmp/s3-8.txt"
MTA_STS_NOW=$(t3 7) check "step 3: back from mode none with a host" 0 "${P3[@]}" --policy "$tmp/s3-8.txt"
has "  ... no sender rejects it" "^  3\. \[nothing to do\] the previous policy \(id 20261129180000\) was mode none: no sender rejects the new MX host \(mail\.retire\.example\)\$" "$tmp/out"
P4=("$M" publish --domain gone.example --state "$tmp/s3")
crlf 'version: STSv1' 'mode: enforce' 'mx: mail.gone.example' 'max_age: 1209600' >"$tmp/g1.txt"
MTA_STS_NOW=$(t3 0) check "step 3: an enforce policy ..." 0 "${P4[@]}" --policy "$tmp/g1.txt"
MTA_STS_NOW=$(t3 1) check "  ... retired with mode none" 0 "${P4[@]}" --policy "$tmp/none.txt"
has "  ... senders keep the previous policy until now + its max_age" "^  3\. \[to do\] senders may keep the previous policy \(id 20261129120000, mode enforce\) until $(iso $(($(t3 1) + 1209600))) \(its max_age, 1209600 seconds \(2w\), counted from now: add any delay before step 2 and the TXT record's TTL\); " "$tmp/out"
has "  ... then delete the TXT record and the file, serving none until then" "after that date, and after the none policy's own max_age, 86400 seconds \(1d\), has passed for everyone who fetched it, delete the TXT record, then the policy file; keep serving mode: none until then \(rule 67\)\$" "$tmp/out"
lacks "  ... not the dropped-host text" "keep the MX host" "$tmp/out"
MTA_STS_NOW=$(t3 1) check "  ... again, --json" 0 "${P4[@]}" --policy "$tmp/none.txt" --json
is "  ... unchanged, so step 3 has nothing to do" "$(jget "$tmp/out" '[o["changed"], o["steps"][2]["status"]]')" '[false, "none"]'
crlf 'version: STSv1' 'mode: none' 'max_age: 3600' >"$tmp/none2.txt"
MTA_STS_NOW=$(t3 2) check "  ... a shorter none policy, --json" 0 "${P4[@]}" --policy "$tmp/none2.txt" --json
is "  ... step 3 to do, the same text in JSON (rule 67)" "$(jget "$tmp/out" '[o["steps"][2]["status"], o["steps"][2]["action"].startswith("senders may keep the previous policy (id 20261129130000, mode none) or an earlier one until '"$(iso $(($(t3 2) + 1209600)))"' (the longest max_age published, 1209600 seconds (2w) for id 20261129120000"), o["steps"][2]["action"].endswith("after the none policy'"'"'s own max_age, 3600 seconds (1h), has passed for everyone who fetched it, delete the TXT record, then the policy file; keep serving mode: none until then (rule 67)")]')" '["todo", true, true]'

# --- generate and publish print the same zone-file line -------------------
check "generate for the same domain and id" 0 "$M" generate --domain gone.example --mode none --max-age 1h --id 20261129140000 --json
gen_zone=$(jget "$tmp/out" 'o["zone_line"]')
MTA_STS_NOW=$(t3 2) check "publish for it, --json" 0 "${P4[@]}" --policy "$tmp/none2.txt" --json
is "  ... zone_line equal to generate's" "$(jget "$tmp/out" 'o["zone_line"]')" "$gen_zone"
is "  ... with TTL 3600" "$gen_zone" '_mta-sts.gone.example. 3600 IN TXT "v=STSv1; id=20261129140000"'

# --- --json shape ---------------------------------------------------------
crlf 'version: STSv1' 'mode: testing' 'mx: mail.example.com' 'max_age: 86400' >"$tmp/j.txt"
check "--json on a change" 0 "${P[@]}" --policy "$tmp/j.txt" --webroot "$W" --json
if python3 - "$tmp/out" "$STATE" "$WEB" <<'PY' >"$tmp/py" 2>&1; then ok "  ... fields, values and steps"; else not_ok "  ... fields, values and steps"; sed 's/^/# /' "$tmp/py"; fi
import json, sys
text = open(sys.argv[1]).read()
assert text.count("\n") == 1, "one line"
o = json.loads(text)
assert sorted(o) == sorted(["domain", "changed", "id", "previous_id", "txt_value", "zone_line",
                            "policy_path", "state_path", "steps"]), sorted(o)
st = json.load(open(sys.argv[2]))
assert o["domain"] == "example.com" and o["changed"] is True
assert o["id"] == st["id"] and o["previous_id"] < o["id"]
assert o["txt_value"] == "v=STSv1; id=" + o["id"]
assert o["zone_line"] == '_mta-sts.example.com. 3600 IN TXT "v=STSv1; id=%s"' % o["id"]
assert o["policy_path"] == sys.argv[3] and o["state_path"] == sys.argv[2]
assert [s["step"] for s in o["steps"]] == [1, 2, 3]
assert [s["status"] for s in o["steps"]] == ["done", "todo", "none"], o["steps"]
assert all(isinstance(s["action"], str) and s["action"] for s in o["steps"])
PY

# --- invalid policy: refused, nothing changes -----------------------------
cp "$STATE" "$tmp/before.json"
cp "$WEB" "$tmp/web-before.txt"
while IFS='|' read -r desc body re; do
	[ -z "$desc" ] && continue
	printf "$body" >"$tmp/bad.txt"
	check "invalid policy ($desc) exits 1" 1 "${P[@]}" --policy "$tmp/bad.txt" --webroot "$W"
	has "  ... lint diagnostics name the problem" "^$tmp/bad\.txt:[0-9]+:[0-9]+: error: .*$re" "$tmp/err"
	has "  ... and say nothing changed" "the policy is invalid .*nothing was published or recorded" "$tmp/err"
	same_file "  ... state unchanged" "$tmp/before.json" "$STATE"
	same_file "  ... webroot unchanged" "$tmp/web-before.txt" "$WEB"
done <<'EOF'
no mx in enforce|version: STSv1\nmode: enforce\nmax_age: 604800\n|needs at least one 'mx:'
bad mode|version: STSv1\nmode: enforced\nmx: mail.example.com\nmax_age: 604800\n|mode 'enforced'
no max_age|version: STSv1\nmode: testing\nmx: mail.example.com\n|no 'max_age:' line
U-label mx|version: STSv1\nmode: testing\nmx: møx.example\nmax_age: 86400\n|xn--mx-lka.example
HTML|<html><body>hi</body></html>\n|looks like HTML
EOF
: >"$tmp/empty.txt"
check "empty policy exits 1" 1 "${P[@]}" --policy "$tmp/empty.txt" --webroot "$W"
same_file "  ... state unchanged" "$tmp/before.json" "$STATE"
head -c 70000 /dev/zero | tr '\0' 'a' >"$tmp/huge.txt"
check "oversized policy (70000 bytes) exits 1, as invalid" 1 "${P[@]}" --policy "$tmp/huge.txt" --webroot "$W"
has "  ... with the parser's diagnostic (rule 35)" "^$tmp/huge\.txt:1:1: error: the policy is larger than 65536 bytes.*\[rule 35\] \(policy\.too_large\)\$" "$tmp/err"
has "  ... and says nothing changed" "huge\.txt: the policy is invalid \(1 error\): nothing was published or recorded" "$tmp/err"
lacks "  ... not as an I/O error" "cannot read|^mta-sts: " "$tmp/err"
same_file "  ... state unchanged" "$tmp/before.json" "$STATE"
same_file "  ... webroot unchanged" "$tmp/web-before.txt" "$WEB"
check "oversized policy on standard input exits 1" 1 sh -c 'f=$1; shift; "$@" < "$f"' sh "$tmp/huge.txt" "${P[@]}" --policy -
has "  ... shown as <stdin>" "^<stdin>:1:1: error: .*\(policy\.too_large\)" "$tmp/err"
head -c 65536 "$tmp/huge.txt" >"$tmp/edge.txt"
check "a 65536-byte file is within the limit (invalid for its content)" 1 "${P[@]}" --policy "$tmp/edge.txt"
lacks "  ... not too large" "too_large" "$tmp/err"
printf 'version: STSv1\nmode: testing\nmx: mail.example.com.\nmax_age: 86400\n' >"$tmp/tolerated.txt"
check "--strict refuses a policy with tolerated deviations" 1 "${P[@]}" --policy "$tmp/tolerated.txt" --webroot "$W" --strict
has "  ... the deviation is an error" "^$tmp/tolerated\.txt:3:[0-9]+: error: " "$tmp/err"
has "  ... invalid under --strict, nothing changed, lint --strict named" "the policy is invalid under --strict \(1 error\): nothing was published or recorded; fix it and check it with 'mta-sts lint --strict " "$tmp/err"
same_file "  ... state unchanged" "$tmp/before.json" "$STATE"
same_file "  ... webroot unchanged" "$tmp/web-before.txt" "$WEB"
check "--strict --json refuses it too" 1 "${P[@]}" --policy "$tmp/tolerated.txt" --strict --json
is "  ... with nothing on stdout" "$(wc -c <"$tmp/out" | tr -d ' ')" 0
check "without --strict the same file is published" 0 "$M" publish --domain "$D" --state "$tmp/S-tol" --policy "$tmp/tolerated.txt"
has "  ... with the warning" "^$tmp/tolerated\.txt:3:[0-9]+: warning: " "$tmp/err"
has "  ... and the --strict hint" "^mta-sts publish: $tmp/tolerated\.txt: 1 of these warnings is an error under --strict; the policy is published anyway: run with --strict to refuse deviations senders only tolerate\$" "$tmp/err"
printf 'version: STSv1\nmode: testing\nmx: mail.example.com\nmax_age: 86400\nfoo: bar\n' >"$tmp/ext.txt"
check "--strict accepts an unknown field (always a warning, rule 22)" 0 "$M" publish --domain "$D" --state "$tmp/S-ext" --policy "$tmp/ext.txt" --strict
has "  ... shown as a warning" "ext\.txt:5:1: warning: unknown field 'foo'" "$tmp/err"
crlf 'version: STSv1' 'mode: testing' 'mx: mail.example.com' 'max_age: 86400' 'foo: baz' >"$tmp/ext2.txt"
check "  ... without --strict, a changed unknown field" 0 "$M" publish --domain "$D" --state "$tmp/S-ext" --policy "$tmp/ext2.txt"
lacks "  ... gets no --strict hint: --strict would not refuse it" "run with --strict" "$tmp/err"
printf 'version: STSv1\nmode: testing\nmx: mail.example.com\nmax_age: 99999999\n' >"$tmp/clamped.txt"
check "a policy with only warnings is published" 0 "${P[@]}" --policy "$tmp/clamped.txt"
has "  ... and the warnings are shown" "clamped\.txt:4:.*warning: " "$tmp/err"
has "  ... with the --strict hint" "clamped\.txt: 1 of these warnings is an error under --strict; the policy is published anyway" "$tmp/err"
crlf 'version: STSv1' 'mode: enforce' 'mx: mail.example.com' 'max_age: 172800' >"$tmp/short.txt"
check "enforce with max_age under a week is published" 0 "${P[@]}" --policy "$tmp/short.txt"
has "  ... with a warning (rule 17)" "short\.txt: warning: max_age 172800 \(2d\) is under one week for mode enforce" "$tmp/err"
cp "$STATE" "$tmp/before.json"

# --- webroot that cannot be written: error, state untouched ---------------
mkdir -p "$tmp/w-dir/.well-known/mta-sts.txt"        # target is a directory
mkdir -p "$tmp/w-file"; : >"$tmp/w-file/.well-known"  # .well-known is a file
: >"$tmp/w-plain"                                      # webroot is a file
roots="$tmp/w-dir $tmp/w-file $tmp/w-plain"
if [ "$(id -u)" -ne 0 ]; then
	mkdir -p "$tmp/w-ro/.well-known"; chmod 555 "$tmp/w-ro/.well-known"
	roots="$roots $tmp/w-ro"
else
	echo "# running as root: read-only directory case not testable, using the others"
fi
crlf 'version: STSv1' 'mode: enforce' 'mx: mail.example.com' 'mx: other.example.com' 'max_age: 604800' >"$tmp/p3.txt"
for r in $roots; do
	check "unwritable webroot $(basename "$r") exits 2" 2 "${P[@]}" --policy "$tmp/p3.txt" --webroot "$r"
	has "  ... names the file and the fix" "cannot write $r/\.well-known/mta-sts\.txt: .*writable directory; nothing was recorded" "$tmp/err"
	same_file "  ... state unchanged" "$tmp/before.json" "$STATE"
done
check "unwritable webroot on a first publish exits 2" 2 "$M" publish --domain example.org --state "$S" --policy "$tmp/p3.txt" --webroot "$tmp/w-plain"
has "  ... says no id was issued" "nothing was recorded, no id was issued" "$tmp/err"
if [ ! -e "$S/example.org/state.json" ]; then ok "  ... and no state exists"; else not_ok "  ... and no state exists"; fi
id_before=$(jget "$STATE" 'o["highest_issued_id"]')
check "after the failures the next publish works" 0 "${P[@]}" --policy "$tmp/p3.txt" --webroot "$W" --json
is "  ... with the next id" "$(jget "$tmp/out" 'o["id"]')" "$(python3 -c 'import sys,datetime as d; t=d.datetime.strptime(sys.argv[1],"%Y%m%d%H%M%S")+d.timedelta(seconds=1); print(t.strftime("%Y%m%d%H%M%S"))' "$id_before")"
cp "$STATE" "$tmp/good-state.json"

# --- corrupt state: clear error, file left alone --------------------------
while IFS='|' read -r desc content re; do
	[ -z "$desc" ] && continue
	printf "$content" >"$STATE"
	cp "$STATE" "$tmp/corrupt.json"
	check "corrupt state ($desc) exits 2" 2 "${P[@]}" --policy "$tmp/p1.txt" --webroot "$W"
	has "  ... names the file: $re" "^mta-sts publish: $STATE: corrupt state: .*$re" "$tmp/err"
	has "  ... says what to do" "Restore the file from a backup" "$tmp/err"
	same_file "  ... file not overwritten" "$tmp/corrupt.json" "$STATE"
done <<'EOF'
empty file||not valid JSON
garbage|this is not json\n|not valid JSON
truncated|{"format": 1, "domain": "example.com", "id": "2026|not valid JSON
array|[1, 2]\n|not a JSON object
other format|{"format": 2}\n|format 2 is not 1
other domain|{"format": 1, "domain": "example.org"}\n|records domain 'example.org'
bad id|{"format": 1, "domain": "example.com", "id": "20261399120000"}\n|member 'id
missing canonical|{"format": 1, "domain": "example.com", "id": "20261129120000", "highest_issued_id": "20261129120000"}\n|member 'canonical'
highest below id|{"format": 1, "domain": "example.com", "id": "20261129120001", "highest_issued_id": "20261129120000", "canonical": "", "mode": "none", "max_age": 1, "mx": [], "published_at": "x", "issued": []}\n|highest_issued_id .* is lower than id
duplicate key|{"format": 1, "format": 1}\n|duplicate
EOF
same_file "web root untouched by the corrupt-state runs" "$tmp/p3.txt" "$WEB"
rm -f "$STATE"; mkdir "$STATE"
check "state.json that is a directory exits 2" 2 "${P[@]}" --policy "$tmp/p1.txt"
has "  ... named" "$STATE: corrupt state: not a regular file" "$tmp/err"
rmdir "$STATE"; cp "$tmp/good-state.json" "$STATE"
: >"$tmp/notdir"
check "--state that is a file exits 2" 2 "$M" publish --domain "$D" --policy "$tmp/p1.txt" --state "$tmp/notdir"
has "  ... names the directory" "cannot create the state directory $tmp/notdir/example\.com" "$tmp/err"

# --- domains: U-labels, case, separate state per domain -------------------
check "U-label domain" 0 "$M" publish --domain 'BÜCHER.example' --policy "$tmp/p1.txt" --state "$S"
has "  ... TXT owner as A-label" "_mta-sts\.xn--bcher-kva\.example\. 3600 IN TXT \"v=STSv1; id=$T0\"" "$tmp/out"
if [ -f "$S/xn--bcher-kva.example/state.json" ]; then ok "  ... state under the A-label name"; else not_ok "  ... state under the A-label name"; fi
check "the same domain in A-labels and upper case" 0 "$M" publish --domain 'XN--BCHER-KVA.EXAMPLE.' --policy "$tmp/v-lf.txt" --state "$S"
has "  ... shares its state" "unchanged in meaning: keeping id $T0" "$tmp/out"
check "standard input as --policy" 0 sh -c "\"$M\" publish --domain example.net --state \"$S\" --policy - < \"$tmp/p1.txt\""
has "  ... first publication for example.net" "^example\.net: first publication: id $T0" "$tmp/out"

# --- concurrent publishes serialise ---------------------------------------
K=8
base=$(jget "$STATE" 'o["highest_issued_id"]')
count=$(jget "$STATE" 'len(o["issued"])')
for i in $(seq 1 $K); do
	crlf 'version: STSv1' 'mode: testing' 'mx: mail.example.com' "max_age: $((86400 + i))" >"$tmp/c$i.txt"
done
pids=()
for i in $(seq 1 $K); do
	"${P[@]}" --policy "$tmp/c$i.txt" --webroot "$W" --json >"$tmp/c$i.out" 2>"$tmp/c$i.err" &
	pids+=($!)
done
failed=0
for i in $(seq 1 $K); do wait "${pids[$((i - 1))]}" || failed=$((failed + 1)); done
is "$K concurrent publishes all succeed" "$failed" 0
ids=$(for i in $(seq 1 $K); do jget "$tmp/c$i.out" 'o["id"]'; done | sort)
is "  ... with $K distinct ids" "$(echo "$ids" | sort -u | wc -l)" "$K"
lowest=$(echo "$ids" | head -1)
if [[ "$lowest" > "$base" ]]; then ok "  ... all above the earlier highest"; else not_ok "  ... all above the earlier highest ($lowest <= $base)"; fi
is "  ... state is valid JSON with the highest id" "$(jget "$STATE" 'o["highest_issued_id"]')" "$(echo "$ids" | tail -1)"
is "  ... and every id in its history" "$(jget "$STATE" 'len(o["issued"])')" "$((count + K))"
is "  ... webroot holds the policy the state names" "$(raw_is "$STATE" "$WEB")" True
left=$(find "$S" "$W" -name '*.tmp.*' | wc -l)
is "  ... no temporary files left" "$left" 0

echo "1..$n"
[ "$fails" -eq 0 ]
