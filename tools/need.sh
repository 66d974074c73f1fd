#!/bin/sh
# need.sh WHO ITEM...: checks, before a make target starts its real work, that
# what it reads from outside the repository is installed. On the first missing
# item it prints one line naming it and the command that installs it, and exits 1;
# prints nothing when all is present. WHO names the caller in the message.
#
# Items:
#   fmnist=DIR       the Fashion-MNIST IDX files in DIR (Debian's dataset-fashion-mnist)
#   py:MODULE=PKG    a module importable by $PY (default /usr/bin/python3), Debian package PKG
#   cmd:NAME=PKG     a command on PATH, Debian package PKG
#   file:PATH=HOW    a file the repository builds or ships; HOW says how to get it
#
# `make deps` installs every package named here (make print-deps lists them).
set -u
PY=${PY:-/usr/bin/python3}
who=$1
shift
missing() {
    echo "$who: $1" >&2
    exit 1
}
for item in "$@"; do
    case $item in
    fmnist=*)
        dir=${item#fmnist=}
        for f in t10k-images-idx3-ubyte t10k-labels-idx1-ubyte train-images-idx3-ubyte train-labels-idx1-ubyte; do
            [ -f "$dir/$f.gz" ] || [ -f "$dir/$f" ] ||
                missing "Fashion-MNIST is missing ($dir/$f.gz): install Debian's dataset-fashion-mnist with 'make deps' (or apt-get install dataset-fashion-mnist)"
        done ;;
    py:*)
        spec=${item#py:}
        mod=${spec%%=*} pkg=${spec#*=}
        [ -x "$PY" ] || missing "$PY is missing: install Debian's python3 with 'make deps' (or apt-get install python3)"
        "$PY" -c "import $mod" >/dev/null 2>&1 ||
            missing "Python module '$mod' is missing for $PY: install Debian's $pkg with 'make deps' (or apt-get install $pkg)" ;;
    cmd:*)
        spec=${item#cmd:}
        name=${spec%%=*} pkg=${spec#*=}
        command -v "$name" >/dev/null 2>&1 ||
            missing "command '$name' is missing: install Debian's $pkg with 'make deps' (or apt-get install $pkg)" ;;
    file:*)
        spec=${item#file:}
        path=${spec%%=*} how=${spec#*=}
        [ -f "$path" ] || missing "$path is missing ($how)" ;;
    *)
        echo "need.sh: unknown item '$item'" >&2
        exit 2 ;;
    esac
done
exit 0
