#!/usr/bin/env bash
# Puts a current nats-server (Debian trixie's, 2.10+) at data/nats-next/nats-server, for
# `npm run test:nats-next`: the suite normally runs on the nats-server on PATH (Debian bookworm's
# 2.9.10), and orderflow must work on both.
#
# It installs nothing and leaves the machine's apt alone: a private apt configuration (its own
# sources list naming only trixie, its own state, cache and lists under a temporary directory, none
# of /etc/apt's configuration parts or hooks) downloads the .deb, and dpkg-deb extracts the binary.
# Idempotent: when the binary is there and answers --version, it only prints that version.
#
# NATS_NEXT_MIRROR overrides the mirror (default: the host /etc/apt names, deb.debian.org).
set -euo pipefail
cd "$(dirname "$0")/.."

dest_dir=data/nats-next
dest="$dest_dir/nats-server"
mirror="${NATS_NEXT_MIRROR:-http://deb.debian.org/debian}"
suite=trixie
keyring=/usr/share/keyrings/debian-archive-keyring.gpg

die() {
  echo "fetch-nats-server: $*" >&2
  exit 1
}

if [ -x "$dest" ] && version=$("$dest" --version 2>/dev/null); then
  echo "$dest: $version"
  exit 0
fi

command -v apt-get >/dev/null || die "needs apt-get and dpkg-deb (Debian/Ubuntu); put a nats-server 2.10+ at $dest by hand"
command -v dpkg-deb >/dev/null || die "needs dpkg-deb (Debian/Ubuntu); put a nats-server 2.10+ at $dest by hand"
[ -r "$keyring" ] || die "$keyring is missing (sudo apt-get install debian-archive-keyring): it verifies the $suite index"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/fetch-nats-server.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
# apt downloads as the unprivileged _apt user when run as root: it must reach the directories.
chmod 755 "$tmp"
mkdir -p "$tmp/etc/sources.list.d" "$tmp/etc/preferences.d" "$tmp/state/lists/partial" "$tmp/cache/archives/partial" "$tmp/deb" "$tmp/x"
: >"$tmp/state/status"
echo "deb [signed-by=$keyring] $mirror $suite main" >"$tmp/etc/sources.list"
# Read first (APT_CONFIG): no configuration parts or main file of the machine's, so none of its
# hooks (PackageKit, AppStream) run on this private index.
cat >"$tmp/apt.conf" <<EOF
Dir::Etc::main "/dev/null";
Dir::Etc::parts "/dev/null";
Acquire::Languages "none";
EOF
apt_opts=(
  -o "Dir::Etc::SourceList=$tmp/etc/sources.list"
  -o "Dir::Etc::SourceParts=$tmp/etc/sources.list.d"
  -o "Dir::Etc::PreferencesParts=$tmp/etc/preferences.d"
  -o "Dir::State=$tmp/state"
  -o "Dir::State::status=$tmp/state/status"
  -o "Dir::Cache=$tmp/cache"
  -o "Debug::NoLocking=1"
)
export APT_CONFIG="$tmp/apt.conf"

echo "fetch-nats-server: downloading nats-server from $mirror $suite (private apt index in $tmp)"
if ! out=$(apt-get "${apt_opts[@]}" -q update 2>&1) || grep -q '^[WE]: ' <<<"$out"; then
  reason=$(grep -m1 '^[WE]: ' <<<"$out" || tail -1 <<<"$out")
  die "cannot read $suite's index from $mirror: ${reason#?: }"
fi
if ! out=$(cd "$tmp/deb" && apt-get "${apt_opts[@]}" -q download nats-server 2>&1); then
  reason=$(grep -m1 '^[WE]: ' <<<"$out" || tail -1 <<<"$out")
  die "cannot download nats-server from $mirror $suite: ${reason#?: }"
fi
deb=$(find "$tmp/deb" -name 'nats-server_*.deb' | head -1)
[ -n "$deb" ] || die "apt-get download left no nats-server .deb in $tmp/deb"
dpkg-deb -x "$deb" "$tmp/x"
bin=$(find "$tmp/x" -type f -name nats-server -perm -u+x | head -1)
[ -n "$bin" ] || die "$(basename "$deb") holds no nats-server binary"
mkdir -p "$dest_dir"
install -m 755 "$bin" "$dest.tmp"
mv -f "$dest.tmp" "$dest"
version=$("$dest" --version) || die "$dest does not run (--version failed)"
echo "$dest: $version (from $(basename "$deb"))"
