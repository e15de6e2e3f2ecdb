#!/usr/bin/env bash
# Installs what podwall needs on a fresh Debian machine (run as root): the kernel tools the agent,
# the lab and the tests use, then the npm dependencies (which also compiles the TypeScript).
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v iptables >/dev/null 2>&1 || missing+=(iptables)
command -v ipset >/dev/null 2>&1 || missing+=(ipset)
command -v ip >/dev/null 2>&1 || missing+=(iproute2)
command -v conntrack >/dev/null 2>&1 || missing+=(conntrack)
# podwall drops reads NFLOG group 100 through tcpdump's nflog: interface.
command -v tcpdump >/dev/null 2>&1 || missing+=(tcpdump)
# The HTML report's browser test drives Debian's chromium (puppeteer-core downloads no browser).
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
# nft monitor: the agent sees changes to its chains at once on the nft backend (drift tests).
[ -x /usr/sbin/nft ] || [ -x /sbin/nft ] || missing+=(nftables)
command -v node >/dev/null 2>&1 || missing+=(nodejs npm)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup: missing ${missing[*]}; run this script as root (or install them) first" >&2
    exit 1
  fi
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# The lab needs bridge netfilter (per network namespace once the module is loaded).
if [ "$(id -u)" -eq 0 ] && [ ! -e /proc/sys/net/bridge/bridge-nf-call-iptables ]; then
  modprobe br_netfilter 2>/dev/null || true
fi
npm ci --no-audit --no-fund --loglevel=error
