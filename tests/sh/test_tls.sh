#!/usr/bin/env bash
# test_tls.sh — TLS to PostgreSQL, end to end: a throwaway CA (and a wrong
# one), a server certificate for "localhost" and a client certificate made
# with openssl; a cluster of its own with ssl=on whose pg_hba.conf takes
# TLS connections only (password for hyperpage, certificate for certuser).
# Through `pqpool check`, `pqpool config` and `pqpool serve`: verify-full
# connects and really uses TLS; a wrong CA, a wrong host name and a missing
# client certificate fail naming the reason; NODE_ENV=production means
# sslmode=require unless SSL_MODE says otherwise; a warning whenever the
# server's identity is not checked; no password or key text in any output.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/serve_lib.sh"

command -v openssl >/dev/null 2>&1 || {
	fail "openssl is installed (scripts/deps.sh)"
	serve_finish
	exit 1
}

certs="$tmp/certs" # the client's files: read by pqpool, running as us
mkdir -p "$certs"
tlsdata=$(mktemp -u /tmp/pqpool-tls-test.XXXXXX) # the cluster's, made by pgcluster.sh
tlspw="tls-$(od -An -N9 -tx1 /dev/urandom | tr -d ' \n')"
secrets+=("$tlspw")

tls_cleanup() { "$cluster" destroy "$tlsdata" >/dev/null 2>&1; }
trap 'tls_cleanup; serve_cleanup' EXIT

# ---- certificates ----------------------------------------------------------------

# P-256 keys: quick to make; libpq and the server take them as RSA ones.
newkey() { openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "$@"; }
ca() {
	newkey -x509 -days 2 -subj "/CN=$1" -keyout "$certs/$2.key" -out "$certs/$2.crt" \
		-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign
}
# sign <name> <CN> <extensions>: a certificate from ca.crt
sign() {
	newkey -subj "/CN=$2" -keyout "$certs/$1.key" -out "$certs/$1.csr" &&
		openssl x509 -req -in "$certs/$1.csr" -CA "$certs/ca.crt" -CAkey "$certs/ca.key" \
			-CAcreateserial -days 2 -out "$certs/$1.crt" -extfile <(printf '%s\n' "$3")
}
{
	ca "pqpool test CA" ca &&
		ca "pqpool wrong CA" wrong-ca &&
		sign server localhost $'subjectAltName=DNS:localhost\nextendedKeyUsage=serverAuth' &&
		sign client certuser 'extendedKeyUsage=clientAuth'
} >"$tmp/openssl.log" 2>&1
expect_eq "openssl made the certificates" 0 "$?"
openssl verify -CAfile "$certs/ca.crt" "$certs/server.crt" "$certs/client.crt" >/dev/null 2>&1
expect_eq "they chain to the test CA" 0 "$?"
openssl verify -CAfile "$certs/wrong-ca.crt" "$certs/server.crt" >/dev/null 2>&1
expect_ne "and not to the wrong one" 0 "$?"
chmod 600 "$certs"/*.key # libpq refuses a key others can read
# a line of the client key's text: it must never be printed
keyline=$(sed -n 2p "$certs/client.key")
secrets+=("$keyline")

# ---- the cluster: ssl=on, TLS only ---------------------------------------------------

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
started=0
for _ in 1 2 3; do
	for _ in $(seq 1 50); do
		tlsport=$((20000 + RANDOM % 30000))
		port_free "$tlsport" && break
	done
	if "$cluster" start "$tlsdata" "$tlsport" "$tlspw" >"$tmp/pg.log" 2>&1; then
		started=1
		break
	fi
	tls_cleanup
done
if [ "$started" != 1 ]; then
	fail "a cluster of our own starts" "$(tail -n 5 "$tmp/pg.log")"
	serve_finish
	exit 1
fi
# The server's files in its data directory, owned by the postgres user (the
# server refuses a key that others can read); its CA checks client certificates.
cp "$certs/server.crt" "$certs/server.key" "$certs/ca.crt" "$tlsdata/"
if [ "$(id -u)" -eq 0 ]; then
	chown postgres: "$tlsdata/server.crt" "$tlsdata/server.key" "$tlsdata/ca.crt"
fi
chmod 600 "$tlsdata/server.key"
cat >>"$tlsdata/postgresql.conf" <<'CONF'
ssl = on
ssl_cert_file = 'server.crt'
ssl_key_file = 'server.key'
ssl_ca_file = 'ca.crt'
CONF
# no "host" line: a connection without TLS finds no entry and is refused
cat >"$tlsdata/pg_hba.conf" <<'HBA'
local   all postgres                trust
hostssl all certuser  127.0.0.1/32 cert
hostssl all hyperpage 127.0.0.1/32 scram-sha-256
HBA
"$cluster" ctl "$tlsdata" restart -m fast -w -t 60 >>"$tmp/pg.log" 2>&1
# as admin_sql: the value on stdout, psql's errors to the test's log
tls_sql() { "$cluster" psql "$tlsdata" -d hyperpage -Atc "$1"; }
tls_sql "CREATE ROLE certuser LOGIN" >/dev/null
expect_eq "our cluster runs with ssl=on" on "$(tls_sql 'SHOW ssl')"
expect_eq "its key belongs to the server's user, mode 0600" \
	"$(stat -c %U "$tlsdata"):600" "$(stat -c '%U:%a' "$tlsdata/server.key")"

local_url="postgresql://hyperpage:$tlspw@localhost:$tlsport/hyperpage"
ip_url="postgresql://hyperpage:$tlspw@127.0.0.1:$tlsport/hyperpage"
cert_url="postgresql://certuser@localhost:$tlsport/hyperpage"
# A probe that fails (division by zero) unless its own session uses TLS.
on_tls='SELECT 1 / (SELECT ssl::int FROM pg_stat_ssl WHERE pid = pg_backend_pid())'
ca=("SSL_CA_PATH=$certs/ca.crt")
warn_re='WARN  TLS without verification: .* the server.s identity is not checked.* SSL_MODE=verify-full'

# check_ok <what>: the last run was healthy; check_fails <what> <regex>: it was
# unhealthy with an error matching the regex
check_ok() {
	expect_eq "$1: exit status" 0 "$RC"
	expect_jq "$1: healthy" '.status == "healthy"' "$OUT"
}
check_fails() {
	expect_eq "$1: exit status" 1 "$RC"
	expect_jq "$1: unhealthy" '.status == "unhealthy"' "$OUT"
	expect_match "$1: the error says why" "$2" "$(jq -r .data.error <<<"$OUT")"
}

# ---- verify-full --------------------------------------------------------------------

run "DATABASE_URL=$local_url" SSL_MODE=verify-full "${ca[@]}" "DB_HEALTH_QUERY=$on_tls" -- check
check_ok "verify-full, the right CA, host localhost"
expect_no_match "verify-full: no warning" 'WARN' "$ERR"
# the probe can tell: the fixture's server has no TLS, and the same probe fails there
run "DATABASE_URL=$url" SSL_MODE=disable "DB_HEALTH_QUERY=$on_tls" -- check
check_fails "the TLS probe over a plain connection" 'division by zero'

run "DATABASE_URL=$local_url" SSL_MODE=verify-full "SSL_CA_PATH=$certs/wrong-ca.crt" -- check
check_fails "verify-full, a CA that did not sign the server's certificate" 'certificate verify failed'

run "DATABASE_URL=$ip_url" SSL_MODE=verify-full "${ca[@]}" -- check
check_fails "verify-full, 127.0.0.1 for a certificate of localhost" \
	'server certificate for "localhost".* does not match host name "127\.0\.0\.1"'
# verify-ca checks the chain, not the name
run "DATABASE_URL=$ip_url" SSL_MODE=verify-ca "${ca[@]}" "DB_HEALTH_QUERY=$on_tls" -- check
check_ok "verify-ca, 127.0.0.1: the chain is enough"
expect_no_match "verify-ca: no warning" 'WARN' "$ERR"

run "DATABASE_URL=$local_url" SSL_MODE=verify-full "SSL_CA_PATH=$certs/nope.crt" -- check
expect_eq "SSL_CA_PATH that does not exist: exit status" 2 "$RC"
expect_match "SSL_CA_PATH that does not exist: named" '^pqpool: SSL_CA_PATH=".*nope\.crt": expected a readable file$' "$ERR"

run "DATABASE_URL=$local_url" SSL_MODE=disable -- check
check_fails "no TLS to a server that takes TLS only" 'no pg_hba\.conf entry .*no encryption'

# ---- client certificates ---------------------------------------------------------------

cert_probe="SELECT 1 / (SELECT (ssl AND client_dn = '/CN=certuser')::int FROM pg_stat_ssl WHERE pid = pg_backend_pid())"
run "DATABASE_URL=$cert_url" SSL_MODE=verify-full "${ca[@]}" "SSL_CERT_PATH=$certs/client.crt" \
	"SSL_KEY_PATH=$certs/client.key" "DB_HEALTH_QUERY=$cert_probe" -- check
check_ok "certuser with SSL_CERT_PATH and SSL_KEY_PATH (the session shows its certificate)"
run "DATABASE_URL=$cert_url" SSL_MODE=verify-full "${ca[@]}" -- check
check_fails "certuser without a client certificate" 'connection requires a valid client certificate'
run "DATABASE_URL=$cert_url" SSL_MODE=verify-full "${ca[@]}" "SSL_CERT_PATH=$certs/client.crt" \
	"SSL_KEY_PATH=$certs/server.key" -- check
check_fails "certuser with a key that is not the certificate's" 'key values mismatch|private key'
run "DATABASE_URL=$cert_url" SSL_MODE=verify-full "${ca[@]}" "SSL_CERT_PATH=$certs/client.crt" \
	"SSL_KEY_PATH=$certs/client.key" -- config
expect_match "config shows the paths, not the key" "^SSL_KEY_PATH=$certs/client\\.key +# environment" "$OUT"

# ---- NODE_ENV=production -------------------------------------------------------------------

run "DATABASE_URL=$local_url" NODE_ENV=production -- config
expect_match "production: sslmode=require" '^SSL_MODE=require +# default \(from NODE_ENV=production\)' "$OUT"
run "DATABASE_URL=$local_url" NODE_ENV=production "DB_HEALTH_QUERY=$on_tls" -- check
check_ok "production, no SSL_MODE: TLS to the TLS server"
expect_match "production, no SSL_MODE: a warning naming NODE_ENV and verify-full" \
	"$warn_re" "$ERR"
expect_match "production: the warning says where require came from" 'sslmode=require \(from NODE_ENV=production\)' "$ERR"
run "DATABASE_URL=$url" NODE_ENV=production -- check
check_fails "production, no SSL_MODE, a server without TLS" 'server does not support SSL, but SSL was required'
run "DATABASE_URL=$url" NODE_ENV=production SSL_MODE=disable -- check
check_ok "production, SSL_MODE=disable wins"
expect_no_match "SSL_MODE=disable: no warning" 'WARN' "$ERR"
run "DATABASE_URL=$url" NODE_ENV=production SSL_MODE=disable -- config
expect_match "config: SSL_MODE=disable from the environment" '^SSL_MODE=disable +# environment$' "$OUT"
run "DATABASE_URL=$local_url" NODE_ENV=production SSL_MODE=verify-full "${ca[@]}" \
	"DB_HEALTH_QUERY=$on_tls" -- check
check_ok "production, SSL_MODE=verify-full wins"
expect_no_match "production with verify-full: no warning" 'WARN' "$ERR"
run "DATABASE_URL=$local_url?sslmode=verify-full&sslrootcert=$certs/ca.crt" NODE_ENV=production \
	"DB_HEALTH_QUERY=$on_tls" -- check
check_ok "production, the URL's own verify-full is kept"
expect_no_match "the URL's verify-full: no warning" 'WARN' "$ERR"

# ---- warnings: every mode that does not check the server ----------------------------------

for mode in require prefer allow; do
	run "DATABASE_URL=$local_url" "SSL_MODE=$mode" "DB_HEALTH_QUERY=$on_tls" -- check
	check_ok "SSL_MODE=$mode against the TLS server"
	expect_match "SSL_MODE=$mode: the warning" "$warn_re" "$ERR"
	expect_match "SSL_MODE=$mode: names the mode and SSL_MODE" "sslmode=$mode \\(from SSL_MODE\\)" "$ERR"
done
run "DATABASE_URL=$local_url?sslmode=require" "DB_HEALTH_QUERY=$on_tls" -- check
expect_match "sslmode=require in the URL: the warning names the URL" \
	'sslmode=require \(from the connection URL\)' "$ERR"
run "DATABASE_URL=$url" -- check
expect_no_match "the default (disable): no warning" 'WARN' "$ERR"

# ---- the service ---------------------------------------------------------------------------

serve_start "DATABASE_URL=$local_url" SSL_MODE=verify-full "${ca[@]}" DB_POOL_MIN=3 \
	"DB_HEALTH_QUERY=$on_tls" || { serve_finish; exit 1; }
req /api/health/database
expect_eq "serve over verify-full: health 200" 200 "$CODE"
expect_jq "serve over verify-full: healthy" '.status == "healthy"' "$BODY"
# as the server sees them: every session of hyperpage is encrypted
sessions=$(tls_sql "SELECT count(*) FILTER (WHERE s.ssl) || ' of ' || count(*) FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid) WHERE a.usename = 'hyperpage'")
expect_match "the server sees the pool's sessions encrypted" '^([3-9]|[1-9][0-9]+) of \1$' "$sessions"
expect_no_match "serve over verify-full: no warning" 'WARN' "$(cat "$SLOG")"
serve_stop

# The service's checks run on an event loop, which reads only when the socket
# is readable: results of many TLS records must not stall in OpenSSL's buffer
# (bytes it has decrypted leave the socket silent).
serve_start "DATABASE_URL=$local_url" SSL_MODE=verify-full "${ca[@]}" DB_POOL_MIN=1 \
	DB_CONNECTION_TIMEOUT=3000 DB_HEALTH_SLOW=2000 \
	"DB_HEALTH_QUERY=SELECT repeat(md5(g::text), 3000) FROM generate_series(1, 40) g" ||
	{ serve_finish; exit 1; }
for i in 1 2 3 4 5; do
	req /api/health/database
	expect_eq "serve over TLS, 3.8 MB results, check $i: health 200" 200 "$CODE"
	expect_jq "serve over TLS, 3.8 MB results, check $i: healthy, not timed out" \
		'.status == "healthy"' "$BODY"
done
serve_stop

serve_start "DATABASE_URL=$local_url" NODE_ENV=production DB_POOL_MIN=1 || { serve_finish; exit 1; }
req /api/health/database
expect_eq "serve in production: health 200" 200 "$CODE"
serve_stop
expect_match "serve in production: the warning at startup" "$warn_re" "$(cat "$SLOG")"

serve_start "DATABASE_URL=$local_url" SSL_MODE=verify-full "SSL_CA_PATH=$certs/wrong-ca.crt" \
	DB_POOL_MIN=0 DB_CONNECTION_TIMEOUT=3000 || { serve_finish; exit 1; }
req /api/health/database
expect_eq "serve with the wrong CA: 503" 503 "$CODE"
expect_match "serve with the wrong CA: the error names the certificate problem" \
	'certificate verify failed' "$(jq -r .data.error <<<"$BODY")"
req /readyz
expect_eq "serve with the wrong CA: not ready" 503 "$CODE"
expect_match "serve with the wrong CA: readyz says why" 'certificate verify failed' "$BODY"
serve_stop

serve_start "DATABASE_URL=$cert_url" SSL_MODE=verify-full "${ca[@]}" "SSL_CERT_PATH=$certs/client.crt" \
	"SSL_KEY_PATH=$certs/client.key" DB_POOL_MIN=1 "DB_HEALTH_QUERY=$cert_probe" || { serve_finish; exit 1; }
req /api/health/database
expect_eq "serve as certuser by certificate: 200" 200 "$CODE"
serve_stop

# the client key's text, the CA key's and the password: in no output
expect_absent "the client key file's contents appear nowhere" "$(sed -n 3p "$certs/client.key")" "$(cat "$tmp/all")"
serve_finish
