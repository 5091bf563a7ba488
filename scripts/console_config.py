"""The console's config.json for a deployed stack, from the stack's outputs and parameters (what
scripts/deploy-console.sh uploads beside console/index.html).

Usage: python3 scripts/console_config.py OUTPUTS.json PARAMETERS.json [OIDC.json]
  OUTPUTS.json / PARAMETERS.json: `aws cloudformation describe-stacks` Outputs / Parameters lists
  OIDC.json: optional sign-in through an identity provider (console/js/oidc.js reads it)
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any


def console_config(outputs: list[dict[str, str]], parameters: list[dict[str, str]],
                   oidc: dict[str, Any] | None = None) -> dict[str, Any]:
    by_key = {o["OutputKey"]: o["OutputValue"] for o in outputs}
    params = {p["ParameterKey"]: p.get("ParameterValue", "") for p in parameters}
    api = by_key.get("ApiUrl", "")
    if not api.startswith("https://"):
        raise SystemExit(f"the stack has no https ApiUrl output (got {api!r})")
    return {"apiBaseUrl": api.rstrip("/"), "merchantClaim": params.get("JwtMerchantClaim") or "merchant_id",
            "adminScope": "genjobs/admin", "oidc": oidc}


def main(argv: list[str]) -> int:
    if len(argv) not in (3, 4):
        print(__doc__, file=sys.stderr)
        return 2
    outputs = json.loads(Path(argv[1]).read_text())
    parameters = json.loads(Path(argv[2]).read_text())
    oidc = json.loads(Path(argv[3]).read_text()) if len(argv) == 4 else None
    print(json.dumps(console_config(outputs, parameters, oidc), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
