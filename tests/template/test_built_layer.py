"""`make build` output is deployable on Lambda python3.12 / arm64: inspect the built layer and functions.

The session builds the stack itself with scripts/build.sh (the script `make build` runs) into a temporary
directory, so it never races a developer's .aws-sam/ and always sees the current sources. The first run
installs the deployment tools into .tools/ (about half a minute); a build takes seconds after that.

The layer carries CPython 3.12 bytecode when the build machine has a Python 3.12 (layers/shared/find-python312.sh),
and sources only, with a warning in the build output, when it has none.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from email.parser import Parser
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from tests.support.template import REPO_ROOT, functions, load_template

pytestmark = pytest.mark.slow

LAMBDA_UNZIPPED_LIMIT = 250 * 1024 * 1024  # function code + all its layers, unzipped
LAMBDA_GLIBC = (2, 34)  # Amazon Linux 2023 (python3.12 runtime)
EM_AARCH64 = 183
SOURCE_LAYER = REPO_ROOT / "layers" / "shared"
PURE_TAGS = {"py3-none-any", "py2.py3-none-any"}
# cp312-cp312, or the stable ABI (abi3) built for any CPython 3.x up to 3.12 (cryptography ships cp311-abi3)
BINARY_TAG = re.compile(r"^(cp312-cp312|cp3(\d+)-abi3)-(manylinux2014|manylinux_(\d+)_(\d+))_aarch64$")
FIND_PYTHON312 = SOURCE_LAYER / "find-python312.sh"
# importlib.util.MAGIC_NUMBER of CPython 3.12 (3531; the same for every 3.12.x). Checked against the build
# machine's 3.12 when there is one (test_layer_bytecode_matches_its_sources_under_python312).
PYC_MAGIC_312 = b"\xcb\r\r\n"
PYC_FLAG_HASH_BASED = 0b01  # pyc header word 2 (PEP 552): bit 0 hash-based, bit 1 check_source
NO_PYTHON312_WARNING = "WARNING: SharedLayer: no Python 3.12 found"


@dataclass(frozen=True)
class Build:
    root: Path
    log: str | None  # sam build's output (make's stdout included); None for GENJOBS_BUILD_DIR


@pytest.fixture(scope="session")
def build(tmp_path_factory: pytest.TempPathFactory) -> Build:
    prebuilt = os.environ.get("GENJOBS_BUILD_DIR")
    if prebuilt:
        return Build(Path(prebuilt), None)
    root = tmp_path_factory.mktemp("sam-build")
    result = subprocess.run(
        ["bash", "scripts/build.sh", "--build-dir", str(root / "build"), "--cache-dir", str(root / "cache")],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=900,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    if result.returncode != 0:
        pytest.fail(f"scripts/build.sh failed ({result.returncode}):\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}")
    return Build(root / "build", result.stdout + result.stderr)


@pytest.fixture(scope="session")
def build_dir(build: Build) -> Path:
    return build.root


@pytest.fixture(scope="session")
def python312() -> str | None:
    """The build machine's Python 3.12 as the layer build finds it, or None."""
    found = subprocess.run(["sh", str(FIND_PYTHON312)], capture_output=True, text=True, timeout=60, check=False)
    assert found.returncode in (0, 1), f"find-python312.sh: {found.stderr.strip()}"
    if found.returncode == 1:
        return None
    return found.stdout.strip()


@pytest.fixture(scope="session")
def layer_dir(build_dir: Path) -> Path:
    path = build_dir / "SharedLayer" / "python"
    assert path.is_dir(), f"{path} missing: the layer must put its packages under python/"
    return path


def _files(root: Path) -> Iterator[Path]:
    return (p for p in root.rglob("*") if p.is_file())


def _size(root: Path) -> int:
    return sum(p.stat().st_size for p in _files(root))


def _dist_infos(layer: Path) -> dict[str, Path]:
    return {canonicalize_name(p.name.split("-")[0]): p for p in layer.glob("*.dist-info")}


def _version(dist_info: Path) -> Version:
    metadata = Parser().parsestr((dist_info / "METADATA").read_text(encoding="utf-8"))
    return Version(metadata["Version"])


def test_layer_carries_the_genjobs_package_and_the_migrations(layer_dir: Path) -> None:
    source_pkg = SOURCE_LAYER / "genjobs"
    expected = {p.relative_to(source_pkg) for p in source_pkg.rglob("*.py") if "__pycache__" not in p.parts}
    built = {p.relative_to(layer_dir / "genjobs") for p in (layer_dir / "genjobs").rglob("*.py")}
    assert expected == built
    sql = {p.name: p.read_bytes() for p in (REPO_ROOT / "sql").glob("*.sql")}
    bundled = {p.name: p.read_bytes() for p in (layer_dir / "genjobs" / "sql").glob("*.sql")}
    assert sql and bundled == sql, "genjobs/sql in the layer must be exactly the repository's sql/*.sql"


def test_functions_ship_no_bytecode_or_host_caches(build_dir: Path) -> None:
    offenders = [
        str(p.relative_to(build_dir))
        for p in build_dir.rglob("*")
        if p.relative_to(build_dir).parts[0] != "SharedLayer"
        and (p.name == "__pycache__" or p.suffix in (".pyc", ".pyo"))
    ]
    assert not offenders, offenders[:20]


def _bytecode(layer: Path) -> list[Path]:
    return sorted(p for p in layer.rglob("*") if p.suffix in (".pyc", ".pyo") or p.name == "__pycache__")


def test_layer_bytecode_is_cpython_312_unchecked_hash_for_every_source(
    build: Build, layer_dir: Path, python312: str | None
) -> None:
    """All of it compiled for 3.12 and used without reading source mtimes, or none of it and a warning."""
    found = _bytecode(layer_dir)
    if not found:
        if build.log is not None:
            assert NO_PYTHON312_WARNING in build.log, "the layer has no bytecode and the build did not warn"
        else:
            assert python312 is None, f"{python312} is a Python 3.12, yet the prebuilt layer has no bytecode"
        return
    assert build.log is None or NO_PYTHON312_WARNING not in build.log
    problems: list[str] = []
    compiled: set[Path] = set()
    for path in found:
        rel = path.relative_to(layer_dir)
        if path.is_dir():
            continue
        if path.suffix != ".pyc" or path.parent.name != "__pycache__" or not path.name.endswith(".cpython-312.pyc"):
            problems.append(f"{rel}: not __pycache__/*.cpython-312.pyc")
            continue
        source = path.parent.parent / (path.name.removesuffix(".cpython-312.pyc") + ".py")
        if not source.is_file():
            problems.append(f"{rel}: no {source.name} next to its __pycache__")
        header = path.read_bytes()[:16]
        if header[:4] != PYC_MAGIC_312:
            problems.append(f"{rel}: magic {header[:4]!r}, not CPython 3.12's")
        flags = int.from_bytes(header[4:8], "little")
        if flags != PYC_FLAG_HASH_BASED:
            problems.append(f"{rel}: flags {flags:#x}, not hash-based unchecked (0x1)")
        compiled.add(source)
    sources = {p for p in layer_dir.rglob("*.py") if p.is_file()}
    problems += [f"{p.relative_to(layer_dir)}: no bytecode" for p in sorted(sources - compiled)]
    assert not problems, f"{len(problems)} problems: {problems[:20]}"


CHECK_PYCS_UNDER_312 = """
import importlib.util, json, pathlib, sys
assert importlib.util.MAGIC_NUMBER == bytes.fromhex(sys.argv[2]), importlib.util.MAGIC_NUMBER
stale = []
for pyc in pathlib.Path(sys.argv[1]).rglob("*.cpython-312.pyc"):
    source = pyc.parent.parent / (pyc.name.removesuffix(".cpython-312.pyc") + ".py")
    if not source.is_file() or importlib.util.source_hash(source.read_bytes()) != pyc.read_bytes()[8:16]:
        stale.append(str(pyc))
print(json.dumps(stale))
"""


def test_layer_bytecode_matches_its_sources_under_python312(layer_dir: Path, python312: str | None) -> None:
    """Unchecked pycs are used whatever the source says, so each must hold the hash of the source beside it."""
    if python312 is None or not _bytecode(layer_dir):
        pytest.skip("no Python 3.12 on this machine or no bytecode in the layer")
    done = subprocess.run(
        [python312, "-I", "-c", CHECK_PYCS_UNDER_312, str(layer_dir), PYC_MAGIC_312.hex()],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    stale = json.loads(done.stdout)
    assert not stale, f"{len(stale)} .pyc files do not match their source: {stale[:10]}"


def _elf_machine(path: Path) -> int | None:
    with path.open("rb") as handle:
        header = handle.read(20)
    if header[:4] != b"\x7fELF":
        return None
    assert header[4] == 2, f"{path.name}: not a 64-bit ELF"
    return int.from_bytes(header[18:20], "little" if header[5] == 1 else "big")


def test_every_native_library_is_aarch64(layer_dir: Path) -> None:
    shared_objects = [p for p in _files(layer_dir) if re.search(r"\.so(\.|$)", p.name)]
    assert any("psycopg_binary" in str(p) for p in shared_objects), "psycopg_binary's C extension is missing"
    wrong = {str(p.relative_to(layer_dir)): _elf_machine(p) for p in shared_objects if _elf_machine(p) != EM_AARCH64}
    assert not wrong, f"native code not built for aarch64 (ELF e_machine): {wrong}"
    for path in shared_objects:
        if ".cpython-" in path.name:
            assert ".cpython-312-aarch64-linux-gnu.so" in path.name, path.name


def test_wheel_tags_are_pure_or_cp312_manylinux_aarch64(layer_dir: Path) -> None:
    for dist_info, wheel in ((d, d / "WHEEL") for d in layer_dir.glob("*.dist-info")):
        tags = [line.split(":", 1)[1].strip() for line in wheel.read_text().splitlines() if line.startswith("Tag:")]
        assert tags, dist_info.name
        for tag in tags:
            if tag in PURE_TAGS:
                continue
            match = BINARY_TAG.match(tag)
            assert match, f"{dist_info.name}: wheel tag {tag} is not for Lambda python3.12 arm64"
            if match.group(2):
                assert int(match.group(2)) <= 12, f"{dist_info.name}: {tag} needs a newer CPython than 3.12"
            if match.group(4):
                assert (int(match.group(4)), int(match.group(5))) <= LAMBDA_GLIBC, f"{dist_info.name}: {tag}"


def test_runtime_requirements_are_present_and_psycopg_binary_is_3_3_or_newer(layer_dir: Path) -> None:
    dists = _dist_infos(layer_dir)
    for raw in (SOURCE_LAYER / "requirements.txt").read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        requirement = Requirement(line)
        name = canonicalize_name(requirement.name)
        assert name in dists, f"{requirement.name} is not in the layer"
        assert _version(dists[name]) in requirement.specifier, f"{name} {_version(dists[name])} !~ {requirement}"
    binary = _version(dists["psycopg-binary"])
    assert binary >= Version("3.3")
    assert binary == _version(dists["psycopg"]), "psycopg and psycopg-binary must be the same version"
    # The Lambda runtime provides boto3/botocore; shipping them would only add size and shadow the runtime's.
    assert "boto3" not in dists and "botocore" not in dists


def test_functions_ship_only_their_handler_code(build_dir: Path) -> None:
    for logical_id, function in functions(load_template()).items():
        artifact = build_dir / logical_id
        shipped = {p.name for p in _files(artifact)}
        expected = {p.name for p in function.code_dir.glob("*.py")}
        assert shipped == expected, f"{logical_id}: shipped {sorted(shipped)}, sources {sorted(expected)}"


def test_unzipped_size_is_under_the_lambda_limit(build_dir: Path, layer_dir: Path) -> None:
    layer = _size(build_dir / "SharedLayer")
    largest_function = max(_size(build_dir / f) for f in functions(load_template()))
    total = layer + largest_function
    print(f"\nSharedLayer unzipped: {layer / 1024 / 1024:.1f} MiB; largest function: {largest_function} bytes")
    assert total < LAMBDA_UNZIPPED_LIMIT, f"{total / 1024 / 1024:.1f} MiB >= 250 MiB"
    # Far below the limit today; a jump usually means a dependency pulled something heavy in.
    assert layer < 80 * 1024 * 1024, f"layer grew to {layer / 1024 / 1024:.1f} MiB"


# ---------------------------------------------------------------------------------------------- lock, CA bundle

LOCK_LINE = re.compile(r"^([A-Za-z0-9_.-]+)==([^\s\\]+)")


def _lock_pins(path: Path) -> dict[str, Version]:
    pins: dict[str, Version] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        match = LOCK_LINE.match(line)
        if match:
            pins[canonicalize_name(match.group(1))] = Version(match.group(2))
    return pins


def test_layer_packages_are_exactly_the_lock_and_the_lock_satisfies_requirements(layer_dir: Path) -> None:
    """The build installs requirements.lock with --require-hashes --no-deps: same lock, same layer."""
    lock_text = (SOURCE_LAYER / "requirements.lock").read_text(encoding="utf-8")
    pins = _lock_pins(SOURCE_LAYER / "requirements.lock")
    assert pins, "requirements.lock pins nothing"
    # every pin carries a hash (pip --require-hashes would refuse the file otherwise; this says why)
    assert lock_text.count("--hash=sha256:") == len(pins)
    built = {name: _version(path) for name, path in _dist_infos(layer_dir).items()}
    assert built == pins
    for raw in (SOURCE_LAYER / "requirements.txt").read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if line:
            requirement = Requirement(line)
            name = canonicalize_name(requirement.name)
            assert name in pins and pins[name] in requirement.specifier, f"the lock does not satisfy {requirement}"


def _pem_certificates(text: str) -> list[bytes]:
    import base64

    blocks = re.findall(r"-----BEGIN CERTIFICATE-----\n(.+?)-----END CERTIFICATE-----", text, re.DOTALL)
    return [base64.b64decode("".join(block.split())) for block in blocks]


def test_layer_ships_the_amazon_trust_services_roots_where_the_template_points(build_dir: Path) -> None:
    import hashlib
    import ssl

    from tests.support.template import load_template as _load

    # Given the template's sslrootcert path (in Lambda, the layer is extracted to /opt)
    env = _load()["Globals"]["Function"]["Environment"]["Variables"]
    assert env["DB_SSLMODE"] == "verify-full"
    relative = Path(env["DB_SSLROOTCERT"]).relative_to("/opt")
    # When the built layer is inspected, Then the bundle is there
    bundle = build_dir / "SharedLayer" / relative
    assert bundle.is_file(), f"{relative} is not in the built layer"
    certificates = _pem_certificates(bundle.read_text(encoding="ascii"))
    # And it holds exactly Amazon Root CA 1-4 (RDS Proxy certificates chain to Amazon Root CA 1)
    context = ssl.create_default_context(cafile=str(bundle))
    subject_text = [repr(ca["subject"]) for ca in context.get_ca_certs()]
    subjects = sorted(m.group(1) for text in subject_text for m in re.finditer(r"\('commonName', '([^']+)'\)", text))
    assert subjects == ["Amazon Root CA 1", "Amazon Root CA 2", "Amazon Root CA 3", "Amazon Root CA 4"]
    assert len(certificates) == 4
    fingerprints = {hashlib.sha256(der).hexdigest() for der in certificates}
    assert "8ecde6884f3d87b1125ba31ac3fcb13d7016de7f57cc904fe1cb97c6ae98196e" in fingerprints  # Amazon Root CA 1
    # And where the build machine has Debian's ca-certificates, they are the same certificates, byte for byte
    system = sorted(Path("/usr/share/ca-certificates/mozilla").glob("Amazon_Root_CA_[1-4].crt"))
    for path in system:
        (der,) = _pem_certificates(path.read_text(encoding="ascii"))
        assert der in certificates, f"{path.name} differs from the layer's copy"
