#!/usr/bin/env bash
# mta-stsd's Prometheus metrics (the `metrics` key) end to end, without any
# DNS: the daemon on 127.0.0.1:18501 (socketmap) and 127.0.0.1:19461
# (metrics), internal cache. Socketmap requests that need no network (an IP
# literal, a parent-domain probe, a malformed frame) move the counters; the
# scrape must show them, in valid exposition format. Then the HTTP side:
# /healthz, HEAD, 404, 405, a query string, a 10 KiB head (431), a head
# that never ends (408 after 5 s), more than 64 connections at once, a
# second daemon on the same metrics port, SIGHUP moving the listener, and
# SIGTERM with a metrics connection open. Speaks TAP. Needs $MTA_STSD (set by meson), python3, curl.
set -u
D=${MTA_STSD:?MTA_STSD must point at the mta-stsd binary}
command -v python3 >/dev/null || { echo "Bail out! python3 is missing"; exit 1; }
command -v curl >/dev/null || { echo "Bail out! curl is missing"; exit 1; }

tmp=$(mktemp -d)
DPID=
cleanup() {
	[ -n "$DPID" ] && kill "$DPID" 2>/dev/null && wait "$DPID" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT
# The TAP helpers (ok, not_ok, diag, is, like) of the world tests; this
# test starts no world.
# shellcheck source=tests/world/testlib.sh
. "${MTASTS_SOURCE_ROOT:-$(dirname "$0")/../..}/tests/world/testlib.sh"

PORT=18501
MPORT=19461
URL=http://127.0.0.1:$MPORT

# sm.py PORT [--raw DATA] PAYLOAD...: netstring requests in one write; one
# line per reply, then EOF when the daemon closed the connection.
SM=$tmp/sm.py
cat >"$SM" <<'PY'
import socket, sys
args = sys.argv[1:]
port = int(args.pop(0))
raw = None
if args and args[0] == "--raw":
    args.pop(0); raw = args.pop(0).encode()
s = socket.create_connection(("127.0.0.1", port), timeout=15)
def ns(p):
    b = p.encode(); return str(len(b)).encode() + b":" + b + b","
s.sendall(raw if raw is not None else b"".join(ns(p) for p in args))
if raw is None:
    s.shutdown(socket.SHUT_WR)
buf = b""
while True:
    d = s.recv(65536)
    if not d: break
    buf += d
out = []
while buf:
    i = buf.find(b":")
    if i <= 0: break
    k = int(buf[:i]); out.append(buf[i+1:i+1+k].decode()); buf = buf[i+2+k:]
for r in out: print(r)
print("EOF")
PY
sm() { timeout 30 python3 "$SM" "$PORT" "$@" 2>"$tmp/sm.err"; }

# http.py MODE ...: raw HTTP clients for what curl cannot send.
HT=$tmp/http.py
cat >"$HT" <<'PY'
import socket, sys, time
port = int(sys.argv[2]); mode = sys.argv[1]
def conn():
    s = socket.create_connection(("127.0.0.1", port), timeout=15); return s
def read_all(s):
    buf = b""
    try:
        while True:
            d = s.recv(65536)
            if not d: break
            buf += d
    except (ConnectionResetError, socket.timeout) as e:
        buf += ("<%s>" % type(e).__name__).encode()
    return buf
def status(buf):
    return buf.split(b"\r\n", 1)[0].decode(errors="replace")
if mode == "big":          # a 10 KiB head
    s = conn()
    s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 10240 + b"\r\n\r\n")
    print(status(read_all(s)))
elif mode == "slow":       # a head that never ends: answer and time
    s = conn(); t0 = time.time()
    s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
    b = read_all(s)
    print(status(b), "after %.0f s" % (time.time() - t0))
elif mode == "raw":        # sys.argv[3] with \r\n escapes
    s = conn(); s.sendall(sys.argv[3].encode().decode("unicode_escape").encode("latin-1"))
    print(status(read_all(s)))
elif mode == "many":       # 80 connections at once, then a request on each
    socks = [conn() for _ in range(80)]
    time.sleep(0.5)
    served = closed = 0
    for s in socks:
        try: s.sendall(b"GET /healthz HTTP/1.0\r\n\r\n")
        except OSError: pass
    for s in socks:
        b = read_all(s)
        if b.startswith(b"HTTP/1.1 200"): served += 1
        else: closed += 1
        s.close()
    print("served %d closed %d" % (served, closed))
elif mode == "hold":       # keep a connection open with half a head
    s = conn(); s.sendall(b"GET /met")
    print("open", flush=True)
    b = read_all(s)
    print("closed by the daemon" if not b or b.startswith(b"HTTP/") else "got %r" % b[:40])
PY
ht() { timeout 60 python3 "$HT" "$1" "$MPORT" "${@:2}" 2>>"$tmp/ht.err"; }

# Checks the exposition text on stdin: every line a comment or a sample,
# every sample's family declared by # TYPE (and # HELP) before it, label
# values properly quoted, histogram buckets cumulative with +Inf == _count.
FMT=$tmp/fmt.py
cat >"$FMT" <<'PY'
import re, sys
text = sys.stdin.read()
errs = []
if not text.endswith("\n"): errs.append("no final newline")
types, helps, seen = {}, set(), set()
sample = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*"(?:,[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*")*)?\})? (\S+)$')
buckets = {}
for line in text.splitlines():
    if line.startswith("# HELP "):
        helps.add(line.split(" ")[2]); continue
    if line.startswith("# TYPE "):
        _, _, name, t = line.split(" ")
        if name in types: errs.append("TYPE twice: " + name)
        types[name] = t; continue
    if line.startswith("#"): continue
    m = sample.match(line)
    if not m: errs.append("bad line: " + line); continue
    name, labels, value = m.group(1), m.group(3) or "", m.group(4)
    try: v = float(value)
    except ValueError: errs.append("bad value: " + line); continue
    fam = re.sub(r'_(bucket|sum|count)$', '', name)
    if fam not in types or types[fam] != "histogram": fam = name
    if fam not in types: errs.append("no TYPE before: " + line)
    if fam not in helps: errs.append("no HELP before: " + line)
    if (name, labels) in seen: errs.append("duplicate series: " + line)
    seen.add((name, labels))
    if name.endswith("_bucket"): buckets.setdefault(fam, []).append((labels, v))
    if name.endswith("_count") and fam in buckets:
        b = buckets[fam]
        vals = [x[1] for x in b]
        if vals != sorted(vals): errs.append(fam + ": buckets not cumulative")
        if not b[-1][0] == 'le="+Inf"': errs.append(fam + ": last bucket is not +Inf")
        if b[-1][1] != v: errs.append(fam + ": +Inf != _count")
print("\n".join(errs) if errs else "valid")
PY

metric() { # metric NAME_WITH_LABELS: its value in $tmp/m.txt
	awk -v k="$1" '$1 == k { print $2 }' "$tmp/m.txt"
}
scrape() { curl -s --noproxy '*' --max-time 10 "$URL/metrics" >"$tmp/m.txt"; }

cat >"$tmp/d.yml" <<Y
host: 127.0.0.1
port: $PORT
metrics: "127.0.0.1:$MPORT"
shutdown_timeout: 5
resolver: ["127.0.0.1:9"]
state_dir: $tmp/state
cache:
  type: internal
Y
"$D" --check-config -c "$tmp/d.yml" >"$tmp/cc.out" 2>&1
is "--check-config with metrics: exit 0" "$?" 0 || diag "$tmp/cc.out"

"$D" -c "$tmp/d.yml" -v debug -l "$tmp/d.log" --disable-uvloop &
DPID=$!
up=no
for _ in $(seq 1 100); do
	if python3 -c "import socket; socket.create_connection(('127.0.0.1', $MPORT), 1)" 2>/dev/null &&
		python3 -c "import socket; socket.create_connection(('127.0.0.1', $PORT), 1)" 2>/dev/null; then
		up=yes; break
	fi
	sleep 0.1
done
is "daemon listens on $PORT and metrics on $MPORT" "$up" yes
if [ "$up" != yes ]; then diag "$tmp/d.log"; echo "Bail out! daemon did not start"; echo "1..$n"; exit 1; fi

# --- /healthz and the first scrape --------------------------------------------------
is "GET /healthz" "$(curl -s --noproxy '*' --max-time 10 -w ' %{http_code}' "$URL/healthz")" "ok
 200"
curl -s --noproxy '*' --max-time 10 -D "$tmp/h.txt" -o "$tmp/m.txt" "$URL/metrics"
like "GET /metrics: 200" "$(head -1 "$tmp/h.txt")" "^HTTP/1.1 200 OK"
like "GET /metrics: Content-Type 0.0.4" "$(tr -d '\r' <"$tmp/h.txt")" \
	"Content-Type: text/plain; version=0.0.4; charset=utf-8"
like "GET /metrics: Connection: close" "$(tr -d '\r' <"$tmp/h.txt")" "Connection: close"
is "GET /metrics: Content-Length is the body" \
	"$(tr -d '\r' <"$tmp/h.txt" | sed -n 's/^Content-Length: //p')" "$(wc -c <"$tmp/m.txt" | tr -d ' ')"
is "fresh: requests_total{result=\"notfound\"} 0" "$(metric 'mtasts_requests_total{result="notfound"}')" 0
is "fresh: request_duration_seconds_count 0" "$(metric mtasts_request_duration_seconds_count)" 0
version=$("$D" --version 2>&1 | awk '{ print $2 }')
is "build_info carries the version" "$(metric "mtasts_build_info{version=\"$version\"}")" 1
is "fresh: exposition format valid" "$(python3 "$FMT" <"$tmp/m.txt")" valid

# --- socketmap requests without DNS -----------------------------------------------
is "[192.0.2.1]: NOTFOUND" "$(sm 'postfix [192.0.2.1]' | tr '\n' '|')" "NOTFOUND |EOF|"
is "[192.0.2.1]:25 and [IPv6:2001:db8::1]: NOTFOUND" \
	"$(sm 'postfix [192.0.2.1]:25' 'postfix [IPv6:2001:db8::1]' | tr '\n' '|')" "NOTFOUND |NOTFOUND |EOF|"
is ".example.com (parent probe): NOTFOUND" "$(sm 'postfix .example.com' | tr '\n' '|')" "NOTFOUND |EOF|"
like "malformed frame: PERM" "$(sm --raw 'abc' | tr '\n' '|')" "^PERM [^|]*\|EOF\|$"

# the connections gauge falls back to 0 once the clients are gone
for _ in $(seq 1 50); do
	scrape
	[ "$(metric mtasts_connections)" = 0 ] && break
	sleep 0.1
done
is "requests_total{result=\"notfound\"} 4" "$(metric 'mtasts_requests_total{result="notfound"}')" 4
is "requests_total{result=\"perm\"} 1" "$(metric 'mtasts_requests_total{result="perm"}')" 1
is "requests_total{result=\"ok\"} 0" "$(metric 'mtasts_requests_total{result="ok"}')" 0
is "requests_total{result=\"temp\"} 0" "$(metric 'mtasts_requests_total{result="temp"}')" 0
is "request_duration_seconds_count 5" "$(metric mtasts_request_duration_seconds_count)" 5
is "request_duration_seconds_bucket{le=\"+Inf\"} 5" \
	"$(metric 'mtasts_request_duration_seconds_bucket{le="+Inf"}')" 5
like "request_duration_seconds_bucket{le=\"0.00005\"} present" \
	"$(metric 'mtasts_request_duration_seconds_bucket{le="0.00005"}')" '^[0-5]$'
is "connections back to 0" "$(metric mtasts_connections)" 0
like "backend_up is 0 or 1" "$(metric mtasts_backend_up)" '^[01]$'
for k in mtasts_answer_cache_hits_total mtasts_answer_cache_misses_total \
	mtasts_answer_cache_entries 'mtasts_proactive_refreshes_total{outcome="ok"}' \
	'mtasts_proactive_refreshes_total{outcome="failed"}'; do
	like "$k present" "$(metric "$k")" '^[0-9]+$'
done
like "fetches_total declared" "$(cat "$tmp/m.txt")" "# TYPE mtasts_fetches_total counter"
is "after requests: exposition format valid" "$(python3 "$FMT" <"$tmp/m.txt")" valid

# --- the HTTP side --------------------------------------------------------------------
curl -s --noproxy '*' --max-time 10 -I "$URL/metrics" >"$tmp/head.txt"
like "HEAD /metrics: 200" "$(head -1 "$tmp/head.txt")" "^HTTP/1.1 200 OK"
like "HEAD /metrics: Content-Length of a scrape" \
	"$(tr -d '\r' <"$tmp/head.txt" | sed -n 's/^Content-Length: //p')" '^[0-9]{3,}$'
is "GET /metrics?x=1 (query string)" \
	"$(curl -s --noproxy '*' --max-time 10 -o /dev/null -w '%{http_code}' "$URL/metrics?x=1")" 200
is "GET /nope: 404" \
	"$(curl -s --noproxy '*' --max-time 10 -o /dev/null -w '%{http_code}' "$URL/nope")" 404
is "GET /: 404" "$(curl -s --noproxy '*' --max-time 10 -o /dev/null -w '%{http_code}' "$URL/")" 404
is "POST /metrics: 405" \
	"$(curl -s --noproxy '*' --max-time 10 -o /dev/null -w '%{http_code}' -d x "$URL/metrics")" 405
like "405 names the methods" \
	"$(curl -s --noproxy '*' --max-time 10 -D - -o /dev/null -X DELETE "$URL/healthz" | tr -d '\r')" \
	"Allow: GET, HEAD"
like "10 KiB head: 431 (curl)" \
	"$(curl -s --noproxy '*' --max-time 10 -o /dev/null -w '%{http_code}' \
		-H "X-Big: $(head -c 10240 /dev/zero | tr '\0' a)" "$URL/metrics")" '^(431|400)$'
like "10 KiB head: 431 (raw)" "$(ht big)" "^HTTP/1.1 431 "
is "HTTP/0.9 request line: 400" "$(ht raw 'GET /metrics\r\n\r\n')" "HTTP/1.1 400 Bad Request"
is "header folding: 400" "$(ht raw 'GET /metrics HTTP/1.1\r\nHost: x\r\nX: a\r\n b\r\n\r\n')" \
	"HTTP/1.1 400 Bad Request"
is "HTTP/1.1 without Host: 400" "$(ht raw 'GET /metrics HTTP/1.1\r\n\r\n')" "HTTP/1.1 400 Bad Request"
is "HTTP/2.0: 505" "$(ht raw 'GET /metrics HTTP/2.0\r\n\r\n')" "HTTP/1.1 505 HTTP Version Not Supported"
is "a socketmap request on the metrics port: 400" "$(ht raw '22:postfix example.com:25,')" \
	"HTTP/1.1 400 Bad Request"
like "no complete head in 5 s: 408" "$(ht slow)" "^HTTP/1.1 408 Request Timeout after [56] s$"
sleep 0.5
# 64 at most; a connection of the checks above may still be closing
like "80 connections at once: 64 served, 16 closed" "$(ht many)" "^served (6[0-4]) closed (1[6-9]|20)$"
sleep 0.5
is "still serving afterwards" \
	"$(curl -s --noproxy '*' --max-time 10 -o /dev/null -w '%{http_code}' "$URL/healthz")" 200
is "socketmap still answers" "$(sm 'postfix [192.0.2.1]' | tr '\n' '|')" "NOTFOUND |EOF|"

# --- a second daemon on the same metrics port ---------------------------------------
sed -e "s/^port: .*/port: $((PORT + 1))/" "$tmp/d.yml" >"$tmp/d2.yml"
timeout 20 "$D" -c "$tmp/d2.yml" -l "$tmp/d2.log" --disable-uvloop >"$tmp/d2.out" 2>&1
rc=$?
like "metrics port in use: the second daemon fails" "$rc" '^[1-9]'
like "metrics port in use: the reason is given" "$(cat "$tmp/d2.log" "$tmp/d2.out" 2>/dev/null)" \
	"$MPORT.*(in use|EADDRINUSE)"

# --- SIGHUP moves the listener; the counters stay ------------------------------------
scrape
before=$(metric 'mtasts_requests_total{result="notfound"}')
sed -i -e "s/^metrics: .*/metrics: \"127.0.0.1:$((MPORT + 1))\"/" "$tmp/d.yml"
kill -HUP "$DPID"
moved=no
for _ in $(seq 1 50); do
	if python3 -c "import socket; socket.create_connection(('127.0.0.1', $((MPORT + 1))), 1)" 2>/dev/null; then
		moved=yes; break
	fi
	sleep 0.1
done
is "SIGHUP: metrics on the new port" "$moved" yes
is "SIGHUP: the old port is closed" \
	"$(curl -s --noproxy '*' --max-time 5 -o /dev/null -w '%{http_code}' "$URL/healthz")" 000
MPORT=$((MPORT + 1))
URL=http://127.0.0.1:$MPORT
scrape
is "SIGHUP: counters kept ($before NOTFOUND)" "$(metric 'mtasts_requests_total{result="notfound"}')" "$before"
is "SIGHUP: exposition format valid" "$(python3 "$FMT" <"$tmp/m.txt")" valid

# --- SIGTERM with a metrics connection open ----------------------------------------
ht hold >"$tmp/hold.out" &
HPID=$!
for _ in $(seq 1 50); do grep -q open "$tmp/hold.out" 2>/dev/null && break; sleep 0.1; done
t0=$(date +%s%N)
kill -TERM "$DPID"
wait "$DPID"
rc=$?
t1=$(date +%s%N)
DPID=
is "SIGTERM: exit 0" "$rc" 0
ms=$(( (t1 - t0) / 1000000 ))
if [ "$ms" -lt 3000 ]; then ok "SIGTERM: out in ${ms} ms with a metrics connection open"; else
	not_ok "SIGTERM: out in ${ms} ms with a metrics connection open"; fi
wait "$HPID"
is "the open metrics connection was closed" "$(tail -1 "$tmp/hold.out")" "closed by the daemon"
like "no error logged" "$(grep -ci 'error' "$tmp/d.log")" '^0$' || grep -i error "$tmp/d.log" | diag

echo "1..$n"
[ "$fails" -eq 0 ]
