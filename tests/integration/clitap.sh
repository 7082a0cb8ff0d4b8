# clitap.sh: sourced by the CLI test scripts: a temporary directory removed on
# exit, TAP counters, ok/not_ok, and check DESC EXPECTED_RC CMD...
M=${MTA_STS:?MTA_STS must point at the mta-sts binary}
tmp=$(mktemp -d)
trap 'chmod -R u+w "$tmp" 2>/dev/null; rm -rf "$tmp"' EXIT
n=0
fails=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
not_ok() { n=$((n + 1)); fails=$((fails + 1)); echo "not ok $n - $1"; }
# check DESC EXPECTED_RC CMD... ; output in $tmp/out and $tmp/err
check() {
	local desc=$1 want=$2
	shift 2
	"$@" >"$tmp/out" 2>"$tmp/err"
	local rc=$?
	if [ "$rc" -eq "$want" ]; then ok "$desc"; else
		not_ok "$desc (exit $rc, want $want)"
		sed 's/^/# out: /' "$tmp/out"
		sed 's/^/# err: /' "$tmp/err"
	fi
}
