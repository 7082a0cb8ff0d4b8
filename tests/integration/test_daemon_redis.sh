#!/usr/bin/env bash
# Two mta-stsd sharing one Redis policy cache, end to end, against the
# local test world (tests/world) and a redis-server of our own
# (tests/servers/redis on 127.0.0.1:16382). Speaks TAP. Needs $MTA_STSD,
# python3, redis-server, root (the world's ports).
#
#   - a policy fetched by daemon 1 is answered by daemon 2 from Redis: nginx
#     logs exactly one fetch of it; the hash expires with the policy;
#   - SIGKILL of redis-server in the middle of a load on both daemons:
#     every request still gets its answer, both daemons log the backend
#     down, and back once redis-server runs again;
#   - stall.test (HTTPS stalls): its first lookup answers within the zone
#     timeout while other domains keep answering;
#   - knot (the world's DNS) stopped: known domains are still answered, and
#     a daemon started afresh answers from Redis.
set -u
D=${MTA_STSD:?MTA_STSD must point at the mta-stsd binary}
SRC=${MTASTS_SOURCE_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
# shellcheck source=tests/world/testlib.sh
. "$SRC/tests/world/testlib.sh"
command -v python3 >/dev/null || { echo "Bail out! python3 is missing"; exit 1; }
command -v redis-server >/dev/null || [ -x /usr/bin/redis-server ] ||
	{ echo "Bail out! redis-server is missing: install the package redis-server (scripts/install-deps)"; exit 1; }
command -v redis-cli >/dev/null || { echo "Bail out! redis-cli is missing: install the package redis-tools"; exit 1; }
SCALE=200
world_start --scale "$SCALE"

REDIS=$SRC/tests/servers/redis
RDIR=$tmp/redis
RPORT=16382
P1=18471
P2=18472
P3=18473
PIDS=()

cleanup() {
	local p
	for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null; done
	"$REDIS" kill "$RDIR" >/dev/null 2>&1
	world_stop
}
trap cleanup EXIT

rcli() { redis-cli -p "$RPORT" --raw "$@" 2>&1; }

if ! "$REDIS" start "$RDIR" "$RPORT" >"$tmp/redis.out" 2>&1; then
	diag "$tmp/redis.out"
	echo "Bail out! tests/servers/redis start failed"
	exit 1
fi

# sm.py PORT PAYLOAD...: one connection, requests one by one, a reply per line
SM=$tmp/sm.py
cat >"$SM" <<'PY'
import socket, sys
port = int(sys.argv[1])
s = socket.create_connection(("127.0.0.1", port), timeout=30)
buf = b""
def one():
    global buf
    while True:
        i = buf.find(b":")
        if i > 0:
            n = int(buf[:i])
            if len(buf) >= i + 2 + n:
                pl = buf[i+1:i+1+n]; buf = buf[i+2+n:]
                return pl.decode()
        d = s.recv(65536)
        if not d: return "<eof>"
        buf += d
for p in sys.argv[2:]:
    b = p.encode()
    s.sendall(str(len(b)).encode() + b":" + b + b",")
    print(one())
PY
q() { timeout 40 python3 "$SM" "$@" 2>>"$tmp/sm.err"; }

wait_port() { # wait_port PORT
	for _ in $(seq 1 100); do
		python3 -c "import socket; socket.create_connection(('127.0.0.1', $1), 1)" 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}
wait_log() { # wait_log FILE ERE [SECONDS]
	for _ in $(seq 1 $(( ${3:-10} * 10 ))); do
		grep -Eq -- "$2" "$1" 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}
fetches() { # fetches HOST: policy GETs nginx logged for HOST
	grep -c "sni=$1 host=$1 GET /.well-known/mta-sts.txt " "$WDIR/logs/access.log" 2>/dev/null
}

conf() { # conf PORT
	cat <<Y
host: 127.0.0.1
port: $1
resolver: ["$RESOLVER"]
ca_file: $CA_FILE
state_dir: $tmp/state$1
cache_grace: 2
cache:
  type: redis
  options:
    url: redis://127.0.0.1:$RPORT/0
    socket_timeout: 1
default_zone:
  timeout: 4
Y
}
start_daemon() { # start_daemon PORT: sets DPID
	conf "$1" >"$tmp/d$1.yml"
	"$D" -c "$tmp/d$1.yml" -l "$tmp/d$1.log" 2>>"$tmp/d$1.err" &
	DPID=$!
	PIDS+=("$DPID")
	wait_port "$1"
}

OK_ENFORCE='OK secure match=mail.enforce.test servername=hostname'
OK_BENCH='OK secure match=mx.bench.test servername=hostname'

# --- two daemons, one cache ----------------------------------------------------------------
start_daemon $P1; D1=$DPID
is "daemon 1 listens on $P1" "$(wait_port $P1 && echo yes)" yes
start_daemon $P2; D2=$DPID
is "daemon 2 listens on $P2" "$(wait_port $P2 && echo yes)" yes
for p in $P1 $P2; do
	if wait_log "$tmp/d$p.log" "redis cache redis://127.0.0.1:$RPORT/0: connected" 10; then
		ok "daemon on $p: the Redis backend connected"
	else
		not_ok "daemon on $p: the Redis backend connected"; diag "$tmp/d$p.log"
	fi
done

is "daemon 1: enforce.test" "$(q $P1 'postfix enforce.test')" "$OK_ENFORCE"
for _ in $(seq 1 50); do
	[ "$(rcli HGET mtasts:policy:enforce.test id)" = enforce1 ] && break
	sleep 0.1
done
is "the policy is in Redis (hash mtasts:policy:enforce.test, id)" \
	"$(rcli HGET mtasts:policy:enforce.test id)" enforce1
ttl=$(rcli TTL mtasts:policy:enforce.test)
if [ "$ttl" -gt 604000 ] 2>/dev/null && [ "$ttl" -le 604800 ]; then
	ok "it expires with the policy (TTL $ttl s, max_age 604800)"
else
	not_ok "it expires with the policy (TTL '$ttl', max_age 604800)"
fi
is "daemon 2: enforce.test, the same answer" "$(q $P2 'postfix enforce.test')" "$OK_ENFORCE"
sleep 0.5   # nginx logs after it answered
is "nginx served the policy of enforce.test once for both daemons" \
	"$(fetches mta-sts.enforce.test)" 1
is "daemon 1 fetched enforce.test's policy" "$(grep -c 'enforce.test: fetched policy id enforce1' "$tmp/d$P1.log")" 1
is "daemon 2 did not: it took it from Redis" "$(grep -c 'enforce.test: fetched policy' "$tmp/d$P2.log")" 0

# --- SIGKILL of redis-server under load ------------------------------------------------------------
# Bench domains never asked before go through the engine (cache get, TXT,
# fetch, cache put), spread over both daemons, on 16 connections; known
# domains are mixed in. Every reply must be the domain's answer.
LOAD=$tmp/load.py
cat >"$LOAD" <<'PY'
import socket, sys, threading, time
ports = [int(sys.argv[1]), int(sys.argv[2])]
scale = int(sys.argv[3])
rounds = int(sys.argv[4])
known = [("enforce.test", "OK secure match=mail.enforce.test servername=hostname"),
         ("none.test", "NOTFOUND "), ("notxt.test", "NOTFOUND "), ("testing.test", "NOTFOUND ")]
jobs = []
for r in range(rounds):
    for i in range(1, scale + 1):
        jobs.append(("d%05d.bench.test" % i, "OK secure match=mx.bench.test servername=hostname"))
        if i % 5 == 0:
            jobs.append(known[(i // 5) % len(known)])
lock = threading.Lock()
bad = []; done = [0]
def worker(k):
    s = socket.create_connection(("127.0.0.1", ports[k % 2]), timeout=30)
    buf = b""
    for j in range(k, len(jobs), 16):
        dom, want = jobs[j]
        p = ("postfix " + dom).encode()
        try:
            s.sendall(str(len(p)).encode() + b":" + p + b",")
            while True:
                i = buf.find(b":")
                if i > 0:
                    n = int(buf[:i])
                    if len(buf) >= i + 2 + n:
                        got = buf[i+1:i+1+n].decode(); buf = buf[i+2+n:]
                        break
                d = s.recv(65536)
                if not d: raise EOFError("closed")
                buf += d
        except Exception as e:
            got = "<%s>" % e
        with lock:
            done[0] += 1
            if got != want: bad.append((dom, got))
        time.sleep(0.02)
ts = [threading.Thread(target=worker, args=(k,)) for k in range(16)]
for t in ts: t.start()
for t in ts: t.join()
print("requests:", done[0], "bad:", len(bad), bad[:5])
PY
# Rounds: the first fetches every bench domain, later ones are answered
# from memory; the kill lands in the first.
timeout 120 python3 "$LOAD" $P1 $P2 "$SCALE" 3 >"$tmp/load.out" 2>&1 &
LPID=$!
sleep 0.4
is "the load runs when redis-server is killed" "$(kill -0 "$LPID" 2>/dev/null && echo yes)" yes
"$REDIS" kill "$RDIR"
is "redis-server killed mid-load" "$(rcli PING | grep -c PONG)" 0
wait "$LPID"
like "every request of the load got its answer" "$(cat "$tmp/load.out")" "^requests: [0-9]+ bad: 0 "
nreq=$(sed -n 's/^requests: \([0-9]*\).*/\1/p' "$tmp/load.out")
if [ "${nreq:-0}" -ge 700 ]; then ok "the load was $nreq requests"; else not_ok "the load was ${nreq:-0} requests"; diag "$tmp/load.out"; fi
nfail=$(cat "$tmp/d$P1.log" "$tmp/d$P2.log" | grep -cE 'cache lookup failed; asking the network|policy cache redis: failing')
if [ "$nfail" -gt 0 ]; then
	ok "lookups during the outage failed over to the network ($nfail cache lookups failed)"
else
	not_ok "lookups during the outage failed over to the network (no failed cache lookup logged)"
fi
for p in $P1 $P2; do
	if wait_log "$tmp/d$p.log" "redis cache .* is down" 5; then
		ok "daemon on $p logged the backend down"
	else
		not_ok "daemon on $p logged the backend down"; diag "$tmp/d$p.log"
	fi
	is "daemon on $p: one down line for the outage" "$(grep -c 'redis cache .* is down' "$tmp/d$p.log")" 1
done
is "while Redis is down: daemon 1 answers" "$(q $P1 'postfix enforce.test')" "$OK_ENFORCE"
is "while Redis is down: daemon 2 answers a domain new to it (cname.test)" \
	"$(q $P2 'postfix cname.test')" "OK secure match=mail.cname.test servername=hostname"
if ! "$REDIS" start "$RDIR" "$RPORT" >"$tmp/redis.out" 2>&1; then
	diag "$tmp/redis.out"
	echo "Bail out! tests/servers/redis could not start again"
	exit 1
fi
for p in $P1 $P2; do
	# The back-off is at most 30 s; a few seconds have passed since the kill.
	if wait_log "$tmp/d$p.log" "redis cache redis://127.0.0.1:$RPORT/0 is back" 35; then
		ok "daemon on $p logged the backend back"
	else
		not_ok "daemon on $p logged the backend back"; diag "$tmp/d$p.log"
	fi
done
# Shared again: split.test fetched by daemon 2 is answered by daemon 1 from Redis.
is "after the restart, daemon 2: split.test" "$(q $P2 'postfix split.test')" \
	"OK secure match=mail.split.test servername=hostname"
for _ in $(seq 1 50); do
	[ "$(rcli HGET mtasts:policy:split.test id)" = 20240101 ] && break
	sleep 0.1
done
is "after the restart, the policy is in Redis again" "$(rcli HGET mtasts:policy:split.test id)" 20240101
is "daemon 1: split.test" "$(q $P1 'postfix split.test')" \
	"OK secure match=mail.split.test servername=hostname"
sleep 0.5
is "nginx served split.test's policy once" "$(fetches mta-sts.split.test)" 1

# --- a stalled policy host -----------------------------------------------------------------------
got=$(timeout 60 python3 - $P1 $P2 <<'PY'
import socket, sys, threading, time
ports = [int(sys.argv[1]), int(sys.argv[2])]
def ask(port, dom):
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    p = ("postfix " + dom).encode()
    t0 = time.time()
    s.sendall(str(len(p)).encode() + b":" + p + b",")
    buf = b""
    while True:
        d = s.recv(65536)
        if not d: break
        buf += d
        i = buf.find(b":")
        if i > 0 and len(buf) >= i + 2 + int(buf[:i]): break
    i = buf.find(b":")
    return buf[i+1:i+1+int(buf[:i])].decode() if i > 0 else "<none>", time.time() - t0
res = {}
def stall(): res["stall"] = ask(ports[0], "stall.test")
t = threading.Thread(target=stall); t.start()
time.sleep(0.3)
others = []
while t.is_alive():
    for k, dom in enumerate(["enforce.test", "d00001.bench.test", "none.test"]):
        others.append(ask(ports[k % 2], dom))
    time.sleep(0.1)
t.join()
slow = max(o[1] for o in others)
print("stall %s %.1f others %d slowest %.2f" % (res["stall"][0].strip() or "-", res["stall"][1], len(others), slow))
PY
)
echo "# $got"
like "stall.test: the first lookup answers NOTFOUND within the zone timeout (4 s)" "$got" \
	"^stall NOTFOUND [1-5]\.[0-9] "
like "meanwhile other domains keep answering at once" "$got" "others [1-9][0-9]* slowest 0\.[0-9]+$"

# --- the world's DNS stops -------------------------------------------------------------------------
kpid=$(cat "$WDIR/knot/knot.pid" 2>/dev/null)
if [ -n "$kpid" ] && kill -TERM "$kpid" 2>/dev/null; then
	for _ in $(seq 1 50); do [ -d "/proc/$kpid" ] || break; sleep 0.1; done
fi
is "knot stopped" "$([ -n "$kpid" ] && [ ! -d "/proc/$kpid" ] && echo yes)" yes
is "DNS down: daemon 1 answers enforce.test" "$(q $P1 'postfix enforce.test')" "$OK_ENFORCE"
is "DNS down: daemon 2 answers d00001.bench.test" "$(q $P2 'postfix d00001.bench.test')" "$OK_BENCH"
# A daemon that never saw split.test answers it from Redis, without DNS.
start_daemon $P3; D3=$DPID
wait_log "$tmp/d$P3.log" "redis cache .*: connected" 10
is "DNS down: a new daemon answers split.test from Redis" "$(q $P3 'postfix split.test')" \
	"OK secure match=mail.split.test servername=hostname"

# --- stop ----------------------------------------------------------------------------------------
for p in "$D1" "$D2" "$D3"; do kill -TERM "$p" 2>/dev/null; done
rc=0
for p in "$D1" "$D2" "$D3"; do wait "$p" || rc=$?; done
is "SIGTERM: the daemons exit 0" "$rc" 0
PIDS=()
if grep -E "AddressSanitizer|LeakSanitizer|runtime error" "$tmp"/d*.err >/dev/null 2>&1; then
	not_ok "no sanitizer reports in the daemon logs"
	cat "$tmp"/d*.err | head -n 60 | sed 's/^/# /'
else
	ok "no sanitizer reports in the daemon logs"
fi
finish
