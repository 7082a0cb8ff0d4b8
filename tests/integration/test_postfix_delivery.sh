#!/usr/bin/env bash
# A real Postfix sends mail through mta-stsd, end to end, against the local
# test world (tests/world): knotd, nginx and the world's Postfix smtpd
# instances on 127.0.70.x:25, which accept mail for the deliver-*.test
# domains and discard it (logged in $WDIR/logs/postfix.log).
#
# The sending Postfix is a private instance in the test's temp dir
# (`postfix -c $S/postfix`, every service chroot n, no inet service), with
#   smtp_tls_security_level = may, smtp_tls_CAfile = the world CA,
#   smtp_tls_policy_maps = socketmap:inet:127.0.0.1:18491:postfix
# answered by an mta-stsd started here. Postfix finds MX hosts through
# /etc/resolv.conf, so it runs in a private mount namespace where a
# resolv.conf naming the world's knotd (127.0.54.1) is bind-mounted over
# /etc/resolv.conf. Its smtp client binds 127.0.72.1 (the world's log shows
# each session as client=unknown[127.0.72.1]).
#
#   deliver-enforce     enforce, MX valid             -> sent, Verified TLS
#   deliver-badcert     enforce, MX untrusted CA      -> deferred, not trusted
#   deliver-wrongname   enforce, MX cert other name   -> deferred, not verified
#   deliver-mxmismatch  enforce, MX not in policy mx  -> deferred, not verified
#   deliver-testing     testing, MX untrusted CA      -> sent (opportunistic TLS)
#   deliver-none        none,    MX cert other name   -> sent (opportunistic TLS)
#
# Then mta-stsd's answer for each domain, through the socketmap directly and
# through Postfix's own socketmap client (postmap -q), so that a failure says
# whether the daemon or Postfix misbehaved. Speaks TAP. Needs root, postfix,
# python3, unshare and mount (util-linux); $MTA_STSD is set by meson.
set -u
D=${MTA_STSD:?MTA_STSD must point at the mta-stsd binary}
# shellcheck source=tests/world/testlib.sh
. "${MTASTS_SOURCE_ROOT:-$(dirname "$0")/../..}/tests/world/testlib.sh"

PATH=$PATH:/usr/sbin:/sbin
[ "$(id -u)" = 0 ] || { echo "Bail out! must run as root (Postfix, port 25, mount namespaces)"; exit 1; }
for t in python3:python3 postfix:postfix sendmail:postfix postqueue:postfix postmap:postfix \
	unshare:util-linux mount:mount; do
	command -v "${t%%:*}" >/dev/null 2>&1 ||
		{ echo "Bail out! ${t%%:*} is missing (package ${t#*:}); run scripts/install-deps"; exit 1; }
done
[ -x "$D" ] || { echo "Bail out! $D is not executable"; exit 1; }
# What is bind-mounted over (a symlink's target must exist).
[ -f /etc/resolv.conf ] || { echo "Bail out! /etc/resolv.conf is missing: nothing to bind-mount the world's resolver over"; exit 1; }

# shellcheck disable=SC2119
world_start

PORT=18491
SRC=127.0.72.1                  # the sending Postfix's source address
S=$tmp/sender                   # its files: S/postfix/{main.cf,master.cf,queue,data}
SLOG=$tmp/sender.log            # its log
RLOG=$WDIR/logs/postfix.log     # the receiving (world) Postfix's log
DPID=""

sender_stop() {
	local pid i
	pid=$(postfix_pid "$S") || return 0
	# TERM to the master is `postfix abort`: it takes its children along.
	kill -TERM "$pid" 2>/dev/null
	for ((i = 0; i < 100; i++)); do
		kill -0 "$pid" 2>/dev/null || return 0
		sleep 0.05
	done
	echo "# sending Postfix master $pid ignored TERM for 5 s; killing"
	kill -KILL "$pid" $(pgrep -P "$pid" 2>/dev/null) 2>/dev/null
	return 0
}
daemon_stop() {
	[ -n "$DPID" ] || return 0
	kill -TERM "$DPID" 2>/dev/null && wait "$DPID" 2>/dev/null
	DPID=""
	return 0
}
trap 'sender_stop; daemon_stop; world_stop' EXIT

wait_log() { # wait_log FILE ERE [SECONDS]: until a line of FILE matches (default 30 s)
	local i
	for ((i = 0; i < ${3:-30} * 10; i++)); do
		grep -qE -- "$2" "$1" 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}
ere() { printf '%s' "$1" | sed 's/[].[^$*+?(){}|\\]/\\&/g'; }   # ERE quoting

# --- mta-stsd ------------------------------------------------------------------------
cat >"$tmp/d.yml" <<Y
host: 127.0.0.1
port: $PORT
resolver: ["$RESOLVER"]
ca_file: $CA_FILE
state_dir: $tmp/state
cache:
  type: internal
default_zone:
  timeout: 4
Y
"$D" -c "$tmp/d.yml" -v debug -l "$tmp/d.log" --disable-uvloop &
DPID=$!
up=no
for _ in $(seq 1 100); do
	port_open 127.0.0.1 "$PORT" && { up=yes; break; }
	kill -0 "$DPID" 2>/dev/null || break
	sleep 0.1
done
if [ "$up" != yes ]; then diag "$tmp/d.log"; echo "Bail out! mta-stsd did not listen on 127.0.0.1:$PORT"; exit 1; fi
ok "mta-stsd listens on 127.0.0.1:$PORT"

# --- the sending Postfix ------------------------------------------------------------------
mkdir -p "$S/postfix"
chmod o+x "$tmp" "$S"       # its daemons (user postfix) open S/postfix/data by path
postfix_dirs "$S"           # world.sh: queue and data directories as post-install makes them
cat >"$S/postfix/main.cf" <<CF
# Sending Postfix of tests/integration/test_postfix_delivery.sh
compatibility_level = 3.6
queue_directory = $S/postfix/queue
data_directory = $S/postfix/data
meta_directory = /etc/postfix
mail_owner = postfix
setgid_group = postdrop
myhostname = sender.mtasts-delivery.test
mydomain = mtasts-delivery.test
myorigin = \$myhostname
# No inet service at all (mail comes in by sendmail); 127.0.72.1 is not an
# interface address, so this only names one that is.
inet_interfaces = loopback-only
inet_protocols = ipv4
mynetworks = 127.0.0.1/32
mydestination =
relay_domains =
relayhost =
local_recipient_maps =
alias_maps =
alias_database =
smtp_bind_address = $SRC
smtp_address_preference = ipv4
smtp_connect_timeout = 5s
smtp_tls_security_level = may
smtp_tls_CAfile = $CA_FILE
smtp_tls_loglevel = 1
smtp_tls_session_cache_database =
smtp_tls_policy_maps = socketmap:inet:127.0.0.1:$PORT:postfix
# deferred mail is retried (and seen) within seconds, and never bounced here
queue_run_delay = 2s
minimal_backoff_time = 2s
maximal_backoff_time = 4s
maximal_queue_lifetime = 1h
bounce_queue_lifetime = 1h
delay_warning_time = 0
maillog_file = $SLOG
maillog_file_prefixes = $tmp
syslog_name = postfix-sender
biff = no
CF
cat >"$S/postfix/master.cf" <<'CF'
# Sending Postfix of tests/integration/test_postfix_delivery.sh: no chroot.
# service type private unpriv chroot wakeup maxproc command
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
CF
# Postfix waits 2 s for a main.cf modified within the last second or two.
touch -d "@$(($(date +%s) - 10))" "$S/postfix/main.cf" "$S/postfix/master.cf"
touch "$S/postfix/queue/quick-start"     # skip the 3 s of integrity checks
printf 'nameserver %s\noptions timeout:2 attempts:2\n' "${RESOLVER%:*}" >"$tmp/resolv.conf"
[ "${RESOLVER##*:}" = 53 ] || { echo "Bail out! the world's resolver $RESOLVER is not on port 53: resolv.conf cannot name it"; exit 1; }
# The master daemon stays in the namespace unshare makes; so do its children.
# shellcheck disable=SC2016
if ! unshare -m --propagation private sh -c \
	'mount --bind "$1" /etc/resolv.conf && exec postfix -c "$2" start' sh "$tmp/resolv.conf" "$S/postfix" \
	</dev/null >"$tmp/start.out" 2>&1; then
	script -qec "postfix -c '$S/postfix' check" /dev/null </dev/null >>"$tmp/start.out" 2>&1
	diag "$tmp/start.out"
	[ -e "$SLOG" ] && diag "$SLOG"
	echo "Bail out! the sending Postfix did not start (unshare -m, mount --bind, postfix -c $S/postfix start)"
	exit 1
fi
MPID=""
for _ in $(seq 1 100); do MPID=$(postfix_pid "$S") && break; sleep 0.1; done
if [ -z "$MPID" ]; then diag "$tmp/start.out"; echo "Bail out! no master.pid for the sending Postfix"; exit 1; fi
ok "sending Postfix started (master $MPID)"
like "sending Postfix: its namespace's /etc/resolv.conf names the world's knotd" \
	"$(tr '\n' '|' <"/proc/$MPID/root/etc/resolv.conf" 2>&1)" "^nameserver $(ere "${RESOLVER%:*}")\|"
wait_log "$SLOG" "postfix-sender/master\[[0-9]+\]: daemon started" 10 ||
	{ diag "$SLOG"; echo "Bail out! the sending Postfix's log $SLOG never said 'daemon started'"; exit 1; }

# --- send one message per domain -------------------------------------------------------------
CASES=(enforce badcert wrongname mxmismatch testing none)
rcpt() { echo "rcpt-$1@deliver-$1.test"; }
for c in "${CASES[@]}"; do
	printf 'From: sender@sender.mtasts-delivery.test\nTo: %s\nSubject: mtasts delivery test %s\nMessage-ID: <%s.%s@sender.mtasts-delivery.test>\n\nMTA-STS delivery test, case %s.\n' \
		"$(rcpt "$c")" "$c" "$c" "$$" "$c" >"$tmp/msg.$c"
	if sendmail -C "$S/postfix" -f sender@sender.mtasts-delivery.test -i -- "$(rcpt "$c")" \
		<"$tmp/msg.$c" >"$tmp/sendmail.out" 2>&1; then
		ok "deliver-$c: submitted with sendmail -C"
	else
		not_ok "deliver-$c: submitted with sendmail -C"; diag "$tmp/sendmail.out"
	fi
done

# status LINE: the sending Postfix's first delivery outcome for $1's recipient
outcome() { grep -E "postfix-sender/smtp\[[0-9]+\]: [0-9A-F]+: to=<$(ere "$(rcpt "$1")")>, .* status=(sent|deferred|bounced) " "$SLOG" | head -n 1; }
recv_lines() { grep -F "to=<$(rcpt "$1")>" "$RLOG"; }   # the world Postfix's lines about $1's recipient

delivered() { # delivered CASE ADDR TLSKIND: sent to ADDR over TLS, logged at the receiver
	local c=$1 a=$2 kind=$3 mx line rq pid tls
	mx=mail.deliver-$c.test
	if ! wait_log "$SLOG" "to=<$(ere "$(rcpt "$c")")>, .* status=(sent|deferred|bounced) "; then
		not_ok "deliver-$c: an outcome within 30 s"; diag "$SLOG"; return
	fi
	line=$(outcome "$c")
	like "deliver-$c: status=sent via ${mx}[$a]:25" "$line" \
		"relay=$(ere "${mx}[$a]:25"), .* status=sent \(250 [^)]*queued as [0-9A-F]+\)"
	like "deliver-$c: $kind TLS connection to ${mx}[$a]:25" \
		"$(grep -E "postfix-sender/smtp\[[0-9]+\]: [A-Za-z]+ TLS connection established to $(ere "${mx}[$a]:25")" "$SLOG" | head -n 1)" \
		"$kind TLS connection established to $(ere "${mx}[$a]:25"): TLSv1\.[23] "
	rq=$(sed -n 's/.*queued as \([0-9A-F]*\)).*/\1/p' <<<"$line")
	if [ -z "$rq" ]; then not_ok "deliver-$c: the receiver's queue id"; return; fi
	if wait_log "$RLOG" "postfix-world/discard\[[0-9]+\]: $rq: to=<$(ere "$(rcpt "$c")")>, .*status=sent" 10; then
		ok "deliver-$c: the world's Postfix received it ($rq) and discarded it (status=sent)"
	else
		not_ok "deliver-$c: the world's Postfix received it ($rq) and discarded it (status=sent)"; diag "$RLOG"
	fi
	line=$(grep -E "postfix-world/$(ere "$a")/smtpd\[[0-9]+\]: $rq: client=" "$RLOG" | head -n 1)
	like "deliver-$c: smtpd $a:25 took it from $SRC" "$line" "client=unknown\[$(ere "$SRC")\]"
	# the receiving smtpd process's last TLS handshake before that line
	pid=$(sed -n 's/.*smtpd\[\([0-9]*\)\].*/\1/p' <<<"$line")
	tls=$(awk -v p="smtpd[$pid]:" -v q="$rq: client=" 'index($0, p) && /TLS connection established from/ { t = $0 }
		index($0, p) && index($0, q) { print t; exit }' "$RLOG")
	like "deliver-$c: smtpd $a:25 received it over TLS" "$tls" "TLS connection established from unknown\[$(ere "$SRC")\]: TLSv1\.[23] "
}

deferred() { # deferred CASE ADDR FAILURE: deferred, FAILURE (ERE) logged, never reached the receiver
	local c=$1 a=$2 failure=$3 mx line
	mx=mail.deliver-$c.test
	if ! wait_log "$SLOG" "to=<$(ere "$(rcpt "$c")")>, .* status=(sent|deferred|bounced) "; then
		not_ok "deliver-$c: an outcome within 30 s"; diag "$SLOG"; return
	fi
	line=$(outcome "$c")
	like "deliver-$c: status=deferred (Server certificate not verified)" "$line" \
		"relay=$(ere "${mx}[$a]:25"), .* status=deferred \(Server certificate not verified\)"
	like "deliver-$c: the verification failure is logged" \
		"$(grep -E "postfix-sender/smtp\[[0-9]+\]: .*certificate verification failed for $(ere "${mx}[$a]:25")" "$SLOG" | head -n 1)" \
		"certificate verification failed for $(ere "${mx}[$a]:25"): $failure"
	is "deliver-$c: nothing reached the world's Postfix for $(rcpt "$c")" "$(recv_lines "$c")" ""
	like "deliver-$c: still in the sending queue" "$(postqueue -c "$S/postfix" -p 2>&1 | tr -s ' \n' ' ')" \
		" $(ere "$(rcpt "$c")") "
}

delivered enforce "$SMTP_GOOD" Verified
deferred badcert "$SMTP_UNTRUSTED" "untrusted issuer /CN=mtasts untrusted CA"
deferred wrongname "$SMTP_WRONGNAME" "num=62:hostname mismatch"
deferred mxmismatch "$SMTP_GOOD" "num=62:hostname mismatch"
delivered testing "$SMTP_UNTRUSTED" Untrusted
delivered none "$SMTP_WRONGNAME" Trusted

# A retry of the deferred mail (postqueue -f) fails the same way.
postqueue -c "$S/postfix" -f >/dev/null 2>&1
ndeferred() { grep -cE "to=<$(ere "$(rcpt "$1")")>, .* status=deferred " "$SLOG"; }
for c in badcert wrongname mxmismatch; do
	for _ in $(seq 1 300); do [ "$(ndeferred "$c")" -ge 2 ] && break; sleep 0.1; done
	if [ "$(ndeferred "$c")" -ge 2 ]; then
		ok "deliver-$c: deferred again on retry"
	else
		not_ok "deliver-$c: deferred again on retry"; grep -F "$(rcpt "$c")" "$SLOG" | diag
	fi
	is "deliver-$c: never sent" "$(grep -E "to=<$(ere "$(rcpt "$c")")>, .* status=sent " "$SLOG"; recv_lines "$c")" ""
done
is "no mail bounced" "$(grep -E 'status=bounced' "$SLOG")" ""

# --- what mta-stsd answered --------------------------------------------------------------------
want() { # want CASE: the daemon's reply for deliver-CASE.test
	case $1 in
	testing | none) echo "NOTFOUND " ;;
	mxmismatch) echo "OK secure match=mail.elsewhere.test servername=hostname" ;;
	*) echo "OK secure match=mail.deliver-$1.test servername=hostname" ;;
	esac
}
# Nobody but the sending Postfix has asked the daemon yet (debug log: "HOST -> REPLY").
for c in "${CASES[@]}"; do
	like "mta-stsd answered Postfix for deliver-$c.test: $(want "$c")" \
		"$(grep -F "deliver-$c.test -> " "$tmp/d.log" | head -n 1)" "deliver-$c\.test -> $(ere "$(want "$c")")\$"
done
sm() { # sm KEY: one socketmap request; prints the reply's payload
	timeout 20 python3 - "$PORT" "$1" <<'PY' 2>&1
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=15)
q = sys.argv[2].encode()
s.sendall(str(len(q)).encode() + b":" + q + b",")
buf = b""
while True:
    i = buf.find(b":")
    if i > 0 and len(buf) >= i + 2 + int(buf[:i]):
        print(buf[i + 1:i + 1 + int(buf[:i])].decode())
        break
    d = s.recv(4096)
    if not d:
        print("<closed>")
        break
    buf += d
PY
}
for c in "${CASES[@]}"; do
	is "socketmap: postfix deliver-$c.test" "$(sm "postfix deliver-$c.test")" "$(want "$c")"
	w=$(want "$c")
	[ "$w" = "NOTFOUND " ] && w=""
	is "postmap -q deliver-$c.test (Postfix's socketmap client)" \
		"$(postmap -c "$S/postfix" -q "deliver-$c.test" "socketmap:inet:127.0.0.1:$PORT:postfix" 2>&1)" "${w#OK }"
done

# --- stop ----------------------------------------------------------------------------------------
sender_stop
ok "sending Postfix stopped"
kill -TERM "$DPID" 2>/dev/null
wait "$DPID"
is "mta-stsd: SIGTERM exit 0" "$?" 0
DPID=""
finish
