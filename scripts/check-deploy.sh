#!/usr/bin/env bash
# make check-deploy: what a real deploy would hit first, checked offline (no AWS account, no Docker).
#   1. samconfig  every samconfig.toml environment parsed by SAM CLI's own code, its parameter overrides
#                 checked against template.yaml, and its `sam deploy` command line printed
#                 (scripts/check_samconfig.py)
#   2. transform  template.yaml transformed by the SAM translator with each environment's parameters, and
#                 the result checked (scripts/check_transformed.py), then cfn-lint on the transformed template
#   3. checkov    on the transformed template, with the documented skips of tools/checkov.yaml
# `bash scripts/check-deploy.sh samconfig|transform|checkov` runs one step. Non-interactive (CI=true).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

# shellcheck source=scripts/tools-env.sh
source scripts/tools-env.sh

OUT=".aws-sam/check-deploy"
STEP="${1:-all}"
CONFIG_FILE="${CONFIG_FILE:-samconfig.toml}"
mkdir -p "${OUT}"
ensure_tools
PY="${TOOLS_DIR}/bin/python"

environments() {
    "${PY}" -c 'import sys, tomllib
doc = tomllib.load(open(sys.argv[1], "rb"))
print("\n".join(sorted(e for e, c in doc.items() if isinstance(c, dict) and "deploy" in c)))' "${CONFIG_FILE}"
}

if [[ "${STEP}" == all || "${STEP}" == samconfig ]]; then
    echo "==> samconfig: every environment through SAM CLI (${CONFIG_FILE})" >&2
    "${PY}" scripts/check_samconfig.py --config-file "${CONFIG_FILE}" --template-file "${TEMPLATE}" </dev/null
fi

if [[ "${STEP}" == all || "${STEP}" == transform ]]; then
    for env in $(environments); do
        echo "==> transform: SAM translator with the ${env} parameters" >&2
        "${PY}" scripts/check_transformed.py "${env}" "${OUT}/transformed-${env}.json" </dev/null
        echo "==> cfn-lint ${OUT}/transformed-${env}.json" >&2
        # W2001 (parameter not used): the translator substitutes some parameters' values (e.g. the worker's
        # EventInvokeConfig retries), as CloudFormation's own transform does; the source template uses them.
        "${TOOLS_DIR}/bin/cfn-lint" --regions "${AWS_REGION}" --ignore-checks W2001 \
            -- "${OUT}/transformed-${env}.json" </dev/null
    done
fi

if [[ "${STEP}" == all || "${STEP}" == checkov ]]; then
    ensure_checkov
    mapfile -t envs < <(environments)
    env="${CHECKOV_ENV:-${envs[0]}}"
    [[ -f "${OUT}/transformed-${env}.json" ]] || \
        "${PY}" scripts/check_transformed.py "${env}" "${OUT}/transformed-${env}.json" </dev/null >/dev/null
    echo "==> checkov (${OUT}/transformed-${env}.json, skips: tools/checkov.yaml)" >&2
    "${TOOLS_DIR}/checkov/bin/checkov" --config-file tools/checkov.yaml \
        -f "${OUT}/transformed-${env}.json" </dev/null
fi

echo "check-deploy: OK" >&2
