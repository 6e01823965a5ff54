#!/usr/bin/env bash
# System packages the local stack needs: Java 17 (Kafka), Maven (fetches the Kafka jars),
# PostgreSQL (server binaries), Chromium (the headless dashboard test). Installs what is
# missing when run as root; otherwise says what to install. Idempotent and quiet when all is
# there.
set -euo pipefail

missing=()
command -v java >/dev/null 2>&1 || missing+=(openjdk-17-jre-headless)
command -v mvn >/dev/null 2>&1 || missing+=(maven)
ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || missing+=(postgresql)
command -v runuser >/dev/null 2>&1 || missing+=(util-linux)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "setup: missing system packages: ${missing[*]} (install them with apt-get as root)" >&2
  exit 1
fi
echo "setup: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# Debian's postgresql package starts a cluster of its own on 5432; the stack runs its own.
if command -v pg_ctlcluster >/dev/null 2>&1; then
  service postgresql stop >/dev/null 2>&1 || true
fi
