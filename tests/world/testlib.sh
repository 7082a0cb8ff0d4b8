# shellcheck shell=bash
# TAP helpers and world start/stop for the tests that use the local test
# world (tests/world/selftest, tests/integration/test_query.sh, test_check.sh). Bash.
#
#   . tests/world/testlib.sh
#   world_start [--scale N]   # mktemp dir, lock, up, trap down; sets WDIR
#   ok DESC / not_ok DESC / is DESC GOT WANT / finish
#
# Only one world can run on a machine (fixed addresses): world_start takes
# an flock on /tmp/mtasts-world.lock and keeps it until the script exits,
# so concurrent runs (other build dirs, other worktrees) wait their turn.
# MTASTS_KEEP_WORLD=1 leaves the world up and prints its directory.

WORLD=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/world/world.sh
. "$WORLD/world.sh"

n=0
fails=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
not_ok() { n=$((n + 1)); fails=$((fails + 1)); echo "not ok $n - $1"; }
diag() { sed 's/^/# /' "$@" | head -n 40; }
is() { # is DESC GOT WANT
	if [ "$2" = "$3" ]; then ok "$1"; else not_ok "$1"; echo "#   got: '$2'"; echo "#  want: '$3'"; fi
}
like() { # like DESC GOT ERE
	if [[ $2 =~ $3 ]]; then ok "$1"; else not_ok "$1"; echo "#   got: '$2'"; echo "#  want: /$3/"; fi
}
finish() { echo "1..$n"; [ "$fails" -eq 0 ]; }

world_stop() {
	if [ -n "${MTASTS_KEEP_WORLD:-}" ]; then
		echo "# world kept in $WDIR (tests/world/down $WDIR)"
		return 0
	fi
	[ -n "${WDIR:-}" ] && "$WORLD/down" "$WDIR" >/dev/null 2>&1
	[ -n "${TMPROOT:-}" ] && rm -rf "$TMPROOT"
	return 0
}

world_start() { # world_start [--scale N]: or "Bail out!"
	TMPROOT=$(mktemp -d "${TMPDIR:-/tmp}/mtasts-world.XXXXXX")
	WDIR=$TMPROOT/world
	tmp=$TMPROOT/t
	mkdir -p "$tmp"
	trap 'world_stop' EXIT
	trap 'exit 130' INT TERM HUP
	exec {WORLD_LOCK_FD}>/tmp/mtasts-world.lock
	if ! flock -w 240 "$WORLD_LOCK_FD"; then
		echo "Bail out! another test world held /tmp/mtasts-world.lock for 240 s"
		exit 1
	fi
	# The servers must not inherit the lock.
	if ! WORLD_QUIET=1 "$WORLD/up" "$WDIR" "$@" {WORLD_LOCK_FD}>&- >"$tmp/up.out" 2>&1; then
		diag "$tmp/up.out"
		echo "Bail out! tests/world/up failed"
		exit 1
	fi
	# shellcheck disable=SC1091
	. "$WDIR/env"
}
