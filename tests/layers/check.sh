#!/bin/sh
# Includes only go down. Each layer of the library may include its own folder and the
# layers below it, never one above:
#   include/  the public API (eex.h)
#   base/     status, arena, string map, op enums, half, crc32: the ground floor
#   weights/  kernels/   the file format and the kernels: base only
#   branches/ exit rule, confidence, detector front end: base, kernels, weights
#   engine/   graph, sessions, runs: all of the above
#   offload/  the wire, client and server: all of the above
#   tools/    the CLI: only the public API and tools/ itself
# Each #include "..." is resolved against the including file's folder (as the compiler
# does; -Iinclude covers eex.h). Prints every violation with file and line; exit 1 if any.
set -u
cd "$(dirname "$0")/../.." || exit 2
allowed() { # layer of the including file -> layers it may include
    case "$1" in
    include) echo "include" ;;
    base) echo "include base" ;;
    weights) echo "include base weights" ;;
    kernels) echo "include base kernels" ;;
    branches) echo "include base kernels weights branches" ;;
    engine) echo "include base kernels weights branches engine" ;;
    offload) echo "include base kernels weights branches engine offload" ;;
    tools) echo "include tools" ;;
    esac
}
T=$(mktemp)
trap 'rm -f "$T"' EXIT
checked=0
for f in $(git ls-files 'include/*.h' 'base/*' 'weights/*' 'kernels/*' 'branches/*' 'engine/*' 'offload/*' 'tools/*' | grep '\.[ch]$'); do
    layer=${f%%/*}
    ok=$(allowed "$layer")
    dir=$(dirname "$f")
    grep -n '^[[:space:]]*#[[:space:]]*include[[:space:]]*"' "$f" | while IFS= read -r line; do
        n=${line%%:*}
        inc=$(printf '%s\n' "$line" | sed 's/.*include[[:space:]]*"\([^"]*\)".*/\1/')
        if [ -e "$dir/$inc" ]; then
            target=$(realpath --relative-to=. "$dir/$inc")
        elif [ -e "include/$inc" ]; then
            target="include/$inc"
        else
            echo "$f:$n: \"$inc\" not found beside the file or in include/"
            echo x >>"$T"
            continue
        fi
        tl=${target%%/*}
        case " $ok " in
        *" $tl "*) ;;
        *) echo "$f:$n: $layer/ includes $target ($tl/ is not below $layer/)"; echo x >>"$T" ;;
        esac
    done
    checked=$((checked + 1))
done
n=$(wc -l <"$T")
if [ "$n" -gt 0 ]; then
    echo "FAIL  $n include(s) climb a layer ($checked files checked)"
    exit 1
fi
echo "ok    $checked files: every include goes to its own layer or one below"
