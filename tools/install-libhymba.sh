#!/usr/bin/env bash
# Installs libhymba for C/C++ (and ctypes) programs:
#   PREFIX/lib/libhymba.so, PREFIX/include/hymba.h, PREFIX/lib/pkgconfig/hymba.pc
#
#   tools/install-libhymba.sh PREFIX [--no-build] [--with-swift-runtime]
#
# Builds the library first (swift build -c release --product hymba) unless --no-build; the
# built library is taken from $HYMBA_BUILD_DIR, else from `swift build -c release
# --show-bin-path`. libhymba.so needs the Swift runtime libraries (libswiftCore.so,
# libFoundation.so, ...): it finds them in the Swift toolchain it was built with (its
# RUNPATH). For a machine without that toolchain, --with-swift-runtime copies them next to
# libhymba.so, where its RUNPATH ($ORIGIN) finds them too.
#
# Then: cc prog.c $(PKG_CONFIG_PATH=PREFIX/lib/pkgconfig pkg-config --cflags --libs hymba)
set -euo pipefail
cd "$(dirname "$0")/.."

usage() { echo "usage: $0 PREFIX [--no-build] [--with-swift-runtime]" >&2; exit 2; }
[ $# -ge 1 ] || usage
prefix=$1; shift
build=1; runtime=0
for a in "$@"; do
    case $a in
        --no-build) build=0 ;;
        --with-swift-runtime) runtime=1 ;;
        *) usage ;;
    esac
done
mkdir -p "$prefix"
prefix=$(cd "$prefix" && pwd)

if [ "$build" = 1 ]; then swift build -c release --product hymba; fi
bin=${HYMBA_BUILD_DIR:-$(swift build -c release --show-bin-path)}
case $(uname -s) in Darwin) lib=libhymba.dylib ;; *) lib=libhymba.so ;; esac
[ -f "$bin/$lib" ] || { echo "error: $bin/$lib is not built (run: swift build -c release --product hymba)" >&2; exit 1; }

header=include/hymba.h
version() { sed -n "s/^#define HYMBA_VERSION_$1 \([0-9]*\)$/\1/p" "$header"; }
ver="$(version MAJOR).$(version MINOR).$(version PATCH)"

install -d "$prefix/lib/pkgconfig" "$prefix/include"
install -m 0755 "$bin/$lib" "$prefix/lib/$lib"
install -m 0644 "$header" "$prefix/include/hymba.h"
cat > "$prefix/lib/pkgconfig/hymba.pc" <<PC
prefix=$prefix
libdir=\${prefix}/lib
includedir=\${prefix}/include

Name: hymba
Description: libhymba, the C API of the hymba-edge runtime for NVIDIA Hymba models
Version: $ver
Libs: -L\${libdir} -Wl,-rpath,\${libdir} -lhymba
Cflags: -I\${includedir}
PC

if [ "$runtime" = 1 ]; then
    # The Swift runtime libraries libhymba.so loads from the toolchain (ldd's resolved paths).
    toolchain=$(ldd "$prefix/lib/$lib" | sed -n 's/.*libswiftCore.so => \(.*\)\/libswiftCore.so .*/\1/p')
    [ -n "$toolchain" ] || { echo "error: libswiftCore.so not found by ldd $prefix/lib/$lib" >&2; exit 1; }
    ldd "$prefix/lib/$lib" | awk -v d="$toolchain/" 'index($3, d) == 1 { print $3 }' | while read -r so; do
        install -m 0644 "$so" "$prefix/lib/"
    done
fi
echo "installed libhymba $ver in $prefix (lib/$lib, include/hymba.h, lib/pkgconfig/hymba.pc)"
