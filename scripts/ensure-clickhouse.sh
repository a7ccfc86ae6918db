#!/usr/bin/env bash
# Makes sure a ClickHouse server binary is installed. On Debian/Ubuntu it
# installs Debian's clickhouse-server package when missing; elsewhere it says
# what to install.
set -euo pipefail

have() {
  command -v clickhouse-server >/dev/null 2>&1 || [ -x /usr/sbin/clickhouse-server ] || \
    command -v clickhouse >/dev/null 2>&1
}

if have; then
  exit 0
fi

if command -v apt-get >/dev/null 2>&1; then
  SUDO=""
  if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
  echo "ClickHouse not found: installing Debian's clickhouse-server package…"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq clickhouse-server >/dev/null
  # The package may start a system service; Parley runs its own server.
  $SUDO service clickhouse-server stop >/dev/null 2>&1 || true
  have && exit 0
fi

cat >&2 <<'MSG'
ClickHouse is required and could not be installed automatically.
Install a ClickHouse server (https://clickhouse.com/docs/install, or your
distribution's clickhouse-server package) so that `clickhouse-server` or
`clickhouse` is on PATH, or point Parley at an existing server with
clickhouse.addr in the config file.
MSG
exit 1
