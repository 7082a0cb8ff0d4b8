#!/usr/bin/env bash
# mta-stsd, end to end, against the local test world (tests/world): knotd
# on 127.0.54.1:53 and nginx on 127.0.60.x:443, started here and stopped on
# exit. Talks socketmap (netstrings) to the daemon on 127.0.0.1:18461 and on
# a UNIX socket: policies, NOTFOUND cases, key forms, zones, pipelining,
# malformed framing, answers from the in-memory map, --check-config and a
# clean SIGTERM. Speaks TAP. Needs $MTA_STSD (set by meson), python3, root.
set -u
D=${MTA_STSD:?MTA_STSD must point at the mta-stsd binary}
# shellcheck source=tests/world/testlib.sh
. "${MTASTS_SOURCE_ROOT:-$(dirname "$0")/../..}/tests/world/testlib.sh"
command -v python3 >/dev/null || { echo "Bail out! python3 is missing"; exit 1; }
# shellcheck disable=SC2119
world_start

PORT=18461
SM=$tmp/sm.py
# sm.py TARGET [--raw DATA] [--seq] [--eof] PAYLOAD...: TARGET is host:port
# or a UNIX socket path. Sends the payloads as netstrings in one write (or
# one by one with --seq, waiting for each reply), or DATA as given with
# --raw; prints one line per reply payload, then "EOF" when the daemon
# closes the connection (with --eof, waits for that).
cat >"$SM" <<'PY'
import socket, sys, time
args = sys.argv[1:]
target = args.pop(0)
raw = None; seq = False; want_eof = False
while args and args[0].startswith("--"):
    a = args.pop(0)
    if a == "--raw": raw = args.pop(0).encode()
    elif a == "--seq": seq = True
    elif a == "--eof": want_eof = True
if ":" in target and not target.startswith("/"):
    h, p = target.rsplit(":", 1)
    s = socket.create_connection((h, int(p)), timeout=15)
else:
    s = socket.socket(socket.AF_UNIX); s.settimeout(15); s.connect(target)
buf = b""; eof = False
def ns(p):
    b = p.encode(); return str(len(b)).encode() + b":" + b + b","
def one():
    global buf, eof
    while True:
        i = buf.find(b":")
        if i > 0:
            n = int(buf[:i])
            if len(buf) >= i + 1 + n + 1:
                pl = buf[i+1:i+1+n]; assert buf[i+1+n:i+2+n] == b","
                buf = buf[i+2+n:]
                return pl.decode()
        if eof: return None
        d = s.recv(65536)
        if not d: eof = True
        buf += d
out = []
if raw is not None:
    s.sendall(raw)
    while True:
        r = one()
        if r is None: break
        out.append(r)
        if not want_eof: break
elif seq:
    for p in args:
        s.sendall(ns(p)); out.append(one())
else:
    s.sendall(b"".join(ns(p) for p in args))
    for _ in args: out.append(one())
if want_eof and not eof:
    try:
        while s.recv(65536): pass
        eof = True
    except socket.timeout:
        pass
for r in out: print(r if r is not None else "<none>")
if eof: print("EOF")
PY
sm() { timeout 30 python3 "$SM" "127.0.0.1:$PORT" "$@" 2>"$tmp/sm.err"; }
q1() { sm "$1"; }

OK_ENFORCE='OK secure match=mail.enforce.test servername=hostname'

# --- --check-config ----------------------------------------------------------------
cat >"$tmp/bad.yml" <<'Y'
host: 127.0.0.1
port: 8461
shutdown_timeout: [1, 2]
Y
"$D" --check-config -c "$tmp/bad.yml" >"$tmp/cc.out" 2>&1
rc=$?
is "--check-config on a bad file: exit 1" "$rc" 1
like "--check-config names file:line:col" "$(cat "$tmp/cc.out")" "bad.yml:3:[0-9]+: error"
"$D" -c "$tmp/nonexistent.yml" >"$tmp/cc.out" 2>&1
is "missing explicit -c file: exit 1" "$?" 1
if [ ! -e /etc/mta-sts-daemon.yml ]; then
	"$D" --check-config >"$tmp/cc.out" 2>&1
	is "--check-config, default file missing: exit 0" "$?" 0
	like "--check-config, default file missing: built-in defaults" "$(cat "$tmp/cc.out")" "built-in defaults apply"
fi
printf 'cache:\n  type: redis\n  options:\n    url: "redis://127.0.0.1:99999/0"\n' >"$tmp/badr.yml"
"$D" --check-config -c "$tmp/badr.yml" >"$tmp/cc.out" 2>&1
is "--check-config: a Redis URL the backend refuses: exit 1" "$?" 1
like "--check-config: ... names the key and the problem" "$(cat "$tmp/cc.out")" "cache.options.url: redis URL: port '99999'"
printf 'cache:\n  type: postgres\n  options:\n    dsn: "host=127.0.0.1 sslmode=sometimes"\n' >"$tmp/badp.yml"
"$D" --check-config -c "$tmp/badp.yml" >"$tmp/cc.out" 2>&1
is "--check-config: a DSN libpq refuses: exit 1" "$?" 1
like "--check-config: ... with libpq's reason" "$(cat "$tmp/cc.out")" "cache.options.dsn: invalid PostgreSQL DSN: invalid sslmode value"
"$D" --no-config --check-config >"$tmp/cc.out" 2>&1
is "--no-config --check-config: exit 0" "$?" 0
like "--no-config: built-in defaults" "$(cat "$tmp/cc.out")" "not read \(--no-config\): the built-in defaults apply"
"$D" --no-config -c "$tmp/bad.yml" >"$tmp/cc.out" 2>&1
is "--no-config with -c: usage error" "$?" 2
"$D" -v loud --check-config >"$tmp/cc.out" 2>&1
is "-v with an unknown level: usage error" "$?" 2
"$D" --version >"$tmp/cc.out" 2>&1
like "--version" "$(cat "$tmp/cc.out")" "^mta-stsd [0-9]"

cat >"$tmp/d.yml" <<Y
host: 127.0.0.1
port: $PORT
shutdown_timeout: 5
cache_grace: 1
resolver: ["$RESOLVER"]
ca_file: $CA_FILE
state_dir: $tmp/state
cache:
  type: sqlite
default_zone:
  timeout: 4
zones:
  strict:
    strict_testing: true
  tempz:
    temp_on_failure: true
    timeout: 1
Y
"$D" --check-config -c "$tmp/d.yml" >"$tmp/cc.out" 2>&1
is "--check-config on the test file: exit 0" "$?" 0 || diag "$tmp/cc.out"

# --- start ---------------------------------------------------------------------------
"$D" -c "$tmp/d.yml" -v debug -l "$tmp/d.log" -p "$tmp/d.pid" --disable-uvloop &
DPID=$!
up=no
for _ in $(seq 1 100); do
	if python3 -c "import socket; socket.create_connection(('127.0.0.1', $PORT), 1)" 2>/dev/null; then
		up=yes; break
	fi
	sleep 0.1
done
is "daemon listens on 127.0.0.1:$PORT" "$up" yes
if [ "$up" != yes ]; then diag "$tmp/d.log"; echo "Bail out! daemon did not start"; exit 1; fi
is "pidfile holds the pid" "$(cat "$tmp/d.pid" 2>/dev/null)" "$DPID"
like "SQLite cache in state_dir" "$(cat "$tmp/d.log")" "SQLite $tmp/state/cache.db"

# --- lookups ---------------------------------------------------------------------------
is "enforce.test" "$(q1 'postfix enforce.test')" "$OK_ENFORCE"
t0=$(date +%s%N)
is "enforce.test again (from the map)" "$(q1 'postfix enforce.test')" "$OK_ENFORCE"
t1=$(date +%s%N)
ms=$(( (t1 - t0) / 1000000 ))
ok "answered from the map in ${ms} ms"
is "testing.test: NOTFOUND" "$(q1 'postfix testing.test')" "NOTFOUND "
is "none.test: NOTFOUND" "$(q1 'postfix none.test')" "NOTFOUND "
is "notxt.test: NOTFOUND" "$(q1 'postfix notxt.test')" "NOTFOUND "
is "[enforce.test]:25" "$(q1 'postfix [enforce.test]:25')" "$OK_ENFORCE"
is "ENFORCE.Test. (case, root dot)" "$(q1 'postfix ENFORCE.Test.')" "$OK_ENFORCE"
is ".enforce.test (parent probe): NOTFOUND" "$(q1 'postfix .enforce.test')" "NOTFOUND "
is "[1.2.3.4]: NOTFOUND" "$(q1 'postfix [1.2.3.4]')" "NOTFOUND "
is "invalid key: NOTFOUND" "$(q1 'postfix a..b')" "NOTFOUND "
like "invalid key is logged" "$(cat "$tmp/d.log")" "invalid key 'a\.\.b'"
is "strict zone: testing.test" "$(q1 'strict testing.test')" \
	"OK secure match=mail.testing.test:.backup.testing.test servername=hostname"
is "unknown zone name uses default_zone" "$(q1 'whatever testing.test')" "NOTFOUND "

got=$(sm 'postfix enforce.test' 'postfix .x.test' 'strict testing.test' | tr '\n' '|')
is "3 pipelined requests in one write: 3 replies in order" "$got" \
	"$OK_ENFORCE|NOTFOUND |OK secure match=mail.testing.test:.backup.testing.test servername=hostname|"
got=$(sm 'postfix cname.test' 'postfix [1.2.3.4]:25' 'postfix split.test' | tr '\n' '|')
is "pipelined: a slow lookup first still answers in order" "$got" \
	"OK secure match=mail.cname.test servername=hostname|NOTFOUND |OK secure match=mail.split.test servername=hostname|"
got=$(sm --seq 'postfix enforce.test' 'postfix none.test' 'postfix enforce.test' | tr '\n' '|')
is "many requests on one connection" "$got" "$OK_ENFORCE|NOTFOUND |$OK_ENFORCE|"

got=$(sm --raw 'abc' --eof | tr '\n' '|')
like "malformed netstring: PERM, then close" "$got" "^PERM [^|]+\|EOF\|$"
got=$(sm --raw '20:postfix enforce.test,x:' --eof | tr '\n' '|')
like "request then garbage: reply, PERM, close" "$got" "^$OK_ENFORCE\|PERM [^|]+\|EOF\|$"

# a domain that does not answer in time: NOTFOUND, or TEMP with temp_on_failure
is "timeout in the default zone: NOTFOUND" "$(q1 'postfix stall.test')" "NOTFOUND "

# background refresh: cache_grace is 1 s; the answer is immediate and the
# daemon refreshes behind it
sleep 1.2
is "stale entry answered at once" "$(q1 'postfix enforce.test')" "$OK_ENFORCE"
sleep 0.5
like "background refresh logged" "$(cat "$tmp/d.log")" "enforce.test: refreshing in the background"

# SIGHUP reopens the log
mv "$tmp/d.log" "$tmp/d.log.1"
kill -HUP "$DPID"
sleep 0.3
q1 'postfix enforce.test' >/dev/null
sleep 0.2
is "SIGHUP: a new log file" "$([ -s "$tmp/d.log" ] && echo yes)" yes

# --- many connections at once --------------------------------------------------------------
got=$(timeout 60 python3 - "$PORT" <<'PY'
import socket, sys, threading
port = int(sys.argv[1])
req = [("postfix enforce.test", "OK secure match=mail.enforce.test servername=hostname"),
       ("postfix none.test", "NOTFOUND "), ("postfix [1.2.3.4]", "NOTFOUND "),
       ("strict testing.test", "OK secure match=mail.testing.test:.backup.testing.test servername=hostname")]
bad = []
def client(k):
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=20)
        data = b"".join(b"%d:%s," % (len(p), p.encode()) for p, _ in req * 5)
        s.sendall(data)
        want = b"".join(b"%d:%s," % (len(w), w.encode()) for _, w in req * 5)
        got = b""
        while len(got) < len(want):
            d = s.recv(65536)
            if not d: break
            got += d
        if got != want: bad.append(k)
        s.close()
    except Exception as e:
        bad.append((k, str(e)))
ts = [threading.Thread(target=client, args=(k,)) for k in range(100)]
for t in ts: t.start()
for t in ts: t.join()
print("bad:", bad[:5], len(bad))
PY
)
is "100 connections x 20 pipelined requests, all answered in order" "$got" "bad: [] 0"

# --- SIGTERM ----------------------------------------------------------------------------
t0=$SECONDS
kill -TERM "$DPID"
wait "$DPID"
rc=$?
is "SIGTERM: exit 0" "$rc" 0
ok "stopped in $((SECONDS - t0)) s (shutdown_timeout 5)"
like "stopped is logged" "$(cat "$tmp/d.log")" "stopped"
is "pidfile removed" "$([ -e "$tmp/d.pid" ] && echo left || echo gone)" gone

# --- restart: the SQLite cache answers at once, even with DNS down --------------------------
sed "s|^resolver: .*|resolver: [\"127.0.54.99:53\"]|" "$tmp/d.yml" >"$tmp/d2.yml"
"$D" -c "$tmp/d2.yml" -v debug -l "$tmp/d2.log" &
DPID=$!
for _ in $(seq 1 100); do
	python3 -c "import socket; socket.create_connection(('127.0.0.1', $PORT), 1)" 2>/dev/null && break
	sleep 0.1
done
t0=$(date +%s%N)
is "after a restart, DNS down: enforce.test from the SQLite cache" "$(q1 'postfix enforce.test')" "$OK_ENFORCE"
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
if [ "$ms" -lt 1500 ]; then ok "no wait for the network (${ms} ms)"; else not_ok "no wait for the network (${ms} ms)"; fi
sleep 0.3
like "answered from the policy cache, refreshed behind" "$(cat "$tmp/d2.log")" "enforce.test: answered from the policy cache"
kill -TERM "$DPID"
wait "$DPID"
is "restart: SIGTERM exit 0" "$?" 0

# --- privilege drop -----------------------------------------------------------------------
if id nobody >/dev/null 2>&1 && getent group nogroup >/dev/null; then
	cat >"$tmp/p.yml" <<Y
host: 127.0.0.1
port: 18462
resolver: ["$RESOLVER"]
ca_file: $CA_FILE
cache:
  type: sqlite
  options:
    filename: $tmp/pcache/policies.db
Y
	"$D" -c "$tmp/p.yml" -u nobody -g nogroup -l "$tmp/p.log" &
	PPID2=$!
	for _ in $(seq 1 100); do
		python3 -c "import socket; socket.create_connection(('127.0.0.1', 18462), 1)" 2>/dev/null && break
		sleep 0.1
	done
	is "-u nobody -g nogroup: uid and gid dropped" \
		"$(awk '/^Uid:/{print $2} /^Gid:/{print $2}' "/proc/$PPID2/status" | tr '\n' ' ')" \
		"$(id -u nobody) $(getent group nogroup | cut -d: -f3) "
	is "-u nobody: no supplementary groups left" "$(awk '/^Groups:/{print $2}' "/proc/$PPID2/status")" \
		"$(getent group nogroup | cut -d: -f3)"
	is "-u nobody: lookups work" "$(timeout 30 python3 "$SM" 127.0.0.1:18462 'postfix enforce.test')" "$OK_ENFORCE"
	is "cache.options.filename: its directory made for the daemon's user" \
		"$(stat -c %U "$tmp/pcache" 2>/dev/null)" nobody
	kill -TERM "$PPID2"
	wait "$PPID2"
	is "-u nobody: SIGTERM exit 0" "$?" 0
	"$D" -c "$tmp/p.yml" -u no-such-user-xyz >"$tmp/p.out" 2>&1
	is "-u unknown user: exit 1" "$?" 1
	like "-u unknown user: says so" "$(cat "$tmp/p.out")" "unknown user"
else
	ok "# SKIP no user nobody / group nogroup"
fi

wait_port() { # wait_port PORT: until something accepts there (10 s)
	for _ in $(seq 1 100); do
		python3 -c "import socket; socket.create_connection(('127.0.0.1', $1), 1)" 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}
wait_log() { # wait_log FILE ERE [SECONDS]: until a line matches
	local i
	for i in $(seq 1 $(( ${3:-10} * 10 ))); do
		grep -Eq -- "$2" "$1" 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}

# --- a network cache backend that is down: the daemon starts and answers ------------------
# Nothing listens on 127.0.0.1:1; the Redis backend keeps reconnecting.
cat >"$tmp/r.yml" <<Y
host: 127.0.0.1
port: 18463
resolver: ["$RESOLVER"]
ca_file: $CA_FILE
cache:
  type: redis
  options:
    url: redis://127.0.0.1:1/0
    socket_timeout: 1
Y
"$D" -c "$tmp/r.yml" -l "$tmp/r.log" &
RPID=$!
wait_port 18463
is "Redis down: lookups still work" "$(timeout 30 python3 "$SM" 127.0.0.1:18463 'postfix enforce.test')" "$OK_ENFORCE"
like "Redis down: the failing backend is logged" "$(cat "$tmp/r.log")" "policy cache redis: failing|[Rr]edis.*(down|refused|unreachable|not connected)"
kill -TERM "$RPID"
wait "$RPID"
is "Redis down: SIGTERM exit 0" "$?" 0
# The peer's redis-py reads parameters from the URL's query string.
sed 's|url: .*|url: "redis://127.0.0.1:1?db=3\&socket_timeout=0.5\&max_connections=5"|' "$tmp/r.yml" >"$tmp/rq.yml"
"$D" -c "$tmp/rq.yml" -l "$tmp/rq.log" &
RPID=$!
wait_port 18463
is "Redis URL with parameters: lookups work" "$(timeout 30 python3 "$SM" 127.0.0.1:18463 'postfix enforce.test')" "$OK_ENFORCE"
like "Redis URL: socket_timeout from the query string" "$(cat "$tmp/rq.log")" "policy cache: Redis \\(timeout 500 ms\\)"
like "Redis URL: an unused parameter is named" "$(cat "$tmp/rq.log")" "parameter 'max_connections' is not used"
kill -TERM "$RPID"
wait "$RPID"
is "Redis URL with parameters: SIGTERM exit 0" "$?" 0
sed 's|url: .*|url: rediss://127.0.0.1:6380/0|' "$tmp/r.yml" >"$tmp/rt.yml"
"$D" --check-config -c "$tmp/rt.yml" >"$tmp/cc.out" 2>&1
is "rediss:// is refused by --check-config" "$?" 1
like "rediss:// says why" "$(cat "$tmp/cc.out")" "rediss:// \\(Redis over TLS\\) is not supported"
# redis_sentinel is not supported: an error line, then the internal cache
sed -e 's/type: redis/type: redis_sentinel/' -e 's/url: .*/sentinels: ["127.0.0.1:1"]\n    sentinel_master_name: m/' "$tmp/r.yml" >"$tmp/rs.yml"
"$D" -c "$tmp/rs.yml" -l "$tmp/rs.log" &
RPID=$!
wait_port 18463
like "redis_sentinel: error logged" "$(cat "$tmp/rs.log")" "redis_sentinel is not supported: using the internal cache"
is "redis_sentinel: lookups work (internal cache)" "$(timeout 30 python3 "$SM" 127.0.0.1:18463 'postfix enforce.test')" "$OK_ENFORCE"
kill -TERM "$RPID"
wait "$RPID"
is "redis_sentinel: SIGTERM exit 0" "$?" 0

# --- SIGHUP reloads the configuration -------------------------------------------------------
cat >"$tmp/h.yml" <<Y
host: 127.0.0.1
port: 18466
resolver: ["$RESOLVER"]
ca_file: $CA_FILE
cache:
  type: internal
Y
"$D" -c "$tmp/h.yml" -l "$tmp/h.log" &
HPID=$!
wait_port 18466
is "reload: before, unknown zone newz is default_zone" "$(timeout 30 python3 "$SM" 127.0.0.1:18466 'newz testing.test')" "NOTFOUND "
# a connection that stays open across the reload
exec {HC}<>/dev/tcp/127.0.0.1/18466
cat >>"$tmp/h.yml" <<Y
zones:
  newz:
    strict_testing: true
    require_sni: false
Y
kill -HUP "$HPID"
wait_log "$tmp/h.log" "reload: configuration applied"
is "reload: the new zone answers" "$(timeout 30 python3 "$SM" 127.0.0.1:18466 'newz testing.test')" \
	"OK secure match=mail.testing.test:.backup.testing.test"
printf '20:postfix enforce.test,' >&$HC
want="${#OK_ENFORCE}:$OK_ENFORCE,"
read -r -t 10 -N ${#want} got <&$HC
is "reload: a connection opened before it still works" "$got" "$want"
exec {HC}>&-
like "reload: answered from the memory it kept (no new fetch of enforce.test)" \
	"$(grep -c 'enforce.test: fetched' "$tmp/h.log")" "^1$"
cp "$tmp/h.yml" "$tmp/h.good"
printf 'port: [oops\n' >>"$tmp/h.yml"
kill -HUP "$HPID"
wait_log "$tmp/h.log" "has errors: keeping the running configuration"
like "reload: a broken file is refused with its error" "$(cat "$tmp/h.log")" "h.yml:[0-9]+:[0-9]+: .*\\[config\\."
is "reload: after a refused reload the zone still answers" "$(timeout 30 python3 "$SM" 127.0.0.1:18466 'newz testing.test')" \
	"OK secure match=mail.testing.test:.backup.testing.test"
sed 's/^port: 18466/port: 18467/' "$tmp/h.good" >"$tmp/h.yml"
kill -HUP "$HPID"
wait_log "$tmp/h.log" "listening socket .* changed: restart"
like "reload: a listener change asks for a restart" "$(cat "$tmp/h.log")" "reload: the listening socket .*changed: restart mta-stsd to apply it"
is "reload: still listening on the old port" "$(timeout 30 python3 "$SM" 127.0.0.1:18466 'postfix enforce.test')" "$OK_ENFORCE"
kill -TERM "$HPID"
wait "$HPID"
is "reload: SIGTERM exit 0" "$?" 0

# --- proactive refresh: refetches under an unchanged id, alerts on failures ----------------
IDC=$WDIR/www/idchange/.well-known/mta-sts.txt
cat >"$tmp/pr.yml" <<Y
host: 127.0.0.1
port: 18468
resolver: ["$RESOLVER"]
ca_file: $CA_FILE
cache_grace: 3600
cache:
  type: internal
proactive_policy_fetching:
  enabled: true
  interval: 2
  grace_ratio: 4
  concurrency_limit: 4
zones:
  strict:
    strict_testing: true
Y
"$D" -c "$tmp/pr.yml" -v debug -l "$tmp/pr.log" &
PPID_=$!
wait_port 18468
is "proactive: idchange.test first answer" "$(timeout 30 python3 "$SM" 127.0.0.1:18468 'strict idchange.test')" \
	"OK secure match=mail.idchange.test servername=hostname"
# The policy changes, the id does not: a sender that only compares ids never sees it.
printf 'version: STSv1\r\nmode: testing\r\nmx: mail.idchange.test\r\nmx: mx2.idchange.test\r\nmax_age: 86400\r\n' >"$IDC"
wait_log "$tmp/pr.log" "idchange.test: the policy changed but its id" 15
like "proactive: refetched under the same id and warned (rule 5)" "$(cat "$tmp/pr.log")" \
	"idchange.test: the policy changed but its id [^ ]+ did not"
is "proactive: the answer follows the refetched policy" "$(timeout 30 python3 "$SM" 127.0.0.1:18468 'strict idchange.test')" \
	"OK secure match=mail.idchange.test:mx2.idchange.test servername=hostname"
like "proactive: runs are spread and logged" "$(cat "$tmp/pr.log")" "proactive refresh: [0-9]+ of [0-9]+ cached domains due, spread over"
kill -HUP "$PPID_"
wait_log "$tmp/pr.log" "reload: configuration applied"
is "proactive: a reload with the same settings keeps its schedule" "$(grep -c 'proactive refresh every' "$tmp/pr.log")" 1
# Now the policy host serves garbage: refreshes fail, the cached policy stays,
# and after 3 failed runs in a row the log raises an alert (rules 40, 72).
printf 'this is not a policy\n' >"$IDC"
wait_log "$tmp/pr.log" "ALERT idchange.test: proactive refresh failed 3 times in a row" 30
like "proactive: alert after 3 failed refreshes" "$(cat "$tmp/pr.log")" \
	"ALERT idchange.test: proactive refresh failed 3 times in a row; the cached policy id [^ ]+ expires at"
is "proactive: the cached policy still answers" "$(timeout 30 python3 "$SM" 127.0.0.1:18468 'strict idchange.test')" \
	"OK secure match=mail.idchange.test:mx2.idchange.test servername=hostname"
kill -TERM "$PPID_"
wait "$PPID_"
is "proactive: SIGTERM exit 0" "$?" 0

# --- systemd: socket activation and sd_notify ---------------------------------------------
if command -v systemd-socket-activate >/dev/null; then
	cat >"$tmp/sa.yml" <<Y
host: 127.0.0.1
port: 18999
resolver: ["$RESOLVER"]
ca_file: $CA_FILE
cache:
  type: internal
Y
	NS=$tmp/notify.sock
	python3 - "$NS" >"$tmp/notify.out" 2>&1 <<'PY' &
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1]); s.settimeout(60)
try:
    while True:
        m = s.recv(4096).decode()
        print(m.replace("\n", " "), flush=True)
        if "STOPPING=1" in m: break
except socket.timeout:
    pass
PY
	NPID=$!
	for _ in $(seq 1 50); do [ -S "$NS" ] && break; sleep 0.1; done
	NOTIFY_SOCKET=$NS systemd-socket-activate -E NOTIFY_SOCKET -l 127.0.0.1:18465 "$D" -c "$tmp/sa.yml" -l "$tmp/sa.log" >"$tmp/sa.out" 2>&1 &
	SAPID=$!
	wait_port 18465
	is "socket activation: answers on the passed socket" "$(timeout 30 python3 "$SM" 127.0.0.1:18465 'postfix enforce.test')" "$OK_ENFORCE"
	like "socket activation: logged" "$(cat "$tmp/sa.log")" "socket activation: listening on the TCP socket from systemd"
	is "socket activation: the configured port is not used" \
		"$(python3 -c "import socket; socket.create_connection(('127.0.0.1', 18999), 1)" 2>/dev/null && echo open || echo closed)" closed
	wait_log "$tmp/notify.out" "READY=1"
	like "sd_notify: READY=1 with a status line" "$(cat "$tmp/notify.out")" "READY=1 STATUS=answering on the socket from systemd"
	kill -HUP "$SAPID"
	wait_log "$tmp/notify.out" "RELOADING=1"
	like "sd_notify: RELOADING=1 on SIGHUP" "$(cat "$tmp/notify.out")" "RELOADING=1"
	kill -TERM "$SAPID"
	wait "$SAPID"
	is "socket activation: SIGTERM exit 0" "$?" 0
	wait "$NPID"
	like "sd_notify: STOPPING=1 on SIGTERM" "$(cat "$tmp/notify.out")" "STOPPING=1"
else
	not_ok "systemd-socket-activate is missing (package systemd)"
fi

# --- https_proxy: policy fetches through an HTTP CONNECT proxy ------------------------------
# A minimal CONNECT proxy: logs each CONNECT line and tunnels every one to
# the world's policy hosts on 127.0.60.1:443 (nginx picks the host by SNI).
cat >"$tmp/proxy.py" <<'PY'
import socket, sys, threading
log = open(sys.argv[2], "a", buffering=1)
lis = socket.socket(); lis.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
lis.bind(("127.0.0.1", int(sys.argv[1]))); lis.listen(64)
def pipe(a, b):
    try:
        while True:
            d = a.recv(65536)
            if not d: break
            b.sendall(d)
    except OSError: pass
    finally:
        try: b.shutdown(socket.SHUT_WR)
        except OSError: pass
def serve(c):
    head = b""
    while b"\r\n\r\n" not in head:
        d = c.recv(4096)
        if not d: c.close(); return
        head += d
    log.write(head.split(b"\r\n")[0].decode() + "\n")
    up = socket.create_connection(("127.0.60.1", 443), 5)
    c.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
    threading.Thread(target=pipe, args=(up, c), daemon=True).start()
    pipe(c, up)
while True:
    c, _ = lis.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
PY
python3 "$tmp/proxy.py" 18477 "$tmp/proxy.log" &
PXPID=$!
wait_port 18477
cat >"$tmp/px.yml" <<Y
host: 127.0.0.1
port: 18478
resolver: ["$RESOLVER"]
ca_file: $CA_FILE
https_proxy: http://user:secret@127.0.0.1:18477
cache:
  type: internal
Y
"$D" -c "$tmp/px.yml" -l "$tmp/px.log" &
XPID=$!
wait_port 18478
is "https_proxy: the policy is fetched through the proxy" "$(timeout 30 python3 "$SM" 127.0.0.1:18478 'postfix enforce.test')" "$OK_ENFORCE"
like "https_proxy: the proxy saw the CONNECT" "$(cat "$tmp/proxy.log")" "^CONNECT mta-sts\.enforce\.test:443 HTTP/1\.1"
like "https_proxy: logged without the password" "$(cat "$tmp/px.log")" "through the proxy http://127\.0\.0\.1:18477 \(from https_proxy\)"
kill -TERM "$XPID"; wait "$XPID"
# The environment, as the peer reads it; `none` overrides it.
: >"$tmp/proxy.log"
sed -e 's/^port: 18478/port: 18479/' -e '/^https_proxy:/d' "$tmp/px.yml" >"$tmp/px2.yml"
HTTPS_PROXY=http://127.0.0.1:18477 "$D" -c "$tmp/px2.yml" -l "$tmp/px2.log" &
XPID=$!
wait_port 18479
is "HTTPS_PROXY from the environment: fetched" "$(timeout 30 python3 "$SM" 127.0.0.1:18479 'postfix split.test')" \
	"OK secure match=mail.split.test servername=hostname"
like "HTTPS_PROXY from the environment: through the proxy" "$(cat "$tmp/proxy.log")" "^CONNECT mta-sts\.split\.test:443"
kill -TERM "$XPID"; wait "$XPID"
: >"$tmp/proxy.log"
{ cat "$tmp/px2.yml"; printf 'https_proxy: none\n'; } >"$tmp/px3.yml"
HTTPS_PROXY=http://127.0.0.1:9 "$D" -c "$tmp/px3.yml" -l "$tmp/px3.log" &
XPID=$!
wait_port 18479
is "https_proxy: none ignores the environment" "$(timeout 30 python3 "$SM" 127.0.0.1:18479 'postfix cname.test')" \
	"OK secure match=mail.cname.test servername=hostname"
is "https_proxy: none: the proxy saw nothing" "$(wc -l <"$tmp/proxy.log")" 0
kill -TERM "$XPID"; wait "$XPID"
kill "$PXPID" 2>/dev/null; wait "$PXPID" 2>/dev/null

# --- the network module loads at the first fetch -----------------------------------------
cat >"$tmp/nm.yml" <<Y
host: 127.0.0.1
port: 18480
resolver: ["$RESOLVER"]
ca_file: $CA_FILE
cache:
  type: internal
Y
"$D" -c "$tmp/nm.yml" -l "$tmp/nm.log" &
NMPID=$!
wait_port 18480
maps() { grep -cE "libcurl|libssl|libpq|libhiredis|libsystemd|mtasts-net" "/proc/$NMPID/maps"; }
is "netmod: an idle daemon maps no libcurl, OpenSSL, libpq, hiredis or libsystemd" "$(maps)" 0
is "netmod: the first fetch works" "$(timeout 30 python3 "$SM" 127.0.0.1:18480 'postfix enforce.test')" "$OK_ENFORCE"
like "netmod: ... and has loaded the module" "$(grep -c 'mtasts-net.so' "/proc/$NMPID/maps")" "^[1-9]"
kill -TERM "$NMPID"; wait "$NMPID"
is "netmod: SIGTERM exit 0" "$?" 0
MTASTS_NETMOD=$tmp/no-such-module.so "$D" -c "$tmp/nm.yml" -l "$tmp/nm2.log" &
NMPID=$!
wait_port 18480
is "netmod missing: the daemon still answers (NOTFOUND)" "$(timeout 30 python3 "$SM" 127.0.0.1:18480 'postfix enforce.test')" "NOTFOUND "
like "netmod missing: the log names the module and what to do" "$(cat "$tmp/nm2.log")" \
	"no policy can be fetched: cannot load the network module .*no-such-module\.so.*set MTASTS_NETMOD"
like "netmod missing: a warning at start already" "$(cat "$tmp/nm2.log")" "network module .*no-such-module\.so is missing or unreadable"
is "netmod missing: [1.2.3.4] still NOTFOUND" "$(timeout 30 python3 "$SM" 127.0.0.1:18480 'postfix [1.2.3.4]')" "NOTFOUND "
kill -TERM "$NMPID"; wait "$NMPID"
is "netmod missing: SIGTERM exit 0" "$?" 0
MTASTS_NETMOD=$tmp/no-such-module.so "$D" --check-config -c "$tmp/badr.yml" >"$tmp/cc.out" 2>&1
is "netmod missing: --check-config of a Redis cache fails" "$?" 1
like "netmod missing: ... saying why" "$(cat "$tmp/cc.out")" "cannot load the network module"

# --- a connection with too many waiting requests is not read until they are answered -----
cat >"$tmp/bp.yml" <<Y
host: 127.0.0.1
port: 18481
resolver: ["$RESOLVER"]
ca_file: $CA_FILE
cache:
  type: internal
zones:
  tempz:
    temp_on_failure: true
    timeout: 1
Y
"$D" -c "$tmp/bp.yml" -v debug -l "$tmp/bp.log" &
BPPID=$!
wait_port 18481
# 1500 requests for a domain whose HTTPS host stalls, in one write: each
# waits the zone's 1 s; then one more request on the same connection.
got=$(timeout 60 python3 - <<'PY'
import socket
s = socket.create_connection(("127.0.0.1", 18481), 10); s.settimeout(20)
def ns(p): b = p.encode(); return str(len(b)).encode() + b":" + b + b","
s.sendall(ns("tempz stall.test") * 1500)
buf = b""; replies = []
def one():
    global buf
    while True:
        i = buf.find(b":")
        if i > 0:
            n = int(buf[:i])
            if len(buf) >= i + n + 2:
                r = buf[i + 1:i + 1 + n].decode(); buf = buf[i + n + 2:]; return r
        d = s.recv(65536)
        if not d: return None
        buf += d
temp = sum(1 for _ in range(1500) if (one() or "").startswith("TEMP "))
s.sendall(ns("postfix [192.0.2.1]"))
print(temp, repr(one()))
PY
)
is "backpressure: 1500 waiting requests all answered, then the connection reads again" "$got" "1500 'NOTFOUND '"
like "backpressure: reads paused and resumed" "$(cat "$tmp/bp.log")" "requests waiting: pausing reads.*"
like "backpressure: ... and resumed" "$(cat "$tmp/bp.log")" "conn [0-9]+: reading again"
kill -TERM "$BPPID"; wait "$BPPID"

# --- the answer map drops its least recently used entry when full ------------------------
cat >"$tmp/lru.yml" <<Y
host: 127.0.0.1
port: 18470
resolver: ["$RESOLVER"]
ca_file: $CA_FILE
cache_grace: 3600
metrics: 127.0.0.1:19480
cache:
  type: internal
  options:
    cache_size: 2
Y
"$D" -c "$tmp/lru.yml" -l "$tmp/lru.log" &
LRUPID=$!
wait_port 18470
for k in enforce.test split.test enforce.test cname.test enforce.test; do
	timeout 30 python3 "$SM" 127.0.0.1:18470 "postfix $k" >/dev/null
done
m=$(python3 -c "import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:19480/metrics', timeout=5).read().decode())" 2>/dev/null)
# enforce (miss) split (miss) enforce (hit) cname (miss: split goes) enforce (hit)
like "LRU: the recently used domain stays in a full map" "$m" "mtasts_answer_cache_hits_total 2"
like "LRU: the map holds cache_size entries" "$m" "mtasts_answer_cache_entries 2"
kill -TERM "$LRUPID"
wait "$LRUPID"

# --- idle_timeout and max_connections ------------------------------------------------------
cat >"$tmp/lim.yml" <<Y
host: 127.0.0.1
port: 18469
resolver: ["$RESOLVER"]
ca_file: $CA_FILE
cache:
  type: internal
idle_timeout: 1
max_connections: 2
Y
"$D" -c "$tmp/lim.yml" -l "$tmp/lim.log" &
LPID=$!
wait_port 18469
got=$(timeout 30 python3 - <<'PY'
import socket, time
a = socket.create_connection(("127.0.0.1", 18469)); b = socket.create_connection(("127.0.0.1", 18469))
time.sleep(0.2)
c = socket.create_connection(("127.0.0.1", 18469)); c.settimeout(5)
third = "closed" if c.recv(100) == b"" else "open"
a.settimeout(5); t0 = time.time()
idle = "closed" if a.recv(100) == b"" else "open"
print(third, idle, "%.1f" % (time.time() - t0))
PY
)
like "max_connections 2: a third connection is closed at once" "$got" "^closed "
like "idle_timeout 1: an idle connection is closed after about 1 s" "$got" "^closed closed (0\.[5-9]|1\.[0-9])$"
like "max_connections: logged" "$(cat "$tmp/lim.log")" "too many connections \(max_connections 2\)"
kill -TERM "$LPID"
wait "$LPID"

# --- UNIX socket, internal cache, temp_on_failure ------------------------------------------
cat >"$tmp/u.yml" <<Y
path: $tmp/s.sock
mode: 0660
shutdown_timeout: 8
resolver: ["$RESOLVER"]
ca_file: $CA_FILE
cache:
  type: internal
  options:
    cache_size: 100
zones:
  tempz:
    temp_on_failure: true
    timeout: 1
Y
python3 -c "import socket,sys; s=socket.socket(socket.AF_UNIX); s.bind(sys.argv[1])" "$tmp/s.sock"
"$D" -c "$tmp/u.yml" -l "$tmp/u.log" &
UPID=$!
for _ in $(seq 1 100); do [ -S "$tmp/s.sock" ] && python3 -c "import socket,sys; s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])" "$tmp/s.sock" 2>/dev/null && break; sleep 0.1; done
is "stale UNIX socket replaced, mode 0660" "$(stat -c %a "$tmp/s.sock" 2>/dev/null)" 660
is "UNIX socket: enforce.test" "$(timeout 30 python3 "$SM" "$tmp/s.sock" 'postfix enforce.test')" "$OK_ENFORCE"
got=$(timeout 30 python3 "$SM" "$tmp/s.sock" 'tempz stall.test')
like "temp_on_failure zone times out: TEMP" "$got" "^TEMP "
# The lookup of stall.test goes on (the fetch times out after 4 s). A
# request that joins it when SIGTERM arrives is still answered within
# shutdown_timeout (8 s); then the daemon closes the connection and exits.
timeout 30 python3 "$SM" "$tmp/s.sock" --eof 'postfix stall.test' >"$tmp/drain.out" 2>&1 &
CPID=$!
sleep 0.5
t0=$SECONDS
kill -TERM "$UPID"
wait "$UPID"
is "UNIX: SIGTERM exit 0" "$?" 0
wait "$CPID"
is "SIGTERM: the request in flight answered, then closed" "$(tr '\n' '|' <"$tmp/drain.out")" "NOTFOUND |EOF|"
secs=$((SECONDS - t0))
if [ "$secs" -lt 8 ]; then ok "drained in ${secs} s"; else not_ok "drained in ${secs} s"; fi
is "UNIX socket file removed on exit" "$([ -e "$tmp/s.sock" ] && echo left || echo gone)" gone

finish
