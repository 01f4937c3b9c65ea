#!/bin/sh
# Which Python creates .venv. Used by the Makefile; prints one command, or explains on
# stderr in one sentence why none fits and exits 1. Nothing is installed or downloaded.
#
#   sh tools/pick_python.sh [PYTHON]     PYTHON if given, else the first suitable of
#                                        python3.13, python3.12, python3.11, python3 on PATH
#   sh tools/pick_python.sh --venv DIR   check the Python of an existing virtual environment
#
# Suitable: CPython 3.11.5 to 3.13, as requires-python in pyproject.toml says (3.11.5 is
# the oldest Python the pinned soupsieve supports, a dependency of nbconvert;
# tests/test_makefile.py checks that the two agree).

NEED="CPython 3.11.5 to 3.13"
PROBE='import platform, sys; print("%s %d.%d.%d" % ((platform.python_implementation(),) + tuple(sys.version_info[:3])))'

# What "$1" is, in words: "CPython 3.12.1", or why it does not run.
describe() {
    if ! command -v "$1" >/dev/null 2>&1; then
        echo "not found"
    elif out=$("$1" -c "$PROBE" 2>&1); then
        echo "$out"
    else
        echo "not runnable ($(echo "$out" | head -n 1))"
    fi
}

# True for a description "CPython X.Y.Z" with 3.11.5 <= X.Y.Z < 3.14.
suitable() {
    case $1 in
        "CPython 3.11."[0-9]*) [ "${1#CPython 3.11.}" -ge 5 ] 2>/dev/null ;;
        "CPython 3.12."[0-9]* | "CPython 3.13."[0-9]*) true ;;
        *) false ;;
    esac
}

if [ "$1" = --venv ]; then
    found=$(describe "$2/bin/python")
    suitable "$found" && exit 0
    echo "make: $2/bin/python is $found, but the course needs $NEED:" \
        "delete $2 with 'make clean' and run make again." >&2
    exit 1
fi

if [ -n "$1" ]; then
    found=$(describe "$1")
    if suitable "$found"; then
        echo "$1"
        exit 0
    fi
    echo "make: PYTHON=$1 is $found, but the course needs $NEED;" \
        "point PYTHON= at one, e.g. make lab PYTHON=/usr/local/bin/python3.12" >&2
    exit 1
fi

tried=""
for candidate in python3.13 python3.12 python3.11 python3; do
    command -v "$candidate" >/dev/null 2>&1 || continue
    found=$(describe "$candidate")
    if suitable "$found"; then
        echo "$candidate"
        exit 0
    fi
    tried="$tried, $candidate is $found"
done
[ -n "$tried" ] || tried=", no python3 at all"
echo "make: the course needs $NEED, and PATH has none (${tried#, });" \
    "install one (python.org, your package manager, pyenv or conda) or point PYTHON= at one," \
    "e.g. make lab PYTHON=/usr/local/bin/python3.12" >&2
exit 1
