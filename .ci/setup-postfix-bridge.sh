#!/usr/bin/env bash
# Packages for the SMTP bridge's Postfix test (test/bridge/bridge-postfix.test.ts): Debian's postfix and Cyrus
# SASL's PLAIN/LOGIN mechanisms (libsasl2-modules), which Postfix's SMTP client needs for smtp_sasl_auth_enable.
# Installs only; the test starts its own Postfix instance from a temporary config directory (postfix -c), so
# the system instance configured by .ci/postfix-setup.sh is left alone. Run as root.
set -euo pipefail

if [ "$(id -u)" != "0" ]; then
  echo "setup-postfix-bridge: must run as root" >&2
  exit 1
fi

missing=()
command -v postfix >/dev/null 2>&1 || missing+=(postfix)
compgen -G "/usr/lib/*/sasl2/libplain.so*" >/dev/null || compgen -G "/usr/lib/sasl2/libplain.so*" >/dev/null || missing+=(libsasl2-modules)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)

if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup-postfix-bridge: installing ${missing[*]}"
  echo "postfix postfix/main_mailer_type select Internet Site" | debconf-set-selections
  echo "postfix postfix/mailname string postfix.test.example" | debconf-set-selections
  apt-get update
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
fi
echo "setup-postfix-bridge: postfix $(postconf -h mail_version) with SASL PLAIN ready"
