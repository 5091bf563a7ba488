#!/usr/bin/env bash
# make build: `sam build` of template.yaml into .aws-sam/build (no Docker, no --use-container).
# Every function and the layer use BuildMethod: makefile; the layer's pip install downloads
# manylinux aarch64 / cp312 wheels with the python3 that runs make, so no local python3.12
# is needed; when there is one (LAYER_PYTHON312, python3.12 on PATH, or pyenv's), the layer's
# bytecode is precompiled with it (layers/shared/Makefile), otherwise the build prints a warning.
# The tools live in their own venv (.tools/, from tools/requirements-tools.txt).
# Non-interactive (CI=true, no stdin). Extra arguments are passed to `sam build`.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

# shellcheck source=scripts/tools-env.sh
source scripts/tools-env.sh

ensure_tools
# The tools venv first on PATH: `sam` and, inside the Makefiles, `python3 -m pip`
# (the venv's python has pip; the wheels it fetches are for the Lambda platform anyway).
export PATH="${TOOLS_DIR}/bin:${PATH}"

# The Makefiles that sam runs are independent builds: nothing of an outer `make build`
# (jobserver, command-line variables) is passed down to them.
unset MAKEFLAGS MFLAGS MAKELEVEL MAKEOVERRIDES

build_dir=".aws-sam/build"
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
    case "${args[i]}" in
        --build-dir|-b) build_dir="${args[i + 1]:-${build_dir}}" ;;
        --build-dir=*) build_dir="${args[i]#--build-dir=}" ;;
    esac
done

echo "==> sam build" >&2
start=${SECONDS}
# --build-in-source: make runs in the source directories (nothing is written there; the
# Makefiles only write to $ARTIFACTS_DIR) instead of scratch copies.
sam build --template-file "${TEMPLATE}" --build-in-source --no-cached \
    --region "${AWS_REGION}" "$@" </dev/null
echo "build: OK in $((SECONDS - start))s -> ${build_dir}" >&2
