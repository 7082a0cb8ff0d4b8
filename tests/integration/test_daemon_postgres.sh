#!/usr/bin/env bash
# Two mta-stsd sharing one PostgreSQL policy cache, against the local test
# world (tests/world, --scale 300) and a PostgreSQL server started here
# (tests/servers/postgres, 127.0.0.1:15433): a policy fetched by one daemon
# is answered by the other without a second HTTPS fetch; SIGKILL of the
# server under load costs no reply, the daemons log the backend down and,
# after a restart, back; a restarted daemon answers from the policies the
# server holds without fetching again. Speaks TAP. Needs $MTA_STSD (set by
# meson), python3, root (the world's ports), the package postgresql.
set -u
D=${MTA_STSD:?MTA_STSD must point at the mta-stsd binary}
SRC=${MTASTS_SOURCE_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
PGS=$SRC/tests/servers/postgres
# shellcheck source=tests/world/testlib.sh
. "$SRC/tests/world/testlib.sh"
command -v python3 >/dev/null || { echo "Bail out! python3 is missing"; exit 1; }
world_start --scale 300

PG_PORT=15433
PGDIR=$TMPROOT/pg
P1=18481
P2=18482
D1PID='' D2PID=''
cleanup() {
	local p
	for p in $D1PID $D2PID; do kill -TERM "$p" 2>/dev/null; done
	for p in $D1PID $D2PID; do wait "$p" 2>/dev/null; done
	[ -d "$PGDIR" ] && "$PGS" stop "$PGDIR" >/dev/null 2>&1
	world_stop
}
trap cleanup EXIT

if ! "$PGS" start "$PGDIR" "$PG_PORT" >"$tmp/pg.out" 2>&1; then
	diag "$tmp/pg.out"
	echo "Bail out! tests/servers/postgres start failed (package postgresql installed?)"
	exit 1
fi
# shellcheck disable=SC1091
. "$PGDIR/pg.env"
psql_() { "$PG_BIN/psql" -X -qtA -h "$PG_SOCKDIR" -p "$PG_PORT" -U postgres -d mtasts -c "$1" 2>&1; }

SM=$tmp/sm.py
# sm.py HOST:PORT PAYLOAD...: the payloads as netstrings in one write; one
# line per reply payload.
cat >"$SM" <<'PY'
import socket, sys
h, p = sys.argv[1].rsplit(":", 1)
s = socket.create_connection((h, int(p)), timeout=20)
s.sendall(b"".join(b"%d:%s," % (len(a.encode()), a.encode()) for a in sys.argv[2:]))
buf = b""
for _ in sys.argv[2:]:
    while True:
        i = buf.find(b":")
        if i > 0 and len(buf) >= i + 2 + int(buf[:i]):
            n = int(buf[:i]); print(buf[i+1:i+1+n].decode()); buf = buf[i+2+n:]; break
        d = s.recv(65536)
        if not d: print("<eof>"); sys.exit(0)
        buf += d
PY
q() { timeout 30 python3 "$SM" "127.0.0.1:$1" "postfix $2" 2>>"$tmp/sm.err"; }

OK_ENFORCE='OK secure match=mail.enforce.test servername=hostname'
OK_BENCH='OK secure match=mx.bench.test servername=hostname'
DSN="postgresql://postgres@127.0.0.1:$PG_PORT/mtasts"
DOWN_RE='cache PostgreSQL 127\.0\.0\.1:15433/mtasts: connection lost: .*operations fail until it is back'
BACK_RE='cache PostgreSQL 127\.0\.0\.1:15433/mtasts: connected again'

conf() { # conf N PORT
	cat >"$tmp/d$1.yml" <<Y
host: 127.0.0.1
port: $2
shutdown_timeout: 5
resolver: ["$RESOLVER"]
ca_file: $CA_FILE
state_dir: $tmp/state$1
cache:
  type: postgres
  options:
    dsn: "$DSN"
    timeout: 5
default_zone:
  timeout: 4
Y
}

start_daemon() { # start_daemon N PORT LOG: sets DPID
	"$D" -c "$tmp/d$1.yml" -v debug -l "$3" --disable-uvloop 2>>"$tmp/d$1.err" &
	DPID=$!
	local _
	for _ in $(seq 1 100); do
		python3 -c "import socket; socket.create_connection(('127.0.0.1', $2), 1)" 2>/dev/null && return 0
		sleep 0.1
	done
	diag "$3"
	echo "Bail out! mta-stsd $1 did not start on 127.0.0.1:$2"
	exit 1
}

wait_log() { # wait_log FILE ERE SECONDS
	local _
	for _ in $(seq 1 $(( $3 * 10 ))); do
		grep -Eq -- "$2" "$1" 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}

fetches() { # fetches HOST: HTTPS policy requests nginx logged for HOST
	grep -c "sni=$1 host=$1 GET /.well-known/mta-sts.txt " "$WDIR/logs/access.log" 2>/dev/null
}

row() { psql_ "SELECT id || ' ' || mode || ' ' || max_age FROM mtasts_policies WHERE domain = '$1'"; }

wait_row() { # wait_row DOMAIN: the engine stores just after it answers
	local _
	for _ in $(seq 1 50); do
		[ -n "$(row "$1")" ] && return 0
		sleep 0.1
	done
	return 1
}

conf 1 $P1
conf 2 $P2
"$D" --check-config -c "$tmp/d1.yml" >"$tmp/cc.out" 2>&1
is "--check-config accepts cache type postgres with dsn and timeout" "$?" 0 || diag "$tmp/cc.out"
start_daemon 1 $P1 "$tmp/d1.log"; D1PID=$DPID
start_daemon 2 $P2 "$tmp/d2.log"; D2PID=$DPID
like "daemon 1 uses the PostgreSQL cache" "$(cat "$tmp/d1.log")" "policy cache: PostgreSQL \(timeout 5000 ms\)"
wait_log "$tmp/d1.log" "cache PostgreSQL .*: connected" 5
wait_log "$tmp/d2.log" "cache PostgreSQL .*: connected" 5
like "daemon 1 connected" "$(cat "$tmp/d1.log")" "cache PostgreSQL 127\.0\.0\.1:15433/mtasts: connected"
like "daemon 2 connected" "$(cat "$tmp/d2.log")" "cache PostgreSQL 127\.0\.0\.1:15433/mtasts: connected"
is "the table exists" "$(psql_ "SELECT count(*) FROM mtasts_policies")" 0

# --- one fetch, two daemons ------------------------------------------------------------
is "daemon 1: enforce.test" "$(q $P1 enforce.test)" "$OK_ENFORCE"
wait_row enforce.test
is "daemon 1 stored the policy in PostgreSQL" "$(row enforce.test)" "enforce1 enforce 604800"
body=$(psql_ "SELECT encode(convert_to(policy, 'UTF8'), 'hex') FROM mtasts_policies WHERE domain = 'enforce.test'")
is "the stored policy is the served file, byte for byte" "$body" \
	"$(od -An -v -tx1 "$WWW/enforce/.well-known/mta-sts.txt" | tr -d ' \n')"
is "daemon 2: enforce.test, the same answer" "$(q $P2 enforce.test)" "$OK_ENFORCE"
sleep 0.5   # nginx logs just after it answers: give a second fetch time to show
is "nginx saw exactly one fetch of mta-sts.enforce.test" "$(fetches mta-sts.enforce.test)" 1
is "daemon 2: testing.test (NOTFOUND in the default zone)" "$(q $P2 testing.test)" "NOTFOUND "
wait_row testing.test
is "daemon 1: testing.test from daemon 2's fetch" "$(q $P1 testing.test)" "NOTFOUND "
sleep 0.5
is "nginx saw exactly one fetch of mta-sts.testing.test" "$(fetches mta-sts.testing.test)" 1

# --- SIGKILL of PostgreSQL under load ------------------------------------------------------------
# Threads on both daemons ask for bench domains (new ones go through the
# cache) and the named ones, while the server is killed.
# Eight connections over both daemons, for 3.5 s: each sends its share of
# the 300 bench domains two at a time, first lookups spread over ~2 s so
# many go through the cache around the kill, with three named domains in
# every batch (pipelined). Each reply is checked; load.py counts those
# sent after $tmp/killed appeared.
cat >"$tmp/load.py" <<'PY'
import os, random, socket, sys, threading, time
ports = [int(p) for p in sys.argv[1:3]]
killed = sys.argv[3]
ok_bench = "OK secure match=mx.bench.test servername=hostname"
want = {"enforce.test": "OK secure match=mail.enforce.test servername=hostname",
        "testing.test": "NOTFOUND ", "none.test": "NOTFOUND ", "notxt.test": "NOTFOUND ",
        "split.test": "OK secure match=mail.split.test servername=hostname"}
bench = ["d%05d.bench.test" % i for i in range(1, 301)]
bad = []; total = [0]; after = [0]; lock = threading.Lock()
def client(k):
    port = ports[k % 2]
    new = bench[k::8]
    rnd = random.Random(k)
    t0 = time.time()
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=30)
        while new or time.time() - t0 < 3.5:
            batch = [new.pop(0) for _ in range(min(2, len(new)))] + rnd.sample(sorted(want), 3)
            late = os.path.exists(killed)
            s.sendall(b"".join(b"%d:postfix %s," % (len(d) + 8, d.encode()) for d in batch))
            buf = b""; got = []
            while len(got) < len(batch):
                j = buf.find(b":")
                if j > 0 and len(buf) >= j + 2 + int(buf[:j]):
                    n = int(buf[:j]); got.append(buf[j+1:j+1+n].decode()); buf = buf[j+2+n:]
                    continue
                d = s.recv(65536)
                if not d: raise Exception("eof")
                buf += d
            with lock:
                for d, r in zip(batch, got):
                    total[0] += 1
                    after[0] += late
                    if r != want.get(d, ok_bench): bad.append((port, d, r))
            time.sleep(0.1)
        s.close()
    except Exception as e:
        with lock: bad.append((port, k, repr(e)))
ts = [threading.Thread(target=client, args=(k,)) for k in range(8)]
for t in ts: t.start()
for t in ts: t.join()
print("total", total[0], "after", after[0], "bad", len(bad), bad[:5])
PY
timeout 120 python3 "$tmp/load.py" $P1 $P2 "$tmp/killed" >"$tmp/load.out" 2>&1 &
LPID=$!
sleep 1
"$PGS" kill "$PGDIR" >"$tmp/pgkill.out" 2>&1
is "PostgreSQL killed (SIGKILL) mid-load" "$?" 0 || diag "$tmp/pgkill.out"
touch "$tmp/killed"
wait "$LPID"
out=$(cat "$tmp/load.out")
like "every request around the kill got the right reply" "$out" "^total [0-9]+ after [0-9]+ bad 0 "
read -r _ n_req _ n_after _ <"$tmp/load.out"
if [ "${n_req:-0}" -ge 500 ] && [ "${n_after:-0}" -ge 200 ]; then
	ok "hundreds of requests ($n_req, $n_after after the kill) over 305 domains on both daemons"
else
	not_ok "hundreds of requests (${n_req:-0}, ${n_after:-0} after the kill)"
	diag "$tmp/load.out"
fi
lookups_down=$(cat "$tmp/d1.log" "$tmp/d2.log" | grep -cE "cache lookup failed|policy cache postgres: failing")
if [ "${lookups_down:-0}" -ge 1 ]; then ok "the daemons saw cache operations fail during the outage"; else not_ok "the daemons saw cache operations fail during the outage"; fi
wait_log "$tmp/d1.log" "$DOWN_RE" 10
wait_log "$tmp/d2.log" "$DOWN_RE" 10
like "daemon 1 logs the backend down" "$(cat "$tmp/d1.log")" "$DOWN_RE"
like "daemon 2 logs the backend down" "$(cat "$tmp/d2.log")" "$DOWN_RE"
is "daemon 1 logs the outage once" "$(grep -cE "$DOWN_RE" "$tmp/d1.log")" 1
is "daemon 2 logs the outage once" "$(grep -cE "$DOWN_RE" "$tmp/d2.log")" 1
is "the reason is libpq's, not libuv's EBADF" "$(cat "$tmp/d1.log" "$tmp/d2.log" | grep -c "bad file descriptor")" 0
is "while down: a new domain still answered (network)" "$(q $P1 d00299.bench.test)" "$OK_BENCH"
is "while down: enforce.test still answered" "$(q $P2 enforce.test)" "$OK_ENFORCE"

if ! "$PGS" start "$PGDIR" "$PG_PORT" >"$tmp/pg.out" 2>&1; then
	diag "$tmp/pg.out"
	echo "Bail out! PostgreSQL did not restart"
	exit 1
fi
ok "PostgreSQL restarted on its data"
wait_log "$tmp/d1.log" "$BACK_RE" 40
wait_log "$tmp/d2.log" "$BACK_RE" 40
like "daemon 1 logs the backend back" "$(cat "$tmp/d1.log")" "$BACK_RE"
like "daemon 2 logs the backend back" "$(cat "$tmp/d2.log")" "$BACK_RE"
is "the policies stored before the kill survived" "$(row enforce.test)" "enforce1 enforce 604800"
# check-good.test has not been asked yet: it is stored again after the outage
is "after the restart: check-good.test on daemon 2" "$(q $P2 check-good.test)" \
	"OK secure match=mail.check-good.test servername=hostname"
wait_row check-good.test
is "... and stored in PostgreSQL again" "$(row check-good.test)" "checkgood1 enforce 604800"

# --- a restarted daemon answers from what the server holds --------------------------
kill -TERM "$D1PID"
wait "$D1PID"
is "daemon 1 stopped cleanly" "$?" 0
D1PID=
before=$(fetches mta-sts.check-good.test)
start_daemon 1 $P1 "$tmp/d1b.log"; D1PID=$DPID
wait_log "$tmp/d1b.log" "cache PostgreSQL .*: connected" 5
is "restarted daemon 1: check-good.test" "$(q $P1 check-good.test)" \
	"OK secure match=mail.check-good.test servername=hostname"
is "restarted daemon 1: enforce.test" "$(q $P1 enforce.test)" "$OK_ENFORCE"
sleep 0.5
is "... without fetching check-good.test again" "$(fetches mta-sts.check-good.test)" "$before"
is "... nor enforce.test (one fetch in the whole test)" "$(fetches mta-sts.enforce.test)" 1
like "the engine answered from the PostgreSQL cache" "$(cat "$tmp/d1b.log")" \
	"debug: check-good\.test: policy \(cache\)"

kill -TERM "$D1PID" "$D2PID"
wait "$D1PID"; r1=$?
wait "$D2PID"; r2=$?
D1PID='' D2PID=''
is "SIGTERM with the PostgreSQL cache: both exit 0" "$r1 $r2" "0 0"
if grep -E "runtime error|AddressSanitizer|LeakSanitizer" "$tmp"/d*.err >/dev/null 2>&1; then
	not_ok "no sanitizer reports from the daemons"
	diag "$tmp"/d*.err
else
	ok "no sanitizer reports from the daemons"
fi
finish
