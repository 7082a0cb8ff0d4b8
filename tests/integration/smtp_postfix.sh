#!/bin/sh
# smtp_postfix.sh: a private Postfix for the SMTP STARTTLS probe tests.
#
#   sh smtp_postfix.sh up DIR     make the PKI and the config in DIR, start
#   sh smtp_postfix.sh down DIR   stop the instance (idempotent)
#
# DIR must exist and be empty (mkdtemp). Everything lives in it: pki/
# (private CAs and leaves, made with the openssl command), etc/ (main.cf and
# master.cf: `postfix -c DIR/etc`), queue/, data/, maillog. Nothing of the
# system Postfix is used but its programs and the shipped master.cf, whose
# unix services are copied with chroot off and whose public "smtp inet"
# service is dropped. Each scenario is one smtpd service bound to its own
# loopback address on port 25 (127.0.71.0/24 belongs to these tests):
#
#   127.0.71.1  mail.good.test: leaf from an intermediate, chain sent
#   127.0.71.2  no TLS at all (EHLO without STARTTLS)
#   127.0.71.3  mail.expired.test: expired in 2020
#   127.0.71.4  mail.other.test: valid, but for another name than probed
#   127.0.71.5  mail.untrusted.test: issued by a CA the client does not trust
#   127.0.71.6  TLS 1.1 only (mail.good.test's certificate)
#   127.0.71.7  wildcards: *.wild.test, and the partial mx*.part.test
#   127.0.71.8  mail.cnonly.test in the CN only, no subjectAltName
#   127.0.71.9  SNI: mail.sni.test gets a valid chain, no SNI gets "other"
#
# The client's trust anchor is pki/ca.crt. Run as root. test_smtp.c adds its
# own scripted servers on 127.0.71.20-30.
#
# What it took (Postfix 3.7 on Debian 12):
# * inet_interfaces must name addresses an interface has; 127.0.71.x are
#   only routed to lo, so it says 127.0.0.1 and master.cf binds each
#   service's own address ("127.0.71.1:25 inet ...").
# * data_directory must exist owned by postfix (master.lock), and the
#   directory above the queue must be searchable (chmod 755).
# * maillog_file needs maillog_file_prefixes to allow it; without a
#   terminal the postfix command prints nothing, hence script(1) on failure.
# * smtpd_tls_chain_files takes one PEM: key, leaf, intermediates.
# * smtpd logs the SNI ("TLS connection established ... to NAME") only
#   where tls_server_sni_maps is set; a session's command counts are on
#   its "disconnect" line (ehlo=1 starttls=1 quit=1 commands=3).
# * OpenSSL 3 serves TLS 1.1 only at @SECLEVEL=0 (tls_medium_cipherlist).
# * "postfix stop" waits for the master; kill -TERM of the master (pid in
#   queue/pid/master.pid) is "postfix abort" and takes the children along.
set -eu

die() {
	echo "smtp_postfix.sh: $*" >&2
	exit 1
}

make_pki() {
	mkdir -p "$1/pki"
	cd "$1/pki"
	EC='-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes'
	ca() { # name subject [issuer]
		# shellcheck disable=SC2086
		openssl req -x509 $EC -keyout "$1.key" -out "$1.crt" -days 30 -subj "/CN=$2" \
			-addext basicConstraints=critical,CA:TRUE \
			-addext keyUsage=critical,keyCertSign,cRLSign
	}
	csr() { # name cn [san]
		if [ -n "${3:-}" ]; then
			# shellcheck disable=SC2086
			openssl req -new $EC -keyout "$1.key" -out "$1.csr" -subj "/CN=$2" \
				-addext "subjectAltName=$3"
		else
			# shellcheck disable=SC2086
			openssl req -new $EC -keyout "$1.key" -out "$1.csr" -subj "/CN=$2"
		fi
	}
	sign() { # name issuer
		openssl x509 -req -in "$1.csr" -CA "$2.crt" -CAkey "$2.key" -CAcreateserial \
			-days 30 -copy_extensions copy -out "$1.crt"
	}
	ca ca 'mtasts smtp test CA'
	ca rogue 'mtasts smtp untrusted CA'
	# An intermediate, so that the good chain only verifies with what the
	# server sends.
	# shellcheck disable=SC2086
	openssl req -new $EC -keyout int.key -out int.csr -subj '/CN=mtasts smtp test intermediate' \
		-addext basicConstraints=critical,CA:TRUE,pathlen:0 \
		-addext keyUsage=critical,keyCertSign,cRLSign
	sign int ca
	csr good mail.good.test 'DNS:mail.good.test,DNS:mx2.good.test'
	sign good int
	csr other mail.other.test DNS:mail.other.test
	sign other ca
	csr untrusted mail.untrusted.test DNS:mail.untrusted.test
	sign untrusted rogue
	csr wild wild.test 'DNS:*.wild.test,DNS:mx*.part.test'
	sign wild ca
	csr cnonly mail.cnonly.test
	sign cnonly ca
	csr sni mail.sni.test DNS:mail.sni.test
	sign sni ca
	# `openssl ca` is the 3.0 command that takes explicit dates.
	mkdir -p newcerts
	: > index.txt
	echo 1000 > serial
	printf '[ca]\ndefault_ca=t\n[t]\ndir=.\ndatabase=index.txt\nnew_certs_dir=newcerts\nserial=serial\ndefault_md=sha256\npolicy=p\ncopy_extensions=copy\nunique_subject=no\n[p]\ncommonName=supplied\n' > ca.cnf
	csr expired mail.expired.test DNS:mail.expired.test
	openssl ca -batch -notext -config ca.cnf -cert ca.crt -keyfile ca.key -in expired.csr \
		-out expired.crt -startdate 20200101000000Z -enddate 20200201000000Z
	# Chain files as smtpd_tls_chain_files wants them: key, leaf, chain.
	cat good.key good.crt int.crt > good.pem
	for n in other untrusted wild cnonly sni expired; do
		cat "$n.key" "$n.crt" > "$n.pem"
	done
	chmod 600 ./*.key ./*.pem
	cd - >/dev/null
}

write_config() {
	d=$1
	etc=$d/etc
	pki=$d/pki
	mkdir -p "$etc" "$d/queue" "$d/data"
	# master.lock and friends; `postfix check` insists on this ownership.
	chown postfix:postfix "$d/data"
	chmod 700 "$d/data"
	: > "$d/maillog"
	cat > "$etc/main.cf" <<EOF
# Private test instance; see tests/integration/smtp_postfix.sh.
compatibility_level = 3.6
queue_directory = $d/queue
data_directory = $d/data
meta_directory = /etc/postfix
mail_owner = postfix
myhostname = mx.smtp-test.invalid
mydomain = smtp-test.invalid
myorigin = \$myhostname
mydestination =
relay_domains =
alias_maps =
alias_database =
# Postfix wants inet_interfaces to be addresses of an interface, which
# 127.0.71.x are not (only 127.0.0.1/8 is on lo); the master.cf services
# bind their own addresses regardless.
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.71.0/24
smtpd_banner = \$myhostname ESMTP mtasts-test
maillog_file = $d/maillog
maillog_file_prefixes = $d
syslog_name = postfix-mtasts-smtp
smtpd_tls_loglevel = 1
smtpd_tls_session_cache_database =
smtpd_tls_security_level = may
smtpd_tls_chain_files = $pki/good.pem
smtpd_client_connection_count_limit = 0
smtpd_client_connection_rate_limit = 0
EOF
	# The shipped unix services, chroot off (the queue directory has no
	# copy of /etc); the public smtp service goes, ours come instead.
	awk '/^smtp[ \t]+inet[ \t]/ { skip = 1; next }
	     skip && /^[ \t]/ { next }
	     { skip = 0 }
	     /^[a-z]/ && NF >= 8 { $5 = "n" }
	     { print }' /etc/postfix/master.cf > "$etc/master.cf"
	svc() { # ip options...
		ip=$1
		shift
		echo "$ip:25 inet n - n - - smtpd -o syslog_name=postfix-mtasts-smtp/$ip $*" >> "$etc/master.cf"
	}
	{
		echo
		echo "# ---- mtasts SMTP probe scenarios ----"
	} >> "$etc/master.cf"
	svc 127.0.71.1 "-o smtpd_tls_chain_files=$pki/good.pem"
	svc 127.0.71.2 "-o smtpd_tls_security_level=none"
	svc 127.0.71.3 "-o smtpd_tls_chain_files=$pki/expired.pem"
	svc 127.0.71.4 "-o smtpd_tls_chain_files=$pki/other.pem"
	svc 127.0.71.5 "-o smtpd_tls_chain_files=$pki/untrusted.pem"
	# OpenSSL 3 speaks TLS 1.1 only at security level 0.
	svc 127.0.71.6 "-o smtpd_tls_chain_files=$pki/good.pem" \
		"-o smtpd_tls_protocols=>=TLSv1.1,<=TLSv1.1" \
		"-o tls_medium_cipherlist=DEFAULT:@SECLEVEL=0"
	svc 127.0.71.7 "-o smtpd_tls_chain_files=$pki/wild.pem"
	svc 127.0.71.8 "-o smtpd_tls_chain_files=$pki/cnonly.pem"
	printf 'mail.sni.test %s/sni.pem\n' "$pki" > "$etc/sni"
	svc 127.0.71.9 "-o smtpd_tls_chain_files=$pki/other.pem" \
		"-o tls_server_sni_maps=texthash:$etc/sni"
}

cmd=${1:-}
dir=${2:-}
if [ -z "$dir" ] || [ ! -d "$dir" ]; then
	die "usage: $0 up|down DIR (an existing directory)"
fi
dir=$(cd "$dir" && pwd)
command -v postfix >/dev/null 2>&1 || PATH=$PATH:/usr/sbin:/sbin
case $cmd in
up)
	[ "$(id -u)" = 0 ] || die "must run as root (Postfix binds port 25)"
	command -v postfix >/dev/null 2>&1 || die "postfix is not installed (apt-get install postfix)"
	command -v openssl >/dev/null 2>&1 || die "openssl is not installed"
	# Daemons run as the postfix user and must reach the queue directory.
	chmod 755 "$dir"
	make_pki "$dir" > "$dir/pki.log" 2>&1 || {
		cat "$dir/pki.log" >&2
		die "openssl failed"
	}
	write_config "$dir"
	# Without a terminal Postfix logs only to the maillog, which needs a
	# running postlogd: on failure, run the command again under script(1)
	# to see what it said.
	postfix -c "$dir/etc" check || {
		script -qec "postfix -c '$dir/etc' check" /dev/null >&2 || true
		die "postfix check failed"
	}
	postfix -c "$dir/etc" start || {
		tail -20 "$dir/maillog" >&2
		die "postfix start failed"
	}
	;;
down)
	[ -f "$dir/etc/main.cf" ] || exit 0
	postfix -c "$dir/etc" status >/dev/null 2>&1 || exit 0
	postfix -c "$dir/etc" stop >/dev/null 2>&1 || postfix -c "$dir/etc" abort >/dev/null 2>&1 || true
	;;
*)
	die "usage: $0 up|down DIR"
	;;
esac
