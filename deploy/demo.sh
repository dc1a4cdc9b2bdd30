#!/usr/bin/env bash
# `make demo`: the sample directory behind nginx with mutual TLS on https://localhost:$DEMO_PORT,
# the web admin through nginx on https://localhost:$DEMO_ADMIN_PORT, with a dev PKI, a demo
# client (certificate, API key, token) and staff logins for the web admin.
set -euo pipefail
cd "$(dirname "$0")/.."
# Everything the demo creates in var/ (database, secrets, keys, socket) is its owner's alone.
umask 077

PY=.venv/bin/python
PORT=${DEMO_PORT:-8443}
ADMIN_PORT=${DEMO_ADMIN_PORT:-8444}
PKI=var/pki
# gunicorn listens only on a unix socket in a directory only this user (and so nginx, started
# by this script) can enter: no other local user or process can reach the app and pose as nginx.
SOCKET_DIR=$PWD/var/run
APP=unix:$SOCKET_DIR/gunicorn.sock
export SECURITY_TRUSTED_PROXIES=unix
export SECURITY_JWT_ISSUERS_FILE=var/jwt/issuers.json
# The dev environment, but with client certificates required as in production: nginx passes them.
export SECURITY_REQUIRE_CLIENT_CERT=true
export TRUST_X_FORWARDED_PROTO=true
# The built-in authorization server: the printed commands get their token from it.
export OAUTH_SERVER_URL="https://localhost:$PORT"

if ! command -v nginx >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ]; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx
    else
        echo "nginx is needed: install it (e.g. sudo apt-get install nginx) and run make demo again" >&2
        exit 1
    fi
fi

mkdir -p var "$SOCKET_DIR"
chmod 700 var "$SOCKET_DIR"
# Secrets of this demo, generated on the first start and reused afterwards (never the public
# development default, which would let anyone forge sessions and page cursors).
$PY manage.py makesecrets --file var/secrets.env
set -a
# shellcheck source=/dev/null
. var/secrets.env
set +a
# A database left by an earlier version may have been created readable by others.
for file in var/directory.sqlite3*; do
    if [ -e "$file" ]; then chmod 600 "$file"; fi
done
$PY manage.py migrate --noinput
$PY manage.py loaddirectory --skip-existing
$PY manage.py collectstatic --noinput -v0

# The dev PKI is registered in the database it was made with: after a new database (the old one
# deleted to start over), its files would name no trust anchor or client there. Make it anew.
if [ -f "$PKI/demo/root/ca.pem" ] && ! $PY manage.py shell -c \
    "from security.models import TrustAnchor; raise SystemExit(not TrustAnchor.objects.exists())" \
    >/dev/null 2>&1; then
    echo "The database registers no trust anchor: making a new dev PKI in $PKI"
    rm -rf "$PKI"
fi
if [ ! -f "$PKI/demo/root/ca.pem" ]; then
    $PY manage.py pki_init_community --dir "$PKI/demo" --community demo \
        --name "Demo community" --intermediate --register
    $PY manage.py pki_issue_server --ca "$PKI/demo/intermediate" --out "$PKI/server" \
        --dns localhost --ip 127.0.0.1
    $PY manage.py pki_issue_client --ca "$PKI/demo/intermediate" --out "$PKI/client" \
        --fqdn demo-client.localhost --organization Demo \
        --register-client "Demo client" --scopes "system/*.cruds"
fi
# CRLs last a week: publish fresh ones on every start so the demo keeps working.
for ca in root intermediate; do
    $PY manage.py pki_publish_crl --ca "$PKI/demo/$ca" >/dev/null
done

$PY manage.py rendernginx --out var/nginx --port "$PORT" --upstream "$APP" \
    --admin-listen "127.0.0.1:$ADMIN_PORT" \
    --tls-cert "$PKI/server/localhost.chain.pem" --tls-key "$PKI/server/localhost.key.pem" >/dev/null
nginx -t -q -p var/nginx -c "$PWD/var/nginx/nginx.conf"

echo
$PY manage.py demosetup --dir var/jwt --base-url "https://localhost:$PORT/fhir" \
    --admin-url "https://localhost:$ADMIN_PORT/admin/" \
    --curl-tls "--cacert $PKI/demo/root/ca.pem --cert $PKI/client/demo-client.localhost.pem --key $PKI/client/demo-client.localhost.key.pem" \
    --client-cert "$PKI/client/demo-client.localhost.pem" --client-key "$PKI/client/demo-client.localhost.key.pem"
echo

.venv/bin/gunicorn config.wsgi --config deploy/gunicorn.conf.py --bind "$APP" --umask 0o077 &
GUNICORN=$!
trap 'kill $GUNICORN 2>/dev/null; wait $GUNICORN 2>/dev/null' EXIT INT TERM
echo "Serving https://localhost:$PORT/fhir (mutual TLS) and the admin on" \
    "https://localhost:$ADMIN_PORT/admin/ — Ctrl-C stops nginx and gunicorn."
nginx -p var/nginx -c "$PWD/var/nginx/nginx.conf" -g "daemon off; master_process off;"
