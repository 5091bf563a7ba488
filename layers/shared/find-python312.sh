#!/bin/sh
# Prints the absolute path of a working CPython 3.12 interpreter on the build machine, for layers/shared/Makefile
# (precompiles the layer's bytecode for Lambda python3.12) and tests/template/test_built_layer.py.
#
# Order: $LAYER_PYTHON312 if set; else a python3.12 on PATH that runs; else, when pyenv exists, python3.12 with
# PYENV_VERSION set to the newest installed 3.12 (a pyenv shim fails unless PYENV_VERSION names one).
# Exit status: 0 with the path on stdout; 1, printing nothing, when there is none or LAYER_PYTHON312=none;
# 2 when LAYER_PYTHON312 is set but is not a working Python 3.12 (an explicit setting is never second-guessed).

probe='import sys; assert sys.version_info[:2] == (3, 12); print(sys.executable)'

if [ -n "${LAYER_PYTHON312:-}" ]; then
    [ "${LAYER_PYTHON312}" = none ] && exit 1
    if ! "${LAYER_PYTHON312}" -c "${probe}" 2>/dev/null; then
        echo "error: LAYER_PYTHON312=${LAYER_PYTHON312} is not a working Python 3.12" >&2
        exit 2
    fi
    exit 0
fi

command -v python3.12 >/dev/null 2>&1 && python3.12 -c "${probe}" 2>/dev/null && exit 0

if command -v pyenv >/dev/null 2>&1; then
    version="$(pyenv versions --bare 2>/dev/null | grep -E '^3\.12' | tail -1)"
    if [ -n "${version}" ]; then
        PYENV_VERSION="${version}" pyenv exec python3.12 -c "${probe}" 2>/dev/null && exit 0
    fi
fi
exit 1
