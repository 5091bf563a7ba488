#!/usr/bin/env bash
# Upload console/ to the media bucket's console/ prefix with a config.json for this stack (make deploy runs it
# after `sam deploy`). Served by the stack's CloudFront distribution at https://<distribution>/console/.
# Needs the AWS CLI and: s3:PutObject, s3:DeleteObject, s3:ListBucket on the bucket's console/ prefix,
# cloudformation:DescribeStacks. CONSOLE_OIDC_JSON=path/to/oidc.json adds identity-provider sign-in.
set -euo pipefail
cd "$(dirname "$0")/.."
ENV_NAME="${1:?usage: deploy-console.sh ENV}"
STACK=$(python3 -c 'import sys, tomllib; print(tomllib.load(open("samconfig.toml", "rb"))[sys.argv[1]]["deploy"]["parameters"]["stack_name"])' "$ENV_NAME")
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
aws cloudformation describe-stacks --stack-name "$STACK" --query "Stacks[0].Outputs" --output json > "$tmp/outputs.json"
aws cloudformation describe-stacks --stack-name "$STACK" --query "Stacks[0].Parameters" --output json > "$tmp/parameters.json"
python3 scripts/console_config.py "$tmp/outputs.json" "$tmp/parameters.json" ${CONSOLE_OIDC_JSON:+"$CONSOLE_OIDC_JSON"} > "$tmp/config.json"
BUCKET=$(python3 -c 'import json, sys; print(next(o["OutputValue"] for o in json.load(open(sys.argv[1])) if o["OutputKey"] == "MediaBucketName"))' "$tmp/outputs.json")
# the committed config.json is the same-origin default of `make run`: never uploaded
aws s3 sync console/ "s3://$BUCKET/console/" --delete --exclude config.json --cache-control no-cache
# ES modules need a JavaScript content type whatever the CLI guesses
aws s3 cp console/ "s3://$BUCKET/console/" --recursive --exclude "*" --include "*.js" \
  --content-type text/javascript --cache-control no-cache
aws s3 cp "$tmp/config.json" "s3://$BUCKET/console/config.json" --content-type application/json --cache-control no-cache
echo "console uploaded to s3://$BUCKET/console/"
