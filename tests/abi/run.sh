#!/bin/sh
# The public surface is the API: libeex.so exports exactly the functions that
# include/ declares EEX_API, it has a SONAME libeex.so.MAJOR, `make install` lays the
# usual symlinks, and header, library and CLI agree on the version.
set -u
BUILD=${BUILD:-build}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
pass=0
fail=0
ok() { pass=$((pass + 1)); echo "ok    $1"; }
bad() { fail=$((fail + 1)); echo "FAIL  $1"; }

so="$BUILD/libeex.so"
grep -ho 'EEX_API[^;]*' include/*.h | grep -o 'eex_[a-z0-9_]*(' | tr -d '(' | sort -u >"$T/declared"
nm -D --defined-only "$so" | awk '$2 == "T" || $2 == "W" || $2 == "D" || $2 == "B" || $2 == "R" {print $3}' |
    sort -u >"$T/exported"
if [ -s "$T/declared" ] && cmp -s "$T/declared" "$T/exported"; then
    ok "libeex.so exports exactly the $(wc -l <"$T/declared") functions include/ declares"
else
    bad "exported but not declared: $(comm -13 "$T/declared" "$T/exported" | head -20 | tr '\n' ' ')"
    bad "declared but not exported: $(comm -23 "$T/declared" "$T/exported" | head -20 | tr '\n' ' ')"
fi
ver=$(sed -n 's/.*EEX_VERSION_STRING "\(.*\)"/\1/p' include/eex.h)
major=$(sed -n 's/.*EEX_VERSION_MAJOR \([0-9]*\)$/\1/p' include/eex.h)
[ "$ver" = "$(sed -n 's/.*EEX_VERSION_MAJOR \([0-9]*\)$/\1/p;' include/eex.h).$(sed -n 's/.*EEX_VERSION_MINOR \([0-9]*\)$/\1/p' include/eex.h).$(sed -n 's/.*EEX_VERSION_PATCH \([0-9]*\)$/\1/p' include/eex.h)" ] &&
    ok "EEX_VERSION_STRING $ver is MAJOR.MINOR.PATCH" || bad "EEX_VERSION_STRING '$ver' vs the MAJOR/MINOR/PATCH macros"
soname=$(readelf -d "$so" | sed -n 's/.*Library soname: \[\(.*\)\]/\1/p')
[ "$soname" = "libeex.so.$major" ] && ok "SONAME $soname" || bad "SONAME '$soname', want libeex.so.$major"
out=$("$BUILD/eex" --version)
[ "$out" = "eex $ver (library $ver)" ] && ok "eex --version: $out" || bad "eex --version said '$out'"
# a program linked against the shared library asks it for its version
cat >"$T/v.c" <<'CEOF'
#include <eex.h>
#include <stdio.h>
#include <string.h>
int main(void) { puts(eex_version()); return strcmp(eex_version(), EEX_VERSION_STRING) != 0; }
CEOF
if cc -Iinclude -o "$T/v" "$T/v.c" -L"$BUILD" -leex 2>"$T/err" && [ "$(LD_LIBRARY_PATH=$BUILD "$T/v")" = "$ver" ]; then
    ok "a program linked with -leex gets eex_version() $ver"
else bad "linking with -leex: $(head -c 300 "$T/err")"; fi
make --no-print-directory -s install BUILD="$BUILD" DESTDIR="$T/root" PREFIX=/usr >"$T/inst" 2>&1
lib="$T/root/usr/lib"
if [ -f "$lib/libeex.so.$ver" ] && [ "$(readlink "$lib/libeex.so.$major")" = "libeex.so.$ver" ] &&
    [ "$(readlink "$lib/libeex.so")" = "libeex.so.$major" ] && grep -q "Version: $ver" "$lib/pkgconfig/eex.pc"; then
    ok "make install: libeex.so.$ver, libeex.so.$major and libeex.so links, eex.pc $ver"
else bad "make install layout: $(ls -l "$lib" 2>&1 | tr '\n' ' ') $(head -c 300 "$T/inst")"; fi
# every installed header stands alone: included first and by itself, it brings
# what its declarations need (each includes eex.h, which includes the others)
hdrs_ok=1
for h in include/*.h; do
    b=$(basename "$h")
    [ -f "$T/root/usr/include/$b" ] || { hdrs_ok=0; bad "make install did not install $b"; continue; }
    printf '#include <%s>\nint main(void) {\n    const float z[2] = {0.0f, 1.0f};\n    float p[2];\n    eex_cloud_client_free(NULL);\n    return eex_softmax(z, 2, 1.0f, p) != EEX_OK || !eex_kernel_isa();\n}\n' "$b" >"$T/h.c"
    cc -std=c11 -Wall -Werror -I"$T/root/usr/include" -o "$T/h" "$T/h.c" -L"$BUILD" -leex 2>"$T/err" ||
        { hdrs_ok=0; bad "#include <$b> alone: $(head -c 300 "$T/err")"; }
done
[ "$hdrs_ok" = 1 ] && ok "each installed header ($(cd include && echo *.h)) compiles alone"
echo "abi: $pass passed, $fail failed"
[ "$fail" = 0 ]
