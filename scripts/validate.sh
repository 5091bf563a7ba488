#!/usr/bin/env bash
# make validate: lint template.yaml with `sam validate --lint` and `cfn-lint`.
# The tools live in their own venv (.tools/, from tools/requirements-tools.txt) so that
# aws-sam-cli's pins never touch the project's environment. Non-interactive (CI=true, no stdin).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

# shellcheck source=scripts/tools-env.sh
source scripts/tools-env.sh

ensure_tools
export PATH="${TOOLS_DIR}/bin:${PATH}"

echo "==> sam validate --lint" >&2
sam validate --lint --template-file "${TEMPLATE}" --region "${AWS_REGION}" </dev/null

echo "==> cfn-lint ${TEMPLATE}" >&2
cfn-lint --regions "${AWS_REGION}" -- "${TEMPLATE}" </dev/null

echo "validate: OK" >&2
