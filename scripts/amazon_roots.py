"""Write the Amazon Trust Services root CAs (Amazon Root CA 1-4) from certifi's cacert.pem to one PEM file.

Used by layers/shared/Makefile: the layer ships them as /opt/certs/amazon-trust-services-roots.pem, the
sslrootcert of the functions' `sslmode=verify-full` connections to RDS Proxy. RDS Proxy's certificates come
from ACM and chain to Amazon Root CA 1 (Amazon Trust Services), which AWS names as the trust store for
proxy connections (https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/rds-proxy.howitworks.html);
2-4 are the same CA family's ECDSA/RSA-4096 roots, kept so that a future ACM chain to them verifies too.

The roots come from certifi (Mozilla's CA list, pinned with its hash in layers/shared/certs.lock) because
nothing but PyPI, apt and npm is reachable from a build. Each certificate must also match the SHA-256
fingerprint pinned below, which was checked against a second, independent copy (Debian's ca-certificates,
/usr/share/ca-certificates/mozilla/Amazon_Root_CA_*.crt): a certifi release that changed or dropped one of
these roots fails the build instead of shipping a different trust anchor.

Usage: python3 amazon_roots.py <certifi cacert.pem> <output.pem>   (standard library only)
"""

from __future__ import annotations

import base64
import hashlib
import re
import sys
from pathlib import Path

FINGERPRINTS_SHA256 = {
    "Amazon Root CA 1": "8ecde6884f3d87b1125ba31ac3fcb13d7016de7f57cc904fe1cb97c6ae98196e",
    "Amazon Root CA 2": "1ba5b2aa8c65401a82960118f80bec4f62304d83cec4713a19c39c011ea46db4",
    "Amazon Root CA 3": "18ce6cfe7bf14e60b2e347b8dfe868cb31d02ebb3ada271569f50343b46db3a4",
    "Amazon Root CA 4": "e35d28419ed02025cfa69038cd623962458da5c695fbdea3c22b0bfb25897092",
}
_ENTRY = re.compile(
    r'^# Label: "(?P<label>[^"]+)"\n(?:#.*\n)*'
    r"(?P<pem>-----BEGIN CERTIFICATE-----\n[A-Za-z0-9+/=\n]+?-----END CERTIFICATE-----)",
    re.MULTILINE,
)


def der_of(pem: str) -> bytes:
    body = pem.removeprefix("-----BEGIN CERTIFICATE-----").removesuffix("-----END CERTIFICATE-----")
    return base64.b64decode("".join(body.split()))


def amazon_roots(cacert: str) -> dict[str, str]:
    found = {m["label"]: m["pem"] for m in _ENTRY.finditer(cacert) if m["label"] in FINGERPRINTS_SHA256}
    missing = sorted(set(FINGERPRINTS_SHA256) - set(found))
    if missing:
        raise SystemExit(f"amazon_roots: not in the CA list: {', '.join(missing)}")
    for label, pem in found.items():
        actual = hashlib.sha256(der_of(pem)).hexdigest()
        if actual != FINGERPRINTS_SHA256[label]:
            raise SystemExit(f"amazon_roots: {label} has SHA-256 {actual}, expected {FINGERPRINTS_SHA256[label]}")
    return {label: found[label] for label in FINGERPRINTS_SHA256}


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    roots = amazon_roots(Path(argv[1]).read_text(encoding="ascii"))
    parts = [
        "# Amazon Trust Services root CAs (RDS Proxy verify-full trust store), from certifi;"
        " see scripts/amazon_roots.py\n"
    ]
    for label, pem in roots.items():
        parts.append(f"\n# {label}\n# SHA-256 {FINGERPRINTS_SHA256[label]}\n{pem}\n")
    Path(argv[2]).write_text("".join(parts), encoding="ascii")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
