"""The console in AWS: served by the media distribution under console/, allowed by the API's CORS for exactly
that origin, and configured by make deploy from the stack's outputs."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

from tests.support.template import REPO_ROOT, load_template

TEMPLATE = load_template()
RESOURCES: dict[str, Any] = TEMPLATE["Resources"]


def test_the_api_allows_exactly_the_consoles_origin_and_the_headers_it_needs() -> None:
    cors = RESOURCES["HttpApi"]["Properties"]["CorsConfiguration"]
    origins = cors["AllowOrigins"]
    assert origins["Fn::If"][0] == "CreateMediaDistribution"
    with_distribution = origins["Fn::If"][1]["Fn::If"]
    assert with_distribution[2] == [{"Fn::Sub": "https://${MediaDistribution.DomainName}"}]
    assert {"Fn::Join": ["", ["https://", {"Ref": "MediaDomainName"}]]} in with_distribution[1]
    assert "*" not in str(origins)
    assert {"idempotency-key", "if-none-match", "authorization", "content-type"} <= set(cors["AllowHeaders"])
    assert {"etag", "retry-after"} <= set(cors["ExposeHeaders"])
    assert cors["AllowCredentials"] is False


def test_the_distribution_serves_the_console_uncached_with_its_index_and_csp() -> None:
    config = RESOURCES["MediaDistribution"]["Properties"]["DistributionConfig"]
    (behavior,) = [b for b in config["CacheBehaviors"] if b["PathPattern"].startswith("console")]
    assert behavior["CachePolicyId"] == "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"  # CachingDisabled
    assert behavior["FunctionAssociations"] == [
        {"EventType": "viewer-request", "FunctionARN": {"Fn::GetAtt": ["ConsoleIndexFunction",
                                                                       "FunctionMetadata.FunctionARN"]}}]
    code = RESOURCES["ConsoleIndexFunction"]["Properties"]["FunctionCode"]
    assert "'/console'" in code and "index.html" in code and "301" in code
    csp = RESOURCES["ConsoleHeadersPolicy"]["Properties"]["ResponseHeadersPolicyConfig"]["SecurityHeadersConfig"][
        "ContentSecurityPolicy"]["ContentSecurityPolicy"]["Fn::Sub"]
    assert "default-src 'none'" in csp and "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    # the policy the browser tests run the console under (STRICT_CSP in tests/e2e/console/test_console.py), but
    # for connect-src: in AWS the API is another origin
    tested = (REPO_ROOT / "tests" / "e2e" / "console" / "test_console.py").read_text()
    for directive in ("default-src 'none'", "script-src 'self'", "style-src 'self'", "img-src 'self' data:",
                      "media-src 'self'", "base-uri 'none'", "form-action 'none'", "frame-ancestors 'none'"):
        assert directive in csp and directive in tested, directive


def _console_config() -> Any:
    spec = importlib.util.spec_from_file_location("console_config", REPO_ROOT / "scripts" / "console_config.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.console_config


def test_make_deploy_writes_the_consoles_config_from_the_stack(tmp_path: Path) -> None:
    console_config = _console_config()
    outputs = [{"OutputKey": "ApiUrl", "OutputValue": "https://abc123.execute-api.us-east-1.amazonaws.com/"},
               {"OutputKey": "MediaBucketName", "OutputValue": "genjobs-dev-media-1-abcd"}]
    parameters = [{"ParameterKey": "JwtMerchantClaim", "ParameterValue": "custom:merchant"}]
    config = console_config(outputs, parameters)
    assert config == {"apiBaseUrl": "https://abc123.execute-api.us-east-1.amazonaws.com",
                      "merchantClaim": "custom:merchant", "adminScope": "genjobs/admin", "oidc": None}
    # the keys the console reads are those of the committed same-origin default
    committed = json.loads((REPO_ROOT / "console" / "config.json").read_text())
    assert set(committed) == set(config)
    makefile = (REPO_ROOT / "Makefile").read_text()
    assert "scripts/deploy-console.sh $(ENV)" in makefile
