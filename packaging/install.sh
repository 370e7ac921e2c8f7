#!/bin/sh
# Installs the Tokiflow binary as a systemd service, or upgrades it in place:
#   sudo packaging/install.sh [--binary dist/tokiflow] [--port 8000] [--host 127.0.0.1]
#
# It puts the binary in PREFIX/bin, creates the system user, writes the hardened unit to
# /etc/systemd/system/tokiflow.service and a starting config to /etc/tokiflow/tokiflow.toml
# (kept if it exists), then enables and (re)starts the service and prints the URL to open.
# Data lives in /var/lib/tokiflow (created 0700 by systemd). Upgrading is running it again
# with the new binary: the service restarts and applies any migrations after a backup copy.
#
# Options:
#   --binary FILE     the tokiflow binary to install (default: dist/tokiflow, or ./tokiflow)
#   --prefix DIR      where bin/tokiflow goes (default: /usr/local)
#   --destdir DIR     install under this fake root (packaging, tests); also DESTDIR=...
#                     implies --no-systemctl and no user creation
#   --host ADDR       listen address written to a new config (default: 127.0.0.1)
#   --port PORT       port written to a new config (default: 8000)
#   --base-url URL    public URL written to a new config (default: http://<host>:<port>)
#   --user NAME       system user the service runs as (default: tokiflow)
#   --no-systemctl    install the files only: do not create the user or run systemctl
set -eu

here=$(cd "$(dirname "$0")" && pwd)
binary=""
prefix=/usr/local
destdir=${DESTDIR:-}
host=127.0.0.1
port=8000
base_url=""
user=tokiflow
systemctl=yes

say() { printf 'install: %s\n' "$*"; }
die() { printf 'install: error: %s\n' "$*" >&2; exit 1; }
need_value() { [ $# -ge 2 ] && [ -n "$2" ] || die "$1 needs a value (see the top of $0)"; }

while [ $# -gt 0 ]; do
  case "$1" in
    --binary) need_value "$@"; binary=$2; shift 2 ;;
    --prefix) need_value "$@"; prefix=$2; shift 2 ;;
    --destdir) need_value "$@"; destdir=$2; shift 2 ;;
    --host) need_value "$@"; host=$2; shift 2 ;;
    --port) need_value "$@"; port=$2; shift 2 ;;
    --base-url) need_value "$@"; base_url=$2; shift 2 ;;
    --user) need_value "$@"; user=$2; shift 2 ;;
    --no-systemctl) systemctl=no; shift ;;
    -h|--help) sed -n '2,/^set -eu/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown option $1 (see --help)" ;;
  esac
done

case "$port" in
  ''|*[!0-9]*) die "--port must be a number, not '$port'" ;;
esac
[ "$port" -ge 1 ] && [ "$port" -le 65535 ] || die "--port must be between 1 and 65535"
case "$user" in
  ''|*[!a-z0-9_-]*) die "--user must be a plain user name, not '$user'" ;;
esac

if [ -z "$binary" ]; then
  for candidate in "$here/../dist/tokiflow" "$here/tokiflow" ./tokiflow; do
    if [ -f "$candidate" ] && [ -x "$candidate" ]; then binary=$candidate; break; fi
  done
  [ -n "$binary" ] || die "no binary found: build one with packaging/build-binary or pass --binary"
fi
[ -f "$binary" ] && [ -x "$binary" ] || die "$binary is not an executable file"
version=$("$binary" version 2>/dev/null) || die "$binary does not run ('$binary version' failed)"

if [ -n "$destdir" ]; then
  systemctl=no
elif [ "$(id -u)" -ne 0 ]; then
  die "run as root (sudo $0 ...), or use --destdir to install into a folder"
fi

bin_dir="$prefix/bin"
unit_dir=/etc/systemd/system
conf_dir=/etc/tokiflow
state_dir=/var/lib/tokiflow
[ -n "$base_url" ] || base_url="http://$host:$port"

say "installing Tokiflow $version"
mkdir -p "$destdir$bin_dir" "$destdir$unit_dir" "$destdir$conf_dir"
# Copy then rename: a running binary is replaced, never written over.
cp "$binary" "$destdir$bin_dir/.tokiflow.new"
chmod 0755 "$destdir$bin_dir/.tokiflow.new"
mv -f "$destdir$bin_dir/.tokiflow.new" "$destdir$bin_dir/tokiflow"
say "  binary   $destdir$bin_dir/tokiflow"

sed -e "s|^ExecStart=.*|ExecStart=$bin_dir/tokiflow serve|" \
    -e "s|^User=.*|User=$user|" \
    -e "s|^Group=.*|Group=$user|" \
    -e "s|^Environment=TOKIFLOW_DATA_DIR=.*|Environment=TOKIFLOW_DATA_DIR=$state_dir|" \
    "$here/tokiflow.service" > "$destdir$unit_dir/tokiflow.service"
chmod 0644 "$destdir$unit_dir/tokiflow.service"
say "  unit     $destdir$unit_dir/tokiflow.service"

config="$destdir$conf_dir/tokiflow.toml"
if [ -e "$config" ]; then
  say "  config   $config (kept as it was)"
else
  umask 027
  cat > "$config" <<TOML
# Tokiflow settings (every one is listed in docs/configuration.md). Restart the service after
# a change: systemctl restart tokiflow
data_dir = "$state_dir"
host = "$host"
port = $port
base_url = "$base_url"
TOML
  umask 022
  say "  config   $config"
fi

if [ "$systemctl" = yes ]; then
  if ! getent passwd "$user" >/dev/null 2>&1; then
    useradd --system --home-dir "$state_dir" --no-create-home \
      --shell /usr/sbin/nologin --user-group "$user"
    say "  user     $user (created)"
  fi
  chgrp "$user" "$config" 2>/dev/null || true
  command -v systemctl >/dev/null 2>&1 || die "systemctl not found; rerun with --no-systemctl"
  systemctl daemon-reload
  systemctl enable tokiflow.service >/dev/null 2>&1
  systemctl restart tokiflow.service
  tries=0
  until "$bin_dir/tokiflow" healthcheck --quiet --config "$conf_dir/tokiflow.toml" 2>/dev/null; do
    tries=$((tries + 1))
    if [ "$tries" -ge 30 ]; then
      die "the service did not become healthy; see: journalctl -u tokiflow -n 50"
    fi
    sleep 1
  done
  say "the service is running (systemctl status tokiflow; journalctl -u tokiflow)"
else
  say "not starting it (--no-systemctl); to run it: systemctl daemon-reload &&" \
    "systemctl enable --now tokiflow"
fi

say ""
say "first run: open $base_url/ in a browser"
if [ "$host" = 127.0.0.1 ]; then
  say "(it listens on 127.0.0.1 only: put a reverse proxy with TLS in front of it, or set"
  say " host = \"0.0.0.0\" in $conf_dir/tokiflow.toml)"
fi
say "admin commands: sudo -u $user $bin_dir/tokiflow monitors list --config $conf_dir/tokiflow.toml"
say "backups:        sudo -u $user $bin_dir/tokiflow backup --config $conf_dir/tokiflow.toml --to FILE"
