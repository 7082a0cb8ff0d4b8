#!/usr/bin/env bash
# mta-sts cache list/show/purge on a SQLite policy cache built here with
# python3's sqlite3 module in the schema of lib/sts_cache_sqlite.c. Speaks TAP.
# Needs $MTA_STS (set by meson).
set -u
M=${MTA_STS:?MTA_STS must point at the mta-sts binary}
tmp=$(mktemp -d)
SRVDIR=${MTASTS_SOURCE_ROOT:-$(dirname "$0")/../..}/tests/servers
cleanup() {
	[ -d "$tmp/redis" ] && "$SRVDIR/redis" stop "$tmp/redis" >/dev/null 2>&1
	[ -d "$tmp/pg" ] && "$SRVDIR/postgres" stop "$tmp/pg" >/dev/null 2>&1
	rm -rf "$tmp"
}
trap cleanup EXIT
n=0
fails=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
not_ok() { n=$((n + 1)); fails=$((fails + 1)); echo "not ok $n - $1"; }
check() { # check DESC EXPECTED_RC CMD... ; output in $tmp/out, $tmp/err
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
lines() { # lines DESC N FILE
	local got
	got=$(wc -l <"$3")
	if [ "$got" -eq "$2" ]; then ok "$1"; else not_ok "$1 ($got lines, want $2)"; sed 's/^/# /' "$3"; fi
}

if ! command -v python3 >/dev/null || ! python3 -c 'import sqlite3' 2>/dev/null; then
	echo "Bail out! python3 with its sqlite3 module is needed to build a test cache (apt-get install python3)"
	exit 1
fi

db=$tmp/cache.db
python3 - "$db" <<'PY'
import sqlite3, sys, time
d = sqlite3.connect(sys.argv[1])
d.executescript("CREATE TABLE policies (domain TEXT PRIMARY KEY, id TEXT NOT NULL,"
                " fetched_at INTEGER NOT NULL, max_age INTEGER NOT NULL,"
                " mode TEXT NOT NULL, policy BLOB NOT NULL); PRAGMA user_version = 1;")
now = int(time.time())
rows = [
    ("example.com", "20261129", now - 3600, 604800, "enforce",
     b"version: STSv1\nmode: enforce\nmx: mail.example.com\nmax_age: 604800\n"),
    ("old.example", "abc1", 1000000000, 86400, "testing",
     b"version: STSv1\nmode: testing\nmx: *.old.example\nmax_age: 86400\n"),
    ("zz.example", "z9", now, 86400, "none",
     b"version: STSv1\nmode: none\nmax_age: 86400\n"),
]
d.executemany("INSERT INTO policies VALUES (?, ?, ?, ?, ?, ?)", rows)
d.commit()
d.close()
PY

check "list exits 0" 0 "$M" cache list --cache "$db"
lines "list prints one line per domain" 3 "$tmp/out"
has "list line: domain mode id fetched expires expired" \
	'^example\.com enforce 20261129 [0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z [0-9-]{10}T[0-9:]{8}Z no$' "$tmp/out"
has "list marks an expired entry" \
	'^old\.example testing abc1 2001-09-09T01:46:40Z 2001-09-10T01:46:40Z yes$' "$tmp/out"
check "list --json exits 0" 0 "$M" cache list --json --cache "$db"
lines "list --json is JSON Lines" 3 "$tmp/out"
if python3 -c '
import json, sys
objs = [json.loads(l) for l in open(sys.argv[1])]
o = {x["domain"]: x for x in objs}
e, x = o["example.com"], o["old.example"]
assert e["mode"] == "enforce" and e["id"] == "20261129" and e["max_age"] == 604800
assert e["expired"] is False and x["expired"] is True
assert x["fetched_at"] == "2001-09-09T01:46:40Z" and x["expires_at"] == "2001-09-10T01:46:40Z"
assert "policy" not in e
' "$tmp/out"; then ok "list --json fields"; else not_ok "list --json fields"; sed 's/^/# /' "$tmp/out"; fi

check "show exits 0" 0 "$M" cache show example.com --cache "$db"
has "show gives the mode" '^mode: +enforce$' "$tmp/out"
has "show gives the expiry" '^expires at: +[0-9-]{10}T[0-9:]{8}Z$' "$tmp/out"
has "show gives the raw policy" '^mx: mail\.example\.com$' "$tmp/out"
check "show normalises case and trailing dot" 0 "$M" cache show EXAMPLE.Com. --cache "$db"
check "show --json exits 0" 0 "$M" cache --json show old.example --cache "$db"
if python3 -c '
import json, sys
o = json.load(open(sys.argv[1]))
assert o["domain"] == "old.example" and o["expired"] is True
assert o["policy"] == "version: STSv1\nmode: testing\nmx: *.old.example\nmax_age: 86400\n"
' "$tmp/out"; then ok "show --json has the entry and the policy"; else not_ok "show --json has the entry and the policy"; sed 's/^/# /' "$tmp/out"; fi
check "show of an absent domain exits 1" 1 "$M" cache show nope.example --cache "$db"
has "absent domain is named" 'no entry for nope\.example' "$tmp/err"

check "purge exits 0" 0 "$M" cache purge old.example --cache "$db"
check "purged entry is gone" 1 "$M" cache show old.example --cache "$db"
check "purge of an absent domain exits 1" 1 "$M" cache purge old.example --cache "$db"
check "list after purge" 0 "$M" cache list --cache "$db"
lines "list after purge has two lines" 2 "$tmp/out"
check "purge --all --json exits 0" 0 "$M" cache purge --all --json --cache "$db"
has "purge --all --json counts" '"count":2' "$tmp/out"
check "list of an empty cache exits 0" 0 "$M" cache list --cache "$db"
lines "empty cache lists nothing" 0 "$tmp/out"

echo 'this is not a database, and it is longer than a header' >"$tmp/junk.db"
check "a file that is not SQLite exits 2" 2 "$M" cache list --cache "$tmp/junk.db"
has "the message names the file" "junk\.db: not an SQLite database" "$tmp/err"
if [ -f "$tmp/junk.db" ] && ! ls "$tmp"/junk.db.corrupt-* >/dev/null 2>&1; then
	ok "the file is left where it is"; else not_ok "the file is left where it is"; fi
check "a missing cache exits 2" 2 "$M" cache list --cache "$tmp/missing.db"
has "the message names the missing file" "missing\.db: No such file" "$tmp/err"
[ ! -e "$tmp/missing.db" ] && ok "a missing cache is not created" || not_ok "a missing cache is not created"
check "a directory exits 2" 2 "$M" cache show example.com --cache "$tmp"

check "no action exits 2" 2 "$M" cache
check "unknown action exits 2" 2 "$M" cache frob
check "show without DOMAIN exits 2" 2 "$M" cache show --cache "$db"
check "purge DOMAIN --all exits 2" 2 "$M" cache purge example.com --all --cache "$db"
check "unknown option exits 2" 2 "$M" cache list --bogus
check "--help exits 0" 0 "$M" cache --help
has "--help names the daemon's cache" "/var/lib/mta-stsd/cache\.db" "$tmp/out"
check "default cache path under XDG_CACHE_HOME" 2 env XDG_CACHE_HOME="$tmp/xdg" "$M" cache list
has "default path is named" "xdg/mtasts/cache\.db" "$tmp/err"

# --- the daemon's configuration names the cache ----------------------------------------
printf 'cache:\n  type: sqlite\n  options:\n    filename: %s\n' "$db" >"$tmp/d.yml"
check "--config with a sqlite cache" 0 "$M" cache list --config "$tmp/d.yml"
printf 'cache:\n  type: internal\n' >"$tmp/i.yml"
check "--config with the internal cache exits 2" 2 "$M" cache list --config "$tmp/i.yml"
has "... and says why" "lives in the daemon's memory" "$tmp/err"
printf 'port: [1\n' >"$tmp/bad.yml"
check "--config with a broken file exits 2" 2 "$M" cache list --config "$tmp/bad.yml"
has "... naming file:line:col" "bad\.yml:[0-9]+:[0-9]+:" "$tmp/err"
check "two caches at once exit 2" 2 "$M" cache list --cache "$db" --redis redis://127.0.0.1:1/0

# --- Redis and PostgreSQL: real servers started here --------------------------------------
SRV=${MTASTS_SOURCE_ROOT:-$(dirname "$0")/../..}/tests/servers
NOW=$(date +%s)
if ! "$SRV/redis" start "$tmp/redis" 16391 >"$tmp/redis.out" 2>&1; then
	sed 's/^/# /' "$tmp/redis.out"
	echo "Bail out! tests/servers/redis could not start a Redis server"
	exit 1
fi
. "$tmp/redis/redis.env"
RC() { redis-cli -p "$REDIS_PORT" "$@" >/dev/null; }
RC HSET mtasts:policy:a.example id r1 fetched_at "$NOW" max_age 86400 mode enforce \
	policy $'version: STSv1\nmode: enforce\nmx: mail.a.example\nmax_age: 86400\n'
RC HSET mtasts:policy:b.example id r2 fetched_at "$NOW" max_age 604800 mode testing \
	policy $'version: STSv1\nmode: testing\nmx: *.b.example\nmax_age: 604800\n'
check "redis: list" 0 "$M" cache list --redis "$REDIS_URL"
lines "redis: two entries" 2 "$tmp/out"
has "redis: a.example enforce r1" "^a\.example enforce r1 " "$tmp/out"
check "redis: show" 0 "$M" cache show b.example --redis "$REDIS_URL" --json
has "redis: show --json has the policy" '"policy":"version: STSv1\\nmode: testing' "$tmp/out"
check "redis: show an absent domain exits 1" 1 "$M" cache show c.example --redis "$REDIS_URL"
printf 'cache:\n  type: redis\n  options:\n    url: %s\n' "$REDIS_URL" >"$tmp/r.yml"
check "redis via --config: purge" 0 "$M" cache purge a.example --config "$tmp/r.yml"
check "redis: list after purge" 0 "$M" cache list --redis "unix://$REDIS_SOCK"
lines "redis (UNIX socket): one entry left" 1 "$tmp/out"
check "redis: purge --all" 0 "$M" cache purge --all --redis "$REDIS_URL"
has "redis: purge --all counts" "purged 1 entries" "$tmp/out"
"$SRV/redis" stop "$tmp/redis" >/dev/null 2>&1
check "redis down: exits 2" 2 "$M" cache list --redis "$REDIS_URL"
has "redis down: says it does not answer" "Redis does not answer within" "$tmp/err"
check "redis: a bad URL exits 2" 2 "$M" cache list --redis "http://x"

if ! "$SRV/postgres" start "$tmp/pg" 15436 >"$tmp/pg.out" 2>&1; then
	sed 's/^/# /' "$tmp/pg.out"
	echo "Bail out! tests/servers/postgres could not start a PostgreSQL server"
	exit 1
fi
. "$tmp/pg/pg.env"
# The backend makes its table on connect: let the CLI do it, then fill it.
check "postgres: list of a fresh database" 0 "$M" cache list --postgres "$PG_DSN"
lines "postgres: nothing yet" 0 "$tmp/out"
"$PG_BIN/psql" -q "$PG_DSN" -c "INSERT INTO mtasts_policies VALUES
	('p.example', 'p1', $NOW, 86400, 'enforce', E'version: STSv1\nmode: enforce\nmx: mail.p.example\nmax_age: 86400\n')" >"$tmp/psql.out" 2>&1 ||
	sed 's/^/# /' "$tmp/psql.out"
check "postgres: list" 0 "$M" cache list --postgres "$PG_DSN"
has "postgres: p.example enforce p1" "^p\.example enforce p1 " "$tmp/out"
printf 'cache:\n  type: postgres\n  options:\n    dsn: "%s"\n' "$PG_DSN" >"$tmp/p.yml"
check "postgres via --config: show" 0 "$M" cache show p.example --config "$tmp/p.yml"
has "postgres: show prints the policy" "^mx: mail\.p\.example" "$tmp/out"
check "postgres: purge" 0 "$M" cache purge p.example --postgres "$PG_DSN"
check "postgres: purge again exits 1" 1 "$M" cache purge p.example --postgres "$PG_DSN"
"$SRV/postgres" stop "$tmp/pg" >/dev/null 2>&1

echo "1..$n"
[ "$fails" -eq 0 ]
