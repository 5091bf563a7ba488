"""The environment-read scanner used by the template tests recognises the forms the code uses."""

from __future__ import annotations

from pathlib import Path

from tests.template.env_reads import reads_in_source

SOURCE = '''
import os

def from_env(env):
    a = env.get("A_REQUIRED")
    b = env.get("B_DEFAULT", "x")
    c = env.get("C_OR") or "fallback"
    d = env.get("D_OR_NONE") or None
    e = _int(env, "E_HELPER", 10)
    f = _float(env, "F_HELPER_KW", default=1.5)
    g = os.environ["G_SUBSCRIPT"]
    h = os.getenv("H_GETENV")
    i = os.getenv("I_GETENV", "1")
    j = os.environ.get("J_FIRST") or os.environ.get("J_SECOND") or None
    k = env.get("K_NONE_DEFAULT", None)
    other = mapping.get("NOT_ENV")
    lower = env.get("not_an_env_name")
'''


def test_scanner_finds_reads_and_their_defaults() -> None:
    found = {r.name: r.has_default for r in reads_in_source(SOURCE, Path("sample.py"))}
    assert found == {
        "A_REQUIRED": False,
        "B_DEFAULT": True,
        "C_OR": True,
        "D_OR_NONE": False,
        "E_HELPER": True,
        "F_HELPER_KW": True,
        "G_SUBSCRIPT": False,
        "H_GETENV": False,
        "I_GETENV": True,
        "J_FIRST": True,
        "J_SECOND": False,
        "K_NONE_DEFAULT": False,
    }
