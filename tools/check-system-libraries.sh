#!/usr/bin/env bash
# Checks that the system libraries the package links are installed (zstd, lz4: the chunk
# codecs; libedit: chat's line editing; pkg-config finds them). Missing ones are installed
# with apt-get when running as root on Debian/Ubuntu; otherwise it stops with one line
# naming the exact command to run. Used by tools/demo.sh before it builds.
set -euo pipefail
packages="libzstd-dev liblz4-dev libedit-dev pkg-config"
missing() {
    command -v pkg-config >/dev/null || return 0
    pkg-config --exists libzstd liblz4 libedit || return 0
    return 1
}
# macOS: libedit is in the SDK and SwiftPM names the Homebrew packages for zstd and lz4 itself.
[ "$(uname)" = Darwin ] && exit 0
missing || exit 0
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
    echo "installing the system libraries: apt-get install -y $packages" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq $packages >&2
    missing || exit 0
fi
echo "error: the zstd, lz4 and libedit development libraries are missing; install them first: sudo apt-get install -y $packages" >&2
exit 1
