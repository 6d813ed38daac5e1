#!/usr/bin/env bash
# Installs (if missing), configures and starts Debian's Postfix as a real SMTP peer for the SMTP client test
# (test/unit/smtp-postfix.test.ts). Run as root. Afterwards: POSTFIX_PORT=2526 npx vitest run --project unit ...
#
# The test instance listens on 127.0.0.1:${POSTFIX_PORT:-2526} only, relays for 127.0.0.0/8, offers STARTTLS with a
# throw-away self-signed certificate (test-only), rejects one scripted recipient and discards everything it accepts
# (no mail ever leaves the machine).
set -euo pipefail

PORT="${POSTFIX_PORT:-2526}"

if [ "$(id -u)" != "0" ]; then
  echo "postfix-setup: must run as root" >&2
  exit 1
fi

if ! command -v postfix >/dev/null 2>&1; then
  echo "postfix-setup: installing postfix"
  echo "postfix postfix/main_mailer_type select Internet Site" | debconf-set-selections
  echo "postfix postfix/mailname string postfix.test.example" | debconf-set-selections
  apt-get update
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends postfix
fi

CERT_DIR=/etc/postfix/edge-relay-test
mkdir -p "$CERT_DIR"
if [ ! -f "$CERT_DIR/cert.pem" ]; then
  # Test-only self-signed certificate; never use for real mail.
  openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=postfix.test.example" \
    -keyout "$CERT_DIR/key.pem" -out "$CERT_DIR/cert.pem" >/dev/null 2>&1
  chmod 600 "$CERT_DIR/key.pem"
fi

# One recipient the test expects Postfix to refuse (texthash: needs no postmap).
printf 'rejected@postfix.test.example REJECT 5.1.1 no such user (test)\n' > "$CERT_DIR/recipient_access"

postconf -e \
  "myhostname = postfix.test.example" \
  "mydestination =" \
  "inet_interfaces = loopback-only" \
  "inet_protocols = ipv4" \
  "mynetworks = 127.0.0.0/8" \
  "relay_domains =" \
  "default_transport = discard:edge-relay test instance" \
  "relay_transport = discard:edge-relay test instance" \
  "local_transport = discard:edge-relay test instance" \
  "smtpd_recipient_restrictions = check_recipient_access texthash:$CERT_DIR/recipient_access, permit_mynetworks, reject_unauth_destination" \
  "smtpd_tls_cert_file = $CERT_DIR/cert.pem" \
  "smtpd_tls_key_file = $CERT_DIR/key.pem" \
  "smtpd_tls_security_level = may" \
  "smtputf8_enable = yes" \
  "message_size_limit = 10240000" \
  "maillog_file = /var/log/postfix.log"

# A dedicated, non-chrooted smtpd on the test port (Debian's default services run chrooted, which needs
# files copied into the chroot by the init script; we start postfix directly).
postconf -M -e "127.0.0.1:${PORT}/inet = 127.0.0.1:${PORT} inet n - n - - smtpd"
# The test instance needs no port-25 listener.
postconf -M# "smtp/inet" 2>/dev/null || true
postconf -M -e "postlog/unix-dgram = postlog unix-dgram n - n - 1 postlogd"

newaliases 2>/dev/null || true
if postfix status >/dev/null 2>&1; then
  postfix reload
else
  postfix start
fi

for _ in $(seq 1 50); do
  if (exec 3<>"/dev/tcp/127.0.0.1/${PORT}") 2>/dev/null; then
    echo "postfix-setup: postfix smtpd listening on 127.0.0.1:${PORT} (export POSTFIX_PORT=${PORT})"
    exit 0
  fi
  sleep 0.2
done
echo "postfix-setup: postfix did not start listening on 127.0.0.1:${PORT}" >&2
tail -n 30 /var/log/postfix.log 2>/dev/null >&2 || true
exit 1
