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

TOOLS_DIR="${TOOLS_DIR:-.tools}"
[[ "${TOOLS_DIR}" == /* ]] || TOOLS_DIR="${PWD}/${TOOLS_DIR}"
TOOLS_REQUIREMENTS="tools/requirements-tools.txt"
TEMPLATE="${TEMPLATE:-template.yaml}"

# Never prompt, never phone home: no telemetry, and SAM's global state (telemetry flag,
# weekly version check timestamp) kept inside the tools venv instead of ~/.aws-sam.
export SAM_CLI_TELEMETRY=0
export __SAM_CLI_APP_DIR="${TOOLS_DIR}/sam-app"
export AWS_REGION="${AWS_REGION:-${AWS_DEFAULT_REGION:-us-east-1}}"
export AWS_DEFAULT_REGION="${AWS_DEFAULT_REGION:-${AWS_REGION}}"

ensure_tools() {
    local python="${TOOLS_DIR}/bin/python"
    if ! "${python}" -c 'import sys' >/dev/null 2>&1; then
        if [[ -e "${TOOLS_DIR}" && ! -f "${TOOLS_DIR}/pyvenv.cfg" ]]; then
            echo "error: ${TOOLS_DIR} exists and is not a virtual environment" >&2
            exit 1
        fi
        rm -rf "${TOOLS_DIR}"   # missing or broken (e.g. the host python changed): recreate
        python3 -m venv "${TOOLS_DIR}"
    fi
    local want stamp="${TOOLS_DIR}/.requirements.sha256"
    want="$(cat "${TOOLS_REQUIREMENTS}" <("${python}" -VV) | sha256sum | cut -d' ' -f1)"
    if [[ ! -f "${stamp}" || "$(cat "${stamp}")" != "${want}" ]]; then
        echo "Installing deployment tools into ${TOOLS_DIR}/ (aws-sam-cli, cfn-lint)..." >&2
        local log="${TOOLS_DIR}/pip-install.log"
        if ! "${python}" -m pip install --disable-pip-version-check --no-input --quiet \
                -r "${TOOLS_REQUIREMENTS}" >"${log}" 2>&1 </dev/null; then
            cat "${log}" >&2
            echo "error: installing ${TOOLS_REQUIREMENTS} into ${TOOLS_DIR}/ failed" >&2
            exit 1
        fi
        echo "${want}" >"${stamp}"
    fi
    mkdir -p "${__SAM_CLI_APP_DIR}"
    if [[ ! -f "${__SAM_CLI_APP_DIR}/metadata.json" ]]; then
        # lastVersionCheck far in the future: SAM's weekly "update available" check never runs.
        printf '{"telemetryEnabled": false, "lastVersionCheck": 4102444800}\n' \
            >"${__SAM_CLI_APP_DIR}/metadata.json"
    fi
}

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
