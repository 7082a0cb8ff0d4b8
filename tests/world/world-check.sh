# shellcheck shell=bash
# The part of the test world that `mta-sts check` needs: SMTP servers (a
# private Postfix with one smtpd per scenario on 127.0.70.N:25) and the
# check-NAME.test domains (zone records, policy files, certificates); and
# the deliver-NAME.test domains, whose mail those servers accept and
# discard (tests/integration/test_postfix_delivery.sh).
# Sourced by world.sh; up, down and selftest call these functions. The
# domains and what check is expected to find are listed in README.md.
# (127.0.71.0/24 belongs to tests/integration/smtp_postfix.sh: stay off it.)

SMTP_NET=127.0.70
SMTP_GOOD=$SMTP_NET.1           # valid STARTTLS; one certificate names every good MX host
SMTP_NOTLS=$SMTP_NET.2          # EHLO without STARTTLS (smtpd_tls_security_level=none)
SMTP_EXPIRED=$SMTP_NET.3        # certificate of mail.check-mxexpired.test, expired 2020-02-01
SMTP_WRONGNAME=$SMTP_NET.4      # certificate for mail.other.test (test CA)
SMTP_UNTRUSTED=$SMTP_NET.5      # certificate from the untrusted CA
SMTP_BENCH=$SMTP_NET.6          # mx.bench.test, the MX of every --scale bench domain
SMTP_ADDRS=("$SMTP_GOOD" "$SMTP_NOTLS" "$SMTP_EXPIRED" "$SMTP_WRONGNAME" "$SMTP_UNTRUSTED" "$SMTP_BENCH")

# check-NAME.test for NAME in:
CHECK_DOMAINS=(good nostarttls mxexpired mxwrongname mxuntrusted uncovered testing twobodies
	notlsrpt badtlsrpt dane nullmx mxcname misplaced idchange shortage hostexpired)

check_mx() { # check_mx NAME: the MX host of check-NAME.test ("" for the null MX)
	case $1 in
	nullmx) echo "" ;;
	mxcname) echo "mx.check-mxcname.test" ;;   # a CNAME to mail.check-good.test
	*) echo "mail.check-$1.test" ;;
	esac
}

check_smtp_addr() { # check_smtp_addr NAME: the SMTP server behind check-NAME.test's MX
	case $1 in
	nostarttls) echo "$SMTP_NOTLS" ;;
	mxexpired) echo "$SMTP_EXPIRED" ;;
	mxwrongname) echo "$SMTP_WRONGNAME" ;;
	mxuntrusted) echo "$SMTP_UNTRUSTED" ;;
	*) echo "$SMTP_GOOD" ;;
	esac
}

check_good_mx_names() { # every check-*.test MX host name the server at $SMTP_GOOD must be valid for
	local c
	for c in "${CHECK_DOMAINS[@]}"; do
		[ "$(check_smtp_addr "$c")" = "$SMTP_GOOD" ] && [ -n "$(check_mx "$c")" ] && check_mx "$c"
	done
	return 0
}

# --- deliver-*.test: mail delivery through mta-stsd and a real Postfix ------------------
# (tests/integration/test_postfix_delivery.sh). deliver-NAME.test for NAME in
# DELIVER_DOMAINS: `_mta-sts` TXT "v=STSv1; id=deliverNAME1", policy host
# mta-sts.deliver-NAME.test at $ADDR_OK (one certificate, pki/deliver.pem),
# MX 10 mail.deliver-NAME.test with the address of the SMTP server below.
# The world's Postfix relays mail for these domains (and no others) to its
# discard(8) transport, which logs each recipient to DIR/logs/postfix.log.
DELIVER_DOMAINS=(enforce badcert wrongname testing none mxmismatch)

deliver_mode() { # deliver_mode NAME: the mode of deliver-NAME.test's policy
	case $1 in
	testing) echo testing ;;
	none) echo none ;;
	*) echo enforce ;;
	esac
}

deliver_smtp_addr() { # deliver_smtp_addr NAME: the SMTP server behind mail.deliver-NAME.test
	case $1 in
	badcert | testing) echo "$SMTP_UNTRUSTED" ;;   # certificate from the untrusted CA
	wrongname | none) echo "$SMTP_WRONGNAME" ;;    # certificate for mail.other.test
	*) echo "$SMTP_GOOD" ;;                        # valid for mail.deliver-NAME.test
	esac
}

deliver_policy() { # deliver_policy NAME: deliver-NAME.test's policy (CRLF) on stdout
	case $1 in
	none) crlf "version: STSv1" "mode: none" "max_age: 86400" ;;
	# the MX (valid certificate for its own name) is not among the policy's mx
	mxmismatch) crlf "version: STSv1" "mode: enforce" "mx: mail.elsewhere.test" "max_age: 86400" ;;
	*) crlf "version: STSv1" "mode: $(deliver_mode "$1")" "mx: mail.deliver-$1.test" "max_age: 86400" ;;
	esac
}

deliver_good_mx_names() { # the deliver-*.test MX hosts at $SMTP_GOOD
	local c
	for c in "${DELIVER_DOMAINS[@]}"; do
		[ "$(deliver_smtp_addr "$c")" = "$SMTP_GOOD" ] && echo "mail.deliver-$c.test"
	done
	return 0
}

deliver_relay_domains() { # the domains the world's Postfix accepts mail for, comma-separated
	local c out=""
	for c in "${DELIVER_DOMAINS[@]}"; do out="$out, deliver-$c.test"; done
	echo "${out#, }"
}

# --- PKI (called by up; uses its leaf, ossl and die) --------------------------------------

expired_leaf() { # expired_leaf DIR OUT CN SAN: valid 2020-01-01 to 2020-02-01, test CA
	[ -s "$2" ] && return 0
	local db=$1/pki/cadb
	if [ ! -e "$db/index.txt" ]; then
		mkdir -p "$db/new"
		: >"$db/index.txt"
		echo 1000 >"$db/serial"
	fi
	ossl req -new -key "$1/pki/leaf.key" -subj "/CN=$3" -out "$2.csr"
	SAN=$4 ossl ca -batch -notext -in "$2.csr" -cert "$1/ca.pem" -keyfile "$1/pki/ca.key" \
		-startdate 20200101000000Z -enddate 20200201000000Z -out "$2.tmp"
	rm -f "$2.csr"
	mv "$2.tmp" "$2"
}

make_check_pki() { # make_check_pki DIR: certificates of the policy hosts and SMTP servers
	local d=$1/pki c sans
	mkdir -p "$d/smtp"
	# Policy hosts: one certificate for all of them but check-hostexpired's.
	sans=""
	for c in "${CHECK_DOMAINS[@]}"; do
		[ "$c" = hostexpired ] || sans="$sans,DNS:mta-sts.check-$c.test"
	done
	leaf "$d/check.pem" "mta-sts.check-good.test" "${sans#,}"
	sans=""
	for c in "${DELIVER_DOMAINS[@]}"; do sans="$sans,DNS:mta-sts.deliver-$c.test"; done
	leaf "$d/deliver.pem" "mta-sts.deliver-enforce.test" "${sans#,}"
	expired_leaf "$1" "$d/check-hostexpired.pem" "mta-sts.check-hostexpired.test" "DNS:mta-sts.check-hostexpired.test"
	# SMTP servers.
	sans=$({ check_good_mx_names; deliver_good_mx_names; } | sed 's/^/DNS:/' | paste -sd, -)
	leaf "$d/smtp/good.crt" "mail.check-good.test" "$sans"
	expired_leaf "$1" "$d/smtp/expired.crt" "mail.check-mxexpired.test" "DNS:mail.check-mxexpired.test"
	leaf "$d/smtp/wrongname.crt" "mail.other.test" "DNS:mail.other.test"
	leaf "$d/smtp/untrusted.crt" "mail.check-mxuntrusted.test" "DNS:mail.check-mxuntrusted.test" \
		"$d/untrusted-ca.pem" "$d/untrusted-ca.key"
	leaf "$d/smtp/bench.crt" "mx.bench.test" "DNS:mx.bench.test"
	# smtpd_tls_chain_files: the key, then its certificate.
	for c in good expired wrongname untrusted bench; do
		[ -s "$d/smtp/$c.pem" ] || cat "$d/leaf.key" "$d/smtp/$c.crt" >"$d/smtp/$c.pem"
	done
	chmod 700 "$d/smtp"
}

tlsa_311() { # tlsa_311 DIR: "3 1 1 <sha256 of the SPKI>" of the key every leaf uses
	openssl pkey -in "$1/pki/leaf.key" -pubout -outform DER 2>/dev/null |
		openssl dgst -sha256 -r | awk '{ print "3 1 1 " toupper($1) }'
}

# --- policies and zone records ----------------------------------------------------------

write_check_policies() { # write_check_policies DIR: www/check-*/ and the alternates in alt/
	local dir=$1 c
	rm -rf "$dir/alt"
	for c in "${CHECK_DOMAINS[@]}"; do
		mkdir -p "$dir/www/check-$c/.well-known"
		case $c in
		uncovered) crlf "version: STSv1" "mode: enforce" "mx: mail.elsewhere.test" "max_age: 604800" ;;
		testing) crlf "version: STSv1" "mode: testing" "mx: mail.check-testing.test" "max_age: 604800" ;;
		nullmx) crlf "version: STSv1" "mode: none" "max_age: 604800" ;;
		mxcname) crlf "version: STSv1" "mode: enforce" "mx: mx.check-mxcname.test" "max_age: 604800" ;;
		shortage) crlf "version: STSv1" "mode: enforce" "mx: mail.check-shortage.test" "max_age: 3600" ;;
		*) policy_std "check-$c" enforce ;;
		esac >"$dir/www/check-$c/.well-known/mta-sts.txt"
	done
	# twobodies: what its second address (127.0.60.2) serves: another max_age.
	mkdir -p "$dir/www/check-twobodies.b/.well-known"
	policy_std check-twobodies enforce 1209600 >"$dir/www/check-twobodies.b/.well-known/mta-sts.txt"
	# idchange: the body tests/world/swap puts in place (same TXT id): one
	# more mx pattern, which still covers the MX host.
	mkdir -p "$dir/alt/check-idchange"
	crlf "version: STSv1" "mode: enforce" "mx: mail.check-idchange.test" "mx: *.check-idchange.test" \
		"max_age: 604800" >"$dir/alt/check-idchange/mta-sts.txt"
	for c in "${DELIVER_DOMAINS[@]}"; do
		mkdir -p "$dir/www/deliver-$c/.well-known"
		deliver_policy "$c" >"$dir/www/deliver-$c/.well-known/mta-sts.txt"
	done
}

write_check_records() { # write_check_records DIR: the check-*.test records (origin test.)
	local dir=$1 c d tlsa
	tlsa=$(tlsa_311 "$dir")
	echo
	echo "; --- check-*.test: one fault each for mta-sts check (tests/world/README.md)"
	for c in "${CHECK_DOMAINS[@]}"; do
		d=check-$c
		echo
		echo "; $d"
		case $c in
		nullmx) echo "$d MX 0 ." ;;
		mxcname) echo "$d MX 10 mx.$d"
			echo "mx.$d CNAME mail.check-good" ;;
		*) echo "$d MX 10 mail.$d"
			echo "mail.$d A $(check_smtp_addr "$c")" ;;
		esac
		case $c in
		misplaced) echo "$d TXT \"v=STSv1; id=${d//-/}1\"" ;;   # at the apex, not at _mta-sts
		*) echo "_mta-sts.$d TXT \"v=STSv1; id=${d//-/}1\"" ;;
		esac
		case $c in
		twobodies) echo "mta-sts.$d A $ADDR_OK"
			echo "mta-sts.$d A $ADDR_SYNTAX" ;;
		hostexpired) echo "mta-sts.$d A $ADDR_TLS" ;;
		*) echo "mta-sts.$d A $ADDR_OK" ;;
		esac
		case $c in
		notlsrpt) ;;
		badtlsrpt) echo "_smtp._tls.$d TXT \"v=TLSRPTv1; rua=http://tlsrpt.$d.test/report\"" ;;
		*) echo "_smtp._tls.$d TXT \"v=TLSRPTv1; rua=mailto:tlsrpt@$d.test\"" ;;
		esac
		[ "$c" = dane ] && echo "_25._tcp.mail.$d TLSA $tlsa"
	done
	# mail.other.test is the name in the certificate of $SMTP_WRONGNAME
	echo
	echo "mail.other A $SMTP_WRONGNAME"
	echo
	echo "; --- deliver-*.test: mail delivery through mta-stsd (tests/world/README.md)"
	for c in "${DELIVER_DOMAINS[@]}"; do
		d=deliver-$c
		echo "$d MX 10 mail.$d"
		echo "mail.$d A $(deliver_smtp_addr "$c")"
		echo "_mta-sts.$d TXT \"v=STSv1; id=${d//-/}1\""
		echo "mta-sts.$d A $ADDR_OK"
	done
}

# --- nginx ----------------------------------------------------------------------------------

write_check_vhosts() { # write_check_vhosts DIR: server blocks of mta-sts.check-*.test
	local dir=$1 c addr cert root
	for c in "${CHECK_DOMAINS[@]}" twobodies.b; do
		addr=$ADDR_OK cert=$dir/pki/check.pem root=$dir/www/check-$c
		case $c in
		hostexpired) addr=$ADDR_TLS cert=$dir/pki/check-hostexpired.pem ;;
		twobodies.b) addr=$ADDR_SYNTAX ;;
		esac
		cat <<VH
    server {
        listen $addr:443 ssl;
        server_name mta-sts.check-${c%.b}.test;
        ssl_certificate $cert;
        root $root;
        location = /.well-known/mta-sts.txt { }
    }
VH
	done
	for c in "${DELIVER_DOMAINS[@]}"; do
		cat <<VH
    server {
        listen $ADDR_OK:443 ssl;
        server_name mta-sts.deliver-$c.test;
        ssl_certificate $dir/pki/deliver.pem;
        root $dir/www/deliver-$c;
        location = /.well-known/mta-sts.txt { }
    }
VH
	done
}

# --- Postfix ----------------------------------------------------------------------------------
# DIR/postfix/{main.cf,master.cf}, queue/ (queue_directory), data/
# (data_directory); logs in DIR/logs/postfix.log. Started with
# `postfix -c DIR/postfix start`; the master's pid file is
# DIR/postfix/queue/pid/master.pid and its working directory the queue.

postfix_pid() { # postfix_pid DIR: print the pid of DIR's Postfix master if it runs
	local f=$1/postfix/queue/pid/master.pid pid
	[ -s "$f" ] || return 1
	pid=$(tr -dc 0-9 <"$f")
	[ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] || return 1
	# A recycled pid belongs to someone else: the master works in DIR's queue.
	[ "$(readlink "/proc/$pid/cwd" 2>/dev/null)" = "$1/postfix/queue" ] || return 1
	echo "$pid"
}

write_postfix_conf() { # write_postfix_conf DIR: main.cf and master.cf in DIR/postfix
	local dir=$1 p=$1/postfix s=$1/pki/smtp
	cat >"$p/main.cf" <<CF
# Private Postfix of the mtasts test world; generated by tests/world/up.
# smtpd: banner, EHLO, STARTTLS, QUIT. Mail is accepted only for the
# deliver-*.test domains (relay_domains), and discarded (logged) there.
compatibility_level = 3.6
queue_directory = $p/queue
data_directory = $p/data
meta_directory = /etc/postfix
mail_owner = postfix
setgid_group = postdrop
myhostname = mx.world.test
mydomain = world.test
myorigin = \$myhostname
# master.cf binds each service to its own address; 127.0.70.x are not
# interface addresses, so this only names one that is.
inet_interfaces = loopback-only
inet_protocols = ipv4
mynetworks = 127.0.0.1/32
mydestination =
relay_domains = $(deliver_relay_domains)
relay_transport = discard
fast_flush_domains =
local_recipient_maps =
alias_maps =
alias_database =
smtpd_relay_restrictions = permit_auth_destination, reject
smtpd_banner = \$myhostname ESMTP mtasts test world
smtpd_peername_lookup = no
smtpd_client_connection_count_limit = 0
smtpd_client_connection_rate_limit = 0
smtpd_tls_security_level = may
smtpd_tls_chain_files = $s/good.pem
smtpd_tls_session_cache_database =
smtpd_tls_loglevel = 1
maillog_file = $dir/logs/postfix.log
maillog_file_prefixes = $dir/logs
syslog_name = postfix-world
biff = no
CF
	svc() { # svc ADDR MXNAME OPTIONS...
		local a=$1 n=$2
		shift 2
		echo "$a:25 inet n - n - - smtpd -o syslog_name=postfix-world/$a -o myhostname=$n $*"
	}
	{
		echo "# Private Postfix of the mtasts test world; generated by tests/world/up."
		echo "# service type private unpriv chroot wakeup maxproc command"
		svc "$SMTP_GOOD" mail.check-good.test "-o smtpd_tls_chain_files=$s/good.pem"
		svc "$SMTP_NOTLS" mail.check-nostarttls.test "-o smtpd_tls_security_level=none"
		svc "$SMTP_EXPIRED" mail.check-mxexpired.test "-o smtpd_tls_chain_files=$s/expired.pem"
		svc "$SMTP_WRONGNAME" mail.check-mxwrongname.test "-o smtpd_tls_chain_files=$s/wrongname.pem"
		svc "$SMTP_UNTRUSTED" mail.check-mxuntrusted.test "-o smtpd_tls_chain_files=$s/untrusted.pem"
		svc "$SMTP_BENCH" mx.bench.test "-o smtpd_tls_chain_files=$s/bench.pem"
		echo "tlsmgr unix - - n 1000? 1 tlsmgr"
		echo "postlog unix-dgram n - n - 1 postlogd"
		# what accepting mail for the deliver-*.test domains takes
		echo "cleanup unix n - n - 0 cleanup"
		echo "qmgr unix n - n 300 1 qmgr"
		echo "rewrite unix - - n - - trivial-rewrite"
		echo "bounce unix - - n - 0 bounce"
		echo "defer unix - - n - 0 bounce"
		echo "trace unix - - n - 0 bounce"
		echo "verify unix - - n - 1 verify"
		echo "proxymap unix - - n - - proxymap"
		echo "anvil unix - - n - 1 anvil"
		echo "error unix - - n - - error"
		echo "retry unix - - n - - error"
		echo "discard unix - - n - - discard"
	} >"$p/master.cf"
	unset -f svc
	# Postfix does not read a main.cf modified within the last second or two
	# (it might still be half written): it sleeps and retries, 2 s in all.
	touch -d "@$(($(date +%s) - 10))" "$p/main.cf" "$p/master.cf"
}

postfix_dirs() { # postfix_dirs DIR: the queue and data directories, as post-install makes them
	local p=$1/postfix q
	q=$p/queue
	install -d -o root -g root -m 755 "$q" "$q/pid"
	install -d -o postfix -g root -m 700 "$p/data" "$q/active" "$q/bounce" "$q/corrupt" \
		"$q/defer" "$q/deferred" "$q/flush" "$q/hold" "$q/incoming" "$q/private" "$q/saved" "$q/trace"
	install -d -o postfix -g postdrop -m 730 "$q/maildrop"
	install -d -o postfix -g postdrop -m 710 "$q/public"
}

smtp_ready() { # every service address listens
	local l a
	l=" $(ss -Hltn 'sport = :25' 2>/dev/null | awk '{ print $4 }' | tr '\n' ' ')"
	for a in "${SMTP_ADDRS[@]}"; do [[ $l == *" $a:25 "* ]] || return 1; done
}
