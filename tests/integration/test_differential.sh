#!/usr/bin/env bash
# Differential test: mta-stsd against postfix-mta-sts-resolver 1.1.2 (the
# Debian package, /usr/bin/mta-sts-daemon: "the peer"), both answering
# socketmap lookups against the local test world (tests/world).
#
# Both daemons read the same configuration (default_zone plus the zones
# strict, nosni and tempz, with mta-stsd's own keys resolver, ca_file and
# temp_on_failure, which the peer ignores). One file cannot serve both: the
# listener is a single host/port (or path) and both would bind it, so there
# are two copies that differ only in the `port:` line (asserted below). The
# peer runs as in recipe A of shared/spec/peer-postfix-mta-sts-resolver.md:
# in a private mount namespace whose /etc/resolv.conf names the world's DNS
# server, with SSL_CERT_FILE = the world's CA.
#
# Every request of tests/data/differential.tsv goes to both daemons, each on
# a connection of its own, all in parallel (the peer waits up to the zone
# timeout, 4 s, on broken hosts). Each row asserts both replies; rows
# marked "same" also assert that the two replies are equal. match= lists are
# compared as sets (the peer's order is random). docs/differences.md explains
# every row that is not "same".
#
# DIFF_RECORD=FILE writes the observed replies as a new table to FILE
# (keeping the justification column of the rows that are already known).
# Speaks TAP. Needs $MTA_STSD (set by meson), python3, the peer, root.
set -u
D=${MTA_STSD:?MTA_STSD must point at the mta-stsd binary}
SRC=${MTASTS_SOURCE_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
TSV=$SRC/tests/data/differential.tsv
PEERD=/usr/bin/mta-sts-daemon
PEERPY=/usr/bin/python3
PY=python3

command -v "$PY" >/dev/null || { echo "Bail out! python3 is missing"; exit 1; }
[ -x "$PEERPY" ] || { echo "Bail out! $PEERPY is missing (the peer runs on the system python)"; exit 1; }
[ -x "$PEERD" ] || { echo "Bail out! $PEERD is missing: apt-get install postfix-mta-sts-resolver (scripts/install-deps)"; exit 1; }
if ! "$PEERPY" -c 'import postfix_mta_sts_resolver, aiodns, aiohttp, yaml' 2>/dev/null; then
	echo "Bail out! the peer's python modules do not import (postfix-mta-sts-resolver is broken)"
	exit 1
fi
command -v unshare >/dev/null || { echo "Bail out! unshare (util-linux) is missing"; exit 1; }
[ "$(id -u)" = 0 ] || { echo "Bail out! needs root (private mount namespace for the peer, world ports)"; exit 1; }
[ -r "$TSV" ] || { echo "Bail out! $TSV is missing"; exit 1; }

# shellcheck source=tests/world/testlib.sh
. "$SRC/tests/world/testlib.sh"
# shellcheck disable=SC2119
world_start

OPORT=18471 PPORT=18472
pids=()
diff_stop() {
	local p
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	world_stop
}
trap diff_stop EXIT

# --- one configuration for both ------------------------------------------------------
# timeout 4 is the default of both; zones inherit from the built-in
# defaults, not from default_zone (both daemons). mta-stsd's DNS tries last
# default_zone.timeout/4: well above the 300 ms after which the world's
# knot answers SERVFAIL for tempfail.test.
cat >"$tmp/ours.yml" <<Y
host: 127.0.0.1
port: $OPORT
cache:
  type: internal
default_zone:
  timeout: 4
  strict_testing: false
  require_sni: true
zones:
  strict:
    strict_testing: true
  nosni:
    require_sni: false
  tempz:
    temp_on_failure: true
# mta-stsd's own keys; the peer ignores them (it takes DNS from
# /etc/resolv.conf and its CAs from SSL_CERT_FILE)
resolver: ["$RESOLVER"]
ca_file: $CA_FILE
Y
sed "s/^port: $OPORT\$/port: $PPORT/" "$tmp/ours.yml" >"$tmp/peer.yml"
is "the two configuration copies differ only in the port" \
	"$(diff "$tmp/ours.yml" "$tmp/peer.yml" | grep '^[<>]' | tr '\n' '|')" \
	"< port: $OPORT|> port: $PPORT|"
"$D" --check-config -c "$tmp/ours.yml" >"$tmp/cc.out" 2>&1
is "mta-stsd --check-config accepts the file" "$?" 0 || diag "$tmp/cc.out"

echo "nameserver ${RESOLVER%:*}" >"$tmp/resolv.conf"

listening() { "$PY" -c "import socket,sys; socket.create_connection(('127.0.0.1', int(sys.argv[1])), 1)" "$1" 2>/dev/null; }
wait_port() { # wait_port PORT PID: 0 when something listens, 1 when PID died or 20 s passed
	for _ in $(seq 1 200); do
		listening "$1" && return 0
		kill -0 "$2" 2>/dev/null || return 1
		sleep 0.1
	done
	return 1
}
for p in $OPORT $PPORT; do
	if listening "$p"; then echo "Bail out! something already listens on 127.0.0.1:$p"; exit 1; fi
done

noproxy=(env -u http_proxy -u https_proxy -u HTTP_PROXY -u HTTPS_PROXY -u all_proxy -u ALL_PROXY)
start_daemons() { # start_daemons PHASE: both daemons, fresh (internal caches empty); or Bail out!
	"${noproxy[@]}" "$D" -c "$tmp/ours.yml" -v debug -l "$tmp/ours-$1.log" {WORLD_LOCK_FD}>&- &
	opid=$!; pids+=("$opid")
	# shellcheck disable=SC2016
	"${noproxy[@]}" unshare -m bash -c 'mount --bind "$1" /etc/resolv.conf &&
		SSL_CERT_FILE="$2" SSL_CERT_DIR=/nonexistent exec "$3" "$4" -v debug -c "$5" -l "$6"' \
		_ "$tmp/resolv.conf" "$CA_FILE" "$PEERPY" "$PEERD" "$tmp/peer.yml" "$tmp/peer-$1.log" \
		{WORLD_LOCK_FD}>&- 2>"$tmp/peer-$1.err" &
	ppid=$!; pids+=("$ppid")
	if wait_port $OPORT "$opid"; then ok "phase $1: mta-stsd listens on 127.0.0.1:$OPORT"; else
		not_ok "phase $1: mta-stsd listens on 127.0.0.1:$OPORT"; diag "$tmp/ours-$1.log"
		echo "Bail out! mta-stsd did not start"; exit 1
	fi
	if wait_port $PPORT "$ppid"; then ok "phase $1: the peer listens on 127.0.0.1:$PPORT"; else
		not_ok "phase $1: the peer listens on 127.0.0.1:$PPORT"; diag "$tmp/peer-$1.log"
		echo "Bail out! the peer (mta-sts-daemon) did not start"; exit 1
	fi
}
stop_daemons() { # stop_daemons PHASE: both must still run (no crash), then SIGTERM
	if kill -0 "$opid" 2>/dev/null; then ok "phase $1: mta-stsd still runs"; else
		not_ok "phase $1: mta-stsd still runs"; diag "$tmp/ours-$1.log"; fi
	if kill -0 "$ppid" 2>/dev/null; then ok "phase $1: the peer still runs"; else
		not_ok "phase $1: the peer still runs"; diag "$tmp/peer-$1.log"; fi
	kill "$opid" "$ppid" 2>/dev/null
	wait "$opid" "$ppid" 2>/dev/null
	for _ in $(seq 1 50); do listening $OPORT || listening $PPORT || break; sleep 0.1; done
}

start_daemons 1
if [ "$(readlink "/proc/$ppid/ns/mnt")" != "$(readlink /proc/self/ns/mnt)" ] &&
	grep -qx "nameserver ${RESOLVER%:*}" "/proc/$ppid/root/etc/resolv.conf"; then
	ok "the peer runs in a private mount namespace with the world's resolv.conf"
else
	not_ok "the peer runs in a private mount namespace with the world's resolv.conf"
fi
is "the host's /etc/resolv.conf is untouched" "$(cmp -s /etc/resolv.conf "$tmp/resolv.conf" && echo same || echo different)" different

# --- the queries ---------------------------------------------------------------------
cat >"$tmp/diff.py" <<'PY'
import concurrent.futures, os, socket, sys, time

tsv, oport, pport, first, phase = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
record = os.environ.get("DIFF_RECORD")

def unesc(s):
    """The table's escapes: \\\\ \\t \\n \\r \\xHH (a byte); other text is UTF-8."""
    out = bytearray(); b = s.encode(); i = 0
    while i < len(b):
        c = b[i:i+1]
        if c == b"\\" and i + 1 < len(b):
            n = b[i+1:i+2]
            if n == b"x":
                out.append(int(b[i+2:i+4], 16)); i += 4; continue
            out += {b"\\": b"\\", b"t": b"\t", b"n": b"\n", b"r": b"\r"}[n]; i += 2; continue
        out += c; i += 1
    return bytes(out)

def esc(b):
    out = []
    for ch in b.decode("utf-8", "backslashreplace"):
        o = ord(ch)
        if ch == "\\": out.append("\\\\")
        elif ch == "\t": out.append("\\t")
        elif ch == "\n": out.append("\\n")
        elif ch == "\r": out.append("\\r")
        elif o < 0x20 or o == 0x7f: out.append("\\x%02x" % o)
        else: out.append(ch)
    return "".join(out)

def ns(p):
    return str(len(p)).encode() + b":" + p + b","

def replies(sock, want_one):
    """Reads reply netstrings. want_one: return after the first (or give up
    after 20 s: "timeout"). Else read until EOF, 2 s of silence after a
    reply or 6 s in all ("open"). Returns (list, how) with how in
    closed/open/timeout/garbage."""
    buf = b""; out = []; deadline = time.time() + (20 if want_one else 6)
    while True:
        while True:
            i = buf.find(b":")
            if i <= 0: break
            try: n = int(buf[:i])
            except ValueError: return out, "garbage"
            if len(buf) < i + 2 + n: break
            if buf[i+1+n:i+2+n] != b",": return out, "garbage"
            out.append(buf[i+1:i+1+n].decode("utf-8", "backslashreplace")); buf = buf[i+2+n:]
            if want_one: return out, "open"
        left = deadline - time.time()
        if left <= 0: return out, "timeout" if want_one else "open"
        sock.settimeout(min(left, 2.0) if (not want_one and out) else left)
        try:
            d = sock.recv(65536)
        except socket.timeout:
            if not want_one and out: return out, "open"
            continue
        except ConnectionResetError:
            return out, "closed"
        if not d: return out, "closed"
        buf += d

def ask(port, zone, key):
    s = socket.create_connection(("127.0.0.1", port), timeout=20)
    try:
        if zone == "!raw":
            s.sendall(unesc(key))
            out, how = replies(s, False)
            return " || ".join(out + ["<%s>" % how])
        s.sendall(ns(zone.encode() + b" " + unesc(key)))
        out, how = replies(s, True)
        return out[0] if out else "<%s>" % how
    finally:
        s.close()

def canon(r):
    """match= lists as sets: sorted; everything else as is."""
    t = r.split(" ")
    for i, w in enumerate(t):
        if w.startswith("match="):
            t[i] = "match=" + ":".join(sorted(w[6:].split(":")))
    return " ".join(t)

rows = []; header = []; cur = "1"
for ln, line in enumerate(open(tsv, encoding="utf-8"), 1):
    line = line.rstrip("\n")
    if line.startswith("#@phase "):
        cur = line.split()[1]
    if cur != phase:
        continue
    if not line or line.startswith("#"):
        header.append(line); continue
    f = line.split("\t")
    if len(f) != 5:
        print("Bail out! %s:%d: %d fields, want 5 (zone key peer ours why)" % (tsv, ln, len(f))); sys.exit(1)
    rows.append(dict(ln=ln, zone=f[0], key=f[1], peer=f[2], ours=f[3], why=f[4]))

pool = concurrent.futures.ThreadPoolExecutor(max_workers=48)
t0 = time.time()
futs = [(r, pool.submit(ask, pport, r["zone"], r["key"]), pool.submit(ask, oport, r["zone"], r["key"])) for r in rows]
n = first; fails = 0; ndiff = 0; nsame = 0; tsv_bad = []; why_ids = set()
out_rows = []
for r, fp, fo in futs:
    try: gp = fp.result()
    except Exception as e: gp = "<error %s>" % e
    try: go = fo.result()
    except Exception as e: go = "<error %s>" % e
    same = canon(gp) == canon(go)
    wp = r["peer"]; wo = wp if r["ours"] == "same" else r["ours"]
    q = "%s %s" % (r["zone"], r["key"])
    okp = canon(gp) == canon(wp); oko = canon(go) == canon(wo)
    oks = same if r["ours"] == "same" else True
    n += 1
    if r["ours"] == "same": nsame += 1
    else: ndiff += 1; why_ids.update(r["why"].split())
    if r["ours"] == "same" and r["why"] not in ("", "-"):
        tsv_bad.append("line %d: 'same' row with a justification" % r["ln"])
    if r["ours"] != "same" and (r["why"] in ("", "-") or canon(r["ours"]) == canon(r["peer"])):
        tsv_bad.append("line %d: a difference needs a justification and two different replies" % r["ln"])
    if okp and oko and oks:
        if r["ours"] == "same": print("ok %d - %s: same: '%s'" % (n, q, go))
        else: print("ok %d - %s: peer '%s', mta-stsd '%s' [%s]" % (n, q, gp, go, r["why"]))
    else:
        fails += 1
        print("not ok %d - %s (tsv line %d)" % (n, q, r["ln"]))
        print("#   peer got: '%s'\n#       want: '%s'" % (gp, wp))
        print("#   ours got: '%s'\n#       want: '%s'%s" % (go, wo, "  (row says: same)" if r["ours"] == "same" else ""))
    why = r["why"]
    out_rows.append("\t".join([r["zone"], r["key"], gp, "same" if same else go,
                               "-" if same else (why if why not in ("", "-") else "TODO")]))
n += 1
if tsv_bad:
    fails += 1; print("not ok %d - the table is consistent" % n)
    for b in tsv_bad: print("#   " + b)
else:
    print("ok %d - phase %s: the table is consistent (%d rows: %d same, %d differences; ids: %s)"
          % (n, phase, len(rows), nsame, ndiff, " ".join(sorted(why_ids))))
n += 1
el = time.time() - t0
print(("ok" if el < 60 else "not ok") + " %d - phase %s: %d queries to each daemon answered in %.1f s" % (n, phase, len(rows), el))
if el >= 60: fails += 1
if record:
    with open(record + ".p" + phase, "w", encoding="utf-8") as f:
        f.write("\n".join(header + out_rows) + "\n")
    print("# recorded %d rows to %s.p%s" % (len(out_rows), record, phase))
print("# fails=%d" % fails)
with open(os.environ["DIFF_COUNT"], "w") as f: f.write("%d %d\n" % (n, fails))
PY

run_phase() { # run_phase N: the rows of phase N against both daemons
	rm -f "$tmp/count"
	DIFF_COUNT=$tmp/count timeout 120 "$PY" "$tmp/diff.py" "$TSV" $OPORT $PPORT "$n" "$1"
	local rc=$? f
	if [ -s "$tmp/count" ]; then
		read -r n f <"$tmp/count"
		fails=$((fails + f))
	else
		not_ok "phase $1: the query client finished (exit $rc)"
	fi
}

# Phase 1: the world as it is.
run_phase 1
like "phase 1: the peer logged its crashes on bad keys (spec section 5)" \
	"$(grep -a -c 'Exception in sender coro' "$tmp/peer-1.log") crashes" "^[1-9][0-9]* crashes$"
stop_daemons 1

# Phase 2: policies and TXT records the world does not serve, written over
# hosts of phase 1 (fresh daemons, so nothing of phase 1 is cached). Each
# host keeps its certificate and TXT id; only the part named changes.
pol() { printf '%s\r\n' "${@:2}" >"$WWW/$1/.well-known/mta-sts.txt"; }
pol split "version: STSv1" "mode: enforce" "mx: MAIL.Split.TEST" "mx: mail.split.test" \
	"mx: mail.split.test." "mx: *.backup.split.test" "mx: *.BACKUP.split.test" "max_age: 604800"
pol cname "version: STSv1" "mode: testing" "mode: enforce" "mx: mail.cname.test" "max_age: 604800"
pol idchange "version: STSv1" "mode: enforce" "mx: mail.idchange.test" "max_age: 31557601"
pol none "version: STSv1" "mode: enforce" "mx: mail.none.test" "max_age: 604800" "note: café"
pol testing "version: STSv1" "mode: enforce" "mx: *.*.testing.test" "max_age: 604800"
pol syntax-mode "version: STSv1" "mode: enforce" "mx: mail.syntax-mode.test ciphers=null protocols=TLSv1" "max_age: 604800"
pol syntax-maxage "version: STSv1" "mode: enforce" "mx: mail.syntax-maxage.test" "max_age: +86400"
pol syntax-missingmx "version: STSv1" "mode: enforce" "mx: 192.0.2.1" "max_age: 604800"
pol syntax-version "version: STSv1" "mode: enforce" "mx:" "mx: mail.syntax-version.test" "max_age: 604800"
pol syntax-html "version: STSv1" "mode: enforce" "" "mx: mail.syntax-html.test" "max_age: 604800"
pol syntax-barecr "# an MTA-STS policy" "version: STSv1" "mode: enforce" "mx: mail.syntax-barecr.test" "max_age: 604800"
pol syntax-empty $'\xef\xbb\xbfversion: STSv1' "mode: enforce" "mx: mail.syntax-empty.test" "max_age: 604800"
pol syntax-ulabel "version: STSv1" "mode: enforce" "mx: *.MX.Syntax-Ulabel.TEST" "max_age: 604800"
pol bigcl "version: STSv1" "mode: enforce" "mx: mail.bigcl.test" "mx: mail.bigcl.test" "max_age: 604800"
sed -i 's/"v=STSv1; id=twotxt2"/"v=STSv10; id=twotxt2"/' "$ZONE_FILE"
printf '_mta-sts.notxt TXT "v=STSv1; id=not-valid"\n' >>"$ZONE_FILE"
if "$SRC/tests/world/reload" "$WDIR" >"$tmp/reload.out" 2>&1; then ok "phase 2: world reloaded"; else
	not_ok "phase 2: world reloaded"; diag "$tmp/reload.out"; echo "Bail out! tests/world/reload failed"; exit 1
fi
start_daemons 2
run_phase 2
stop_daemons 2

if [ "$fails" -ne 0 ]; then
	for f in "$tmp"/peer-*.log "$tmp"/peer-*.err; do
		echo "# $f (tail):"; tail -n 20 "$f" | sed 's/^/#   /'
	done
fi
finish
