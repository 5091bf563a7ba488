# Sourced by scripts/validate.sh, build.sh, check-deploy.sh and lock-layer.sh: the deployment tools in their
# own venv (.tools/, from tools/requirements-tools.txt) so that aws-sam-cli's exact pins (boto3, pydantic, ...)
# never touch the project's environment (.venv/), and checkov in a venv of its own (.tools/checkov/, from
# tools/requirements-checkov.txt) because checkov pins boto3 below the version aws-sam-cli pins exactly.
# Non-interactive (CI=true, no stdin), no telemetry, no version checks.

TOOLS_DIR="${TOOLS_DIR:-.tools}"
[[ "${TOOLS_DIR}" == /* ]] || TOOLS_DIR="${PWD}/${TOOLS_DIR}"
TEMPLATE="${TEMPLATE:-template.yaml}"

# Never prompt, never phone home: no telemetry, and SAM's global state (telemetry flag,
# weekly version check timestamp) kept inside the tools venv instead of ~/.aws-sam.
export SAM_CLI_TELEMETRY=0
export __SAM_CLI_APP_DIR="${TOOLS_DIR}/sam-app"
export AWS_REGION="${AWS_REGION:-${AWS_DEFAULT_REGION:-us-east-1}}"
export AWS_DEFAULT_REGION="${AWS_DEFAULT_REGION:-${AWS_REGION}}"
# checkov: no Bridgecrew/Prisma platform calls, no version check.
export BC_SKIP_MAPPING=TRUE CHECKOV_RUN_SCA_PACKAGE_SCAN_V2=false

# _ensure_venv <dir> <requirements file> <what>
_ensure_venv() {
    local dir="$1" requirements="$2" what="$3"
    local python="${dir}/bin/python"
    if ! "${python}" -c 'import sys' >/dev/null 2>&1; then
        if [[ -e "${dir}" && ! -f "${dir}/pyvenv.cfg" ]]; then
            echo "error: ${dir} exists and is not a virtual environment" >&2
            exit 1
        fi
        rm -rf "${dir}"   # missing or broken (e.g. the host python changed): recreate
        python3 -m venv "${dir}"
    fi
    local want stamp="${dir}/.requirements.sha256"
    want="$(cat "${requirements}" <("${python}" -VV) | sha256sum | cut -d' ' -f1)"
    if [[ ! -f "${stamp}" || "$(cat "${stamp}")" != "${want}" ]]; then
        echo "Installing ${what} into ${dir}/ ..." >&2
        local log="${dir}/pip-install.log"
        if ! "${python}" -m pip install --disable-pip-version-check --no-input --quiet \
                -r "${requirements}" >"${log}" 2>&1 </dev/null; then
            cat "${log}" >&2
            echo "error: installing ${requirements} into ${dir}/ failed" >&2
            exit 1
        fi
        echo "${want}" >"${stamp}"
    fi
}

ensure_tools() {
    _ensure_venv "${TOOLS_DIR}" tools/requirements-tools.txt "deployment tools (aws-sam-cli, cfn-lint)"
    mkdir -p "${__SAM_CLI_APP_DIR}"
    if [[ ! -f "${__SAM_CLI_APP_DIR}/metadata.json" ]]; then
        # lastVersionCheck far in the future: SAM's weekly "update available" check never runs.
        printf '{"telemetryEnabled": false, "lastVersionCheck": 4102444800}\n' \
            >"${__SAM_CLI_APP_DIR}/metadata.json"
    fi
}

ensure_checkov() {
    _ensure_venv "${TOOLS_DIR}/checkov" tools/requirements-checkov.txt "checkov"
}
