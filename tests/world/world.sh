# shellcheck shell=bash
# Shared definitions of the local test world; sourced by up, down, reload
# and the tests. Bash. Addresses are loopback only; see README.md.

DNS_ADDR=127.0.54.1
DNS_PORT=53
DEAD_DNS=127.0.54.99            # nothing listens: tempfail.test is forwarded here
NGX_NET=127.0.60
NGX_ADDRS=("$NGX_NET.1" "$NGX_NET.2" "$NGX_NET.3" "$NGX_NET.4" "$NGX_NET.5")
ADDR_OK=$NGX_NET.1              # ordinary policy hosts
ADDR_SYNTAX=$NGX_NET.2          # policy hosts serving broken policies
ADDR_TLS=$NGX_NET.3             # certificate failures
ADDR_STALL=$NGX_NET.4           # handshake, then silence
ADDR_BENCH=$NGX_NET.5           # dNNNNN.bench.test
ADDR_REFUSED=$NGX_NET.250       # nothing listens
BENCH_PER_CERT=100

# Domains in a zone of their own (NAME.test.) that knot counts queries for
# (mod-stats), so tests can prove how often a client asked: see `counts`.
COUNTED=(coalesce backoff)

# Policy hosts with a good certificate from the test CA, one per category.
VALID_HOSTS=(enforce testing none notxt twotxt split cname notfound redirect ctype
	bigcl bigchunked stall idchange "${COUNTED[@]}"
	syntax-mode syntax-maxage syntax-missingmx syntax-version syntax-ulabel
	syntax-html syntax-barecr syntax-empty)
SYNTAX_HOSTS=(syntax-mode syntax-maxage syntax-missingmx syntax-version syntax-ulabel
	syntax-html syntax-barecr syntax-empty)
# Hosts whose policy is a static file under www/NAME/.well-known/.
FILE_HOSTS=(enforce testing none notxt twotxt split cname ctype bigcl idchange coalesce
	wrongname untrusted expired "${SYNTAX_HOSTS[@]}")

bench_name() { printf 'd%05d' "$1"; }

is_counted() { local c; for c in "${COUNTED[@]}"; do [ "$c" = "$1" ] && return 0; done; return 1; }

# Every zone file up writes and reload re-reads, as "ORIGIN FILE" lines
# (FILE relative to DIR/zones); tempfail.test. is never served.
zone_files() { # zone_files DIR
	local c
	echo "test. test.zone"
	for c in "${COUNTED[@]}"; do echo "$c.test. $c.test.zone"; done
	[ -e "$1/zones/bench.test.zone" ] && echo "bench.test. bench.test.zone"
	return 0
}

port_open() { # port_open ADDR PORT: a TCP connect succeeds
	timeout 2 bash -c "exec 3<>/dev/tcp/$1/$2" 2>/dev/null
}

own_pid() { # own_pid DIR knot|nginx: print the pid if that server of DIR runs
	local f
	case $2 in knot) f=$1/knot/knot.pid ;; nginx) f=$1/nginx.pid ;; esac
	[ -s "$f" ] || return 1
	local pid
	pid=$(tr -dc 0-9 <"$f")
	[ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] || return 1
	# A recycled pid belongs to someone else: the command line names DIR.
	tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "$1/" || return 1
	echo "$pid"
}

world_running() { own_pid "$1" knot >/dev/null || own_pid "$1" nginx >/dev/null; }

zone_serial() { # a serial above the one in FILE (if any) and not below now
	local now old
	now=$(date +%s)
	old=$(awk '$4 == "SOA" { print $7; exit }' "$1" 2>/dev/null || true)
	if [ -n "$old" ] && [ "$old" -ge "$now" ]; then echo $((old + 1)); else echo "$now"; fi
}

bump_serial() { # bump_serial ZONEFILE: raise the SOA serial in place
	local s
	s=$(zone_serial "$1")
	awk -v s="$s" '$4 == "SOA" && !done { $7 = s; done = 1 } { print }' "$1" >"$1.tmp" && mv "$1.tmp" "$1"
}

# --- policy files ---------------------------------------------------------------
crlf() { local l; for l in "$@"; do printf '%s\r\n' "$l"; done; }

policy_std() { # policy_std NAME MODE [MAX_AGE]: a valid policy, CRLF
	crlf "version: STSv1" "mode: $2" "mx: mail.$1.test" "max_age: ${3:-604800}"
}

write_policies() {
	local dir=$1 h
	rm -rf "$dir/www"
	for h in "${FILE_HOSTS[@]}"; do mkdir -p "$dir/www/$h/.well-known"; done
	pol() { cat >"$dir/www/$1/.well-known/mta-sts.txt"; }
	policy_std enforce enforce | pol enforce
	# testing: LF line ends (tolerated by every parser) and two mx lines
	printf 'version: STSv1\nmode: testing\nmx: mail.testing.test\nmx: *.backup.testing.test\nmax_age: 86400\n' | pol testing
	crlf "version: STSv1" "mode: none" "max_age: 86400" | pol none
	for h in notxt twotxt split cname ctype wrongname untrusted expired coalesce; do policy_std "$h" enforce | pol "$h"; done
	policy_std idchange testing 86400 | pol idchange
	# bigcl: 70000 bytes of valid syntax (extension fields as padding)
	{
		policy_std bigcl enforce
		awk -v n=$((70000 - $(policy_std bigcl enforce | wc -c))) 'BEGIN {
			x = sprintf("%100s", ""); gsub(/ /, "x", x)
			while (n > 0) { k = (n >= 84 || n == 76) ? 69 : n - 7
				printf "pad: %s\r\n", substr(x, 1, k); n -= k + 7 } }'
	} | pol bigcl
	# one kind of syntax error each
	crlf "version: STSv1" "mode: enforced" "mx: mail.syntax-mode.test" "max_age: 604800" | pol syntax-mode
	crlf "version: STSv1" "mode: enforce" "mx: mail.syntax-maxage.test" "max_age: 604,800" | pol syntax-maxage
	crlf "version: STSv1" "mode: enforce" "max_age: 604800" | pol syntax-missingmx
	crlf "version: STSv2" "mode: enforce" "mx: mail.syntax-version.test" "max_age: 604800" | pol syntax-version
	crlf "version: STSv1" "mode: enforce" "mx: møx.example" "max_age: 604800" | pol syntax-ulabel
	printf '<!DOCTYPE html>\n<html>\n<head><title>Welcome to nginx!</title></head>\n<body><h1>Welcome to nginx!</h1></body>\n</html>\n' | pol syntax-html
	printf 'version: STSv1\r\nmode: enforce\rmx: mail.syntax-barecr.test\r\nmax_age: 604800\r\n' | pol syntax-barecr
	: | pol syntax-empty
	unset -f pol
	write_check_policies "$dir"
}

# --- DNS --------------------------------------------------------------------------
write_test_zone() { # the test. zone on stdout
	local dir=$1 h id
	cat <<ZONE
; test. - mtasts test world. Generated by tests/world/up; tests edit this
; file and run tests/world/reload (which raises the serial).
\$ORIGIN test.
\$TTL 60
@ 60 IN SOA ns.test. hostmaster.test. $(zone_serial "$dir/zones/test.zone") 3600 600 86400 60
@ 60 IN NS ns
ns 60 IN A $DNS_ADDR
ZONE
	for h in "${VALID_HOSTS[@]}" wrongname untrusted expired refused noaddr; do
		is_counted "$h" && continue   # in a zone of its own
		id=${h//-/}1
		echo
		echo "; $h"
		echo "$h MX 10 mail.$h"
		case $h in
		notxt) ;;
		twotxt) echo "_mta-sts.twotxt TXT \"v=STSv1; id=twotxt1\""
			echo "_mta-sts.twotxt TXT \"v=STSv1; id=twotxt2\"" ;;
		split) echo "_mta-sts.split TXT \"v=STSv1; id=\" \"20240101\"" ;;
		cname) echo "_mta-sts.cname CNAME _mta-sts.target"
			echo "_mta-sts.target TXT \"v=STSv1; id=cname1\"" ;;
		*) echo "_mta-sts.$h TXT \"v=STSv1; id=$id\"" ;;
		esac
		case $h in
		noaddr) echo "noaddr TXT \"mta-sts.noaddr.test has no address records\"" ;;
		refused) echo "mta-sts.refused A $ADDR_REFUSED" ;;
		stall) echo "mta-sts.stall A $ADDR_STALL" ;;
		wrongname | untrusted | expired) echo "mta-sts.$h A $ADDR_TLS" ;;
		syntax-*) echo "mta-sts.$h A $ADDR_SYNTAX" ;;
		*) echo "mta-sts.$h A $ADDR_OK" ;;
		esac
	done
	cat <<ZONE

; enforce also publishes TLSRPT
_smtp._tls.enforce TXT "v=TLSRPTv1; rua=mailto:tlsrpt@enforce.test"
; the certificate of mta-sts.wrongname.test names this host
mta-sts.other A $ADDR_TLS
ZONE
	write_check_records "$dir"
}

write_bench_zone() { # write_bench_zone DIR N: the bench.test. zone on stdout
	cat <<ZONE
\$ORIGIN bench.test.
\$TTL 60
@ 60 IN SOA ns.test. hostmaster.test. $(zone_serial "$1/zones/bench.test.zone") 3600 600 86400 60
@ 60 IN NS ns.test.
; the MX of every bench domain (Postfix, see world-check.sh)
mx 60 IN A $SMTP_BENCH
ZONE
	awk -v n="$2" -v a="$ADDR_BENCH" 'BEGIN {
		for (i = 1; i <= n; i++) {
			d = sprintf("d%05d", i)
			printf "%s MX 10 mx\n_mta-sts.%s TXT \"v=STSv1; id=bench1\"\nmta-sts.%s A %s\n", d, d, d, a
			printf "_smtp._tls.%s TXT \"v=TLSRPTv1; rua=mailto:tlsrpt@%s.bench.test\"\n", d, d
		} }'
}

write_counted_zone() { # write_counted_zone DIR NAME: the NAME.test. zone on stdout
	cat <<ZONE
; $2.test. - a zone of its own so that knot counts the queries for it
; (mod-stats, see tests/world/counts). Generated by tests/world/up; tests
; edit this file and run tests/world/reload.
\$ORIGIN $2.test.
\$TTL 60
@ 60 IN SOA ns.test. hostmaster.test. $(zone_serial "$1/zones/$2.test.zone") 3600 600 86400 60
@ 60 IN NS ns.test.
@ MX 10 mail
_mta-sts TXT "v=STSv1; id=${2//-/}1"
mta-sts A $ADDR_OK
ZONE
}

write_tempfail_zone() {
	cat <<ZONE
; Never served: knot forwards every query for tempfail.test to $DEAD_DNS,
; where nothing answers, and so answers SERVFAIL.
\$ORIGIN tempfail.test.
\$TTL 60
@ 60 IN SOA ns.test. hostmaster.test. 1 3600 600 86400 60
@ 60 IN NS ns.test.
_mta-sts TXT "v=STSv1; id=never"
ZONE
}

write_knot_conf() { # write_knot_conf DIR SCALE
	cat <<CONF
# knotd for the mtasts test world; generated by tests/world/up.
server:
    rundir: "$1/knot"
    pidfile: "$1/knot/knot.pid"
    listen: $DNS_ADDR@$DNS_PORT
    udp-workers: 2
    tcp-workers: 1
    background-workers: 1

control:
    listen: "$1/knot/knot.sock"

log:
  - target: "$1/logs/knot.log"
    any: info

database:
    storage: "$1/knot/db"

remote:
  - id: dead
    address: $DEAD_DNS@53

mod-dnsproxy:
  - id: dead
    remote: dead
    fallback: off
    timeout: 300

# Query counters of the counted zones: knotc zone-stats ZONE mod-stats
mod-stats:
  - id: count
    request-protocol: off
    server-operation: off
    request-bytes: off
    response-bytes: off
    edns-presence: off
    flag-presence: off
    response-code: on
    query-type: on

template:
  - id: default
    storage: "$1/zones"
    zonefile-sync: -1
    zonefile-load: whole
    journal-content: none
    semantic-checks: off
  - id: counted
    storage: "$1/zones"
    zonefile-sync: -1
    zonefile-load: whole
    journal-content: none
    semantic-checks: off
    module: mod-stats/count

zone:
  - domain: test.
    file: test.zone
  - domain: tempfail.test.
    file: tempfail.test.zone
    module: mod-dnsproxy/dead
CONF
	local c
	for c in "${COUNTED[@]}"; do
		printf '  - domain: %s.test.\n    template: counted\n    file: %s.test.zone\n' "$c" "$c"
	done
	if [ "$2" -gt 0 ]; then
		printf '  - domain: bench.test.\n    file: bench.test.zone\n'
	fi
}

# --- HTTPS ------------------------------------------------------------------------
write_nginx_conf() { # write_nginx_conf DIR SCALE
	local dir=$1 scale=$2 h a g first last names
	cat <<CONF
# nginx for the mtasts test world; generated by tests/world/up.
load_module /usr/lib/nginx/modules/ngx_http_echo_module.so;
$([ "$(id -u)" = 0 ] && echo "user root root;")
worker_processes 2;
pid $dir/nginx.pid;
error_log $dir/logs/error.log notice;
events { worker_connections 1024; }

http {
    # One line per request, parsed by tests/world/counts: fields are
    # separated by single spaces and none of the first nine can hold one.
    log_format world '\$remote_addr \$server_addr:\$server_port sni=\$ssl_server_name host=\$http_host '
                     '\$request_method \$request_uri \$server_protocol \$status \$body_bytes_sent '
                     '[\$time_local] "\$http_user_agent"';
    access_log $dir/logs/access.log world;
    client_body_temp_path $dir/tmp/body;
    proxy_temp_path $dir/tmp/proxy;
    fastcgi_temp_path $dir/tmp/fastcgi;
    uwsgi_temp_path $dir/tmp/uwsgi;
    scgi_temp_path $dir/tmp/scgi;
    server_tokens off;
    keepalive_timeout 5;
    types { text/plain txt; }
    default_type text/plain;
    charset off;
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_certificate_key $dir/pki/leaf.key;
    server_names_hash_max_size 65536;
    server_names_hash_bucket_size 128;

CONF
	# Unknown server names: no certificate, handshake refused.
	for a in "${NGX_ADDRS[@]}"; do
		echo "    server { listen $a:443 ssl default_server; ssl_reject_handshake on; }"
	done
	echo
	vhost() { # vhost NAME ADDR CERT LOCATION-BODY
		cat <<VH
    server {
        listen $2:443 ssl;
        server_name mta-sts.$1.test;
        ssl_certificate $3;
        root $dir/www/$1;
        location = /.well-known/mta-sts.txt {
            $4
        }
    }
VH
	}
	for h in enforce testing none notxt twotxt split cname bigcl idchange; do
		vhost "$h" "$ADDR_OK" "$dir/pki/$h.pem" ""
	done
	for h in "${SYNTAX_HOSTS[@]}"; do
		vhost "$h" "$ADDR_SYNTAX" "$dir/pki/$h.pem" ""
	done
	vhost wrongname "$ADDR_TLS" "$dir/pki/wrongname.pem" ""
	vhost untrusted "$ADDR_TLS" "$dir/pki/untrusted.pem" ""
	vhost expired "$ADDR_TLS" "$dir/pki/expired.pem" ""
	vhost notfound "$ADDR_OK" "$dir/pki/notfound.pem" "return 404;"
	vhost redirect "$ADDR_OK" "$dir/pki/redirect.pem" "return 301 https://mta-sts.enforce.test/.well-known/mta-sts.txt;"
	vhost ctype "$ADDR_OK" "$dir/pki/ctype.pem" "types { } default_type text/html;"
	# echo writes the body as it goes: chunked, no Content-Length; 75000+ bytes.
	vhost bigchunked "$ADDR_OK" "$dir/pki/bigchunked.pem" 'echo "version: STSv1"; echo "mode: enforce"; echo "mx: mail.bigchunked.test"; echo "max_age: 604800"; echo_duplicate 1000 "pad: xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n";'
	vhost stall "$ADDR_STALL" "$dir/pki/stall.pem" 'echo_sleep 60; echo "version: STSv1";'
	# coalesce: the static policy, or HTTP 500 while the file www/coalesce/down exists
	# shellcheck disable=SC2016 # an nginx variable
	vhost coalesce "$ADDR_OK" "$dir/pki/coalesce.pem" 'if (-f $document_root/down) { return 500; }'
	vhost backoff "$ADDR_OK" "$dir/pki/backoff.pem" "return 404;"
	unset -f vhost

	# Bench: one server per certificate; every bench domain has the same
	# policy and MX (mx.bench.test).
	for ((g = 0; g * BENCH_PER_CERT < scale; g++)); do
		first=$((g * BENCH_PER_CERT + 1)); last=$(( (g + 1) * BENCH_PER_CERT ))
		[ "$last" -le "$scale" ] || last=$scale
		names=$(printf ' mta-sts.d%05d.bench.test' $(seq "$first" "$last"))
		cat <<VH
    server {
        listen $ADDR_BENCH:443 ssl;
        server_name$names;
        ssl_certificate $dir/pki/bench/$(printf %04d "$g").pem;
        location = /.well-known/mta-sts.txt {
            return 200 "version: STSv1\\r\\nmode: enforce\\r\\nmx: mx.bench.test\\r\\nmax_age: 604800\\r\\n";
        }
    }
VH
	done
	write_check_vhosts "$dir"
	echo "}"
}

# SMTP servers and the check-*.test domains (mta-sts check)
# shellcheck source=tests/world/world-check.sh
. "$(dirname "${BASH_SOURCE[0]}")/world-check.sh"
