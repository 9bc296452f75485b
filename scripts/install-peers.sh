#!/usr/bin/env bash
# Install the real peers that postern's integration tests run on loopback: Postfix, Dovecot
# (IMAP + POP3), testssl.sh and the tools testssl and the tests shell out to, headless Chromium
# (with a font, so text has glyphs) that renders the HTML scan report, and NSD + ldns + Unbound for
# the DNSSEC lab. Debian packages only.
#
# Idempotent and non-interactive: packages already installed are skipped (a re-run does no apt
# work at all), Postfix is preseeded to "No configuration" and a policy-rc.d that answers 101 keeps
# the package scripts from starting any system service. The tests start private instances
# themselves, with their own config and queue directories, and stop them again.
set -euo pipefail

if [[ "$(id -u)" != 0 ]]; then
  echo "install-peers: must run as root (apt-get install)" >&2
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive

# Package -> why. swaks needs libnet-ssleay-perl (a Recommends) for --tls. testssl.sh 3.0 needs: openssl (it also ships its own openssl.Linux only in the
# upstream tarball, not in Debian), hexdump (bsdextrautils), dig/host (bind9-dnsutils) for name
# lookups it does even for IPs, ps/pkill (procps) for its socket timeouts, and xxd for some checks.
# unbound: a private local-data-only DNS server on loopback for the DNS client and domain-scan tests,
# and the validating resolver of the DNSSEC lab (test/integration/peers/dnssec.ts).
# nsd: the lab's authoritative server for its signed test zone and unsigned (insecure) child zone.
# ldnsutils: ldns-keygen and ldns-signzone make the lab's local key and sign its zone.
# chromium + fonts-dejavu-core: headless rendering of the HTML scan report (a font so text has glyphs).
# python3-minimal: the crash tests hold SQLite's file lock with fcntl, which node cannot (test/helpers/crash.ts).
# opendkim-tools: opendkim-testmsg / opendkim-testkey verify postern's DKIM signatures (a verifier that is not mailauth).
PACKAGES=(
  postfix
  dovecot-core
  dovecot-imapd
  dovecot-pop3d
  testssl.sh
  sslscan
  swaks
  libnet-ssleay-perl
  openssl
  bsdextrautils
  bind9-dnsutils
  procps
  xxd
  ca-certificates
  unbound
  nsd
  ldnsutils
  chromium
  fonts-dejavu-core
  python3-minimal
  opendkim-tools
)

missing=()
for p in "${PACKAGES[@]}"; do
  status="$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)"
  [[ "$status" == installed ]] || missing+=("$p")
done

if ((${#missing[@]} == 0)); then
  echo "install-peers: all ${#PACKAGES[@]} packages already installed"
else
  echo "install-peers: installing ${missing[*]}"
  # "No configuration": postinst writes no main.cf and starts nothing for us.
  echo 'postfix postfix/main_mailer_type select No configuration' | debconf-set-selections
  echo 'postfix postfix/mailname string mx.peer.test' | debconf-set-selections

  # Keep invoke-rc.d (and deb-systemd-invoke, which asks it too) from starting dovecot, postfix,
  # unbound or nsd during install (101 = action forbidden): a system nsd/unbound would take port 53.
  policy=/usr/sbin/policy-rc.d
  backup=""
  if [[ -e "$policy" ]]; then
    backup="$(mktemp)"
    cp -p "$policy" "$backup"
  fi
  restore_policy() {
    if [[ -n "$backup" ]]; then mv -f "$backup" "$policy"; else rm -f "$policy"; fi
  }
  trap restore_policy EXIT
  printf '#!/bin/sh\nexit 101\n' >"$policy"
  chmod 0755 "$policy"

  apt-get update -qq
  apt-get install -y -qq --no-install-recommends \
    -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "${missing[@]}" >/dev/null

  restore_policy
  trap - EXIT
fi

# The packages' own system instances are not ours to run; if something did start one on a box
# without policy-rc.d semantics (e.g. systemd in a container), leave it alone but say so.
for svc in postfix dovecot unbound nsd; do
  if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet "$svc" 2>/dev/null; then
    echo "install-peers: note: system $svc service is running (not started by this script)"
  fi
done
# The tests' DNS servers use free high ports; port 53 is never ours.
if command -v ss >/dev/null 2>&1 && [[ -n "$(ss -Hlntu 'sport = :53' 2>/dev/null)" ]]; then
  echo "install-peers: note: something listens on port 53 (not started by this script)"
fi

for p in "${PACKAGES[@]}"; do
  printf '  %-20s %s\n' "$p" "$(dpkg-query -W -f='${Version}' "$p")"
done
