"""pytest plugin: no request path may pin an RDS Proxy session.

RDS Proxy multiplexes client connections over database connections between transactions, unless a client
changes session state; then it *pins* that client to one database connection until it disconnects, and a
Lambda container keeps its connection for up to `DB_MAX_LIFETIME`. Enough pinned containers and the proxy
stops pooling at all.

For every test under tests/functional/ and tests/e2e/ (the handlers, driven by events, and the local runner),
an observer on the layer's statement instrumentation (`genjobs.db.instrumentation`) sees every statement sent
through pooled connections, and the test fails if any of them would pin:

* `SET ...` / `RESET ...` (of any kind: strict, even `SET LOCAL`), `set_config(..., false)` (or a non-literal
  is_local), `DISCARD`, `LOAD`
* SQL `PREPARE` / `EXECUTE` / `DEALLOCATE`
* `LISTEN` / `UNLISTEN`
* temporary tables, sequences and views (`CREATE TEMP ...`, `SELECT ... INTO TEMP ...`)
* session-level advisory locks: `pg_advisory_lock[_shared]`, `pg_try_advisory_lock[_shared]`
  (the `_xact_` variants end with the transaction and are fine)
* `DECLARE ... CURSOR WITH HOLD` (a cursor that outlives its transaction)
* statements longer than 16 KB

Exempt: the body of a migration file (`sql/*.sql`, run by the migrate function on its own connection at
deploy time) and tests marked `@pytest.mark.allow_session_state` (which must say why).

Only the SQL text is visible here: a pinning call hidden inside a PL/pgSQL function body is not seen.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import pytest

MAX_STATEMENT_BYTES = 16 * 1024
GUARDED_DIRS = (("tests", "functional"), ("tests", "e2e"))
MARKER = "allow_session_state"

_SESSION_LOCKS = re.compile(
    r"\bpg_(?:try_)?advisory_lock(?:_shared)?\s*\(",
    re.IGNORECASE,
)
_SET_CONFIG = re.compile(r"\bset_config\s*\(", re.IGNORECASE)
_LEADING = re.compile(r"^\s*(\(\s*)*", re.DOTALL)
_TEMP_OBJECT = re.compile(
    r"^CREATE\s+(?:OR\s+REPLACE\s+)?(?:(?:GLOBAL|LOCAL)\s+)?(?:TEMP|TEMPORARY)\s+(?:UNLOGGED\s+)?"
    r"(?:TABLE|SEQUENCE|VIEW|RECURSIVE\s+VIEW)\b",
    re.IGNORECASE,
)
_SELECT_INTO_TEMP = re.compile(r"\bINTO\s+(?:TEMP|TEMPORARY)\b", re.IGNORECASE)
_HOLD_CURSOR = re.compile(r"^DECLARE\b.*\bCURSOR\s+WITH\s+HOLD\b", re.IGNORECASE | re.DOTALL)
_SESSION_COMMANDS = {
    "SET": "SET changes session state",
    "RESET": "RESET changes session state",
    "DISCARD": "DISCARD resets session state",
    "LOAD": "LOAD loads a library into the session",
    "PREPARE": "PREPARE creates a named prepared statement",
    "EXECUTE": "EXECUTE runs a named prepared statement",
    "DEALLOCATE": "DEALLOCATE drops a named prepared statement",
    "LISTEN": "LISTEN subscribes the session to a channel",
    "UNLISTEN": "UNLISTEN changes the session's subscriptions",
}
_DOLLAR_TAG = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)?\$")


def _skip_block_comment(sql: str, i: int) -> int:
    depth, i = 1, i + 2
    while i < len(sql) and depth:
        if sql.startswith("/*", i):
            depth, i = depth + 1, i + 2
        elif sql.startswith("*/", i):
            depth, i = depth - 1, i + 2
        else:
            i += 1
    return i


def _skip_quoted(sql: str, i: int) -> int:
    """Index after the '...' literal or "..." identifier starting at i (doubled quotes, E'' escapes)."""
    quote = sql[i]
    backslash_escapes = quote == "'" and i > 0 and sql[i - 1] in "eE" and (i < 2 or not sql[i - 2].isalnum())
    j = i + 1
    while j < len(sql):
        escaped = backslash_escapes and sql[j] == "\\"
        if escaped or sql.startswith(quote * 2, j):  # E'\'' or a doubled quote: still inside
            j += 2
        elif sql[j] == quote:
            return j + 1
        else:
            j += 1
    return j


def _skip_token(sql: str, i: int) -> tuple[int, str] | None:
    """(index after, replacement) when a comment, literal, quoted identifier or dollar-quoted body starts
    at i; None otherwise."""
    ch, two = sql[i], sql[i : i + 2]
    if two == "--":
        end = sql.find("\n", i)
        return (len(sql) if end < 0 else end), " "
    if two == "/*":
        return _skip_block_comment(sql, i), " "
    if ch in ("'", '"'):
        return _skip_quoted(sql, i), ch + ch
    if ch == "$" and not (i > 0 and (sql[i - 1].isalnum() or sql[i - 1] == "_")):
        match = _DOLLAR_TAG.match(sql, i)
        if match:
            end = sql.find(match.group(0), match.end())
            return (len(sql) if end < 0 else end + len(match.group(0))), "$$ $$"
    return None


def split_statements(sql: str) -> list[str]:
    """Top-level statements of `sql`, comments removed and the contents of string literals, quoted
    identifiers and dollar-quoted bodies blanked out (so their text can never look like a command)."""
    out: list[str] = []
    current: list[str] = []
    i = 0
    while i < len(sql):
        skipped = _skip_token(sql, i)
        if skipped:
            i, replacement = skipped
            current.append(replacement)
        elif sql[i] == ";":
            out.append("".join(current))
            current = []
            i += 1
        else:
            current.append(sql[i])
            i += 1
    out.append("".join(current))
    return [s.strip() for s in out if s.strip()]


def _top_level_args(text: str, open_paren: int) -> list[str]:
    """Comma-separated arguments of the call whose '(' is at `open_paren` (text already de-literalised)."""
    depth, start, args = 0, open_paren + 1, []
    for i in range(open_paren, len(text)):
        if text[i] == "(":
            depth += 1
        elif text[i] == ")":
            depth -= 1
            if depth == 0:
                args.append(text[start:i].strip())
                return args
        elif text[i] == "," and depth == 1:
            args.append(text[start:i].strip())
            start = i + 1
    return args


def pinning_reasons(statement: str) -> list[str]:
    """Why `statement` (one execute() call, possibly several statements) would pin an RDS Proxy session;
    empty when it would not."""
    reasons: list[str] = []
    size = len(statement.encode("utf-8"))
    if size > MAX_STATEMENT_BYTES:
        reasons.append(f"statement text is {size} bytes (> 16 KB)")
    for part in split_statements(statement):
        head = _LEADING.sub("", part)
        first = head.split(None, 1)[0].upper().rstrip("(") if head else ""
        if first in _SESSION_COMMANDS:
            reasons.append(_SESSION_COMMANDS[first])
        if _TEMP_OBJECT.match(head) or (first == "SELECT" and _SELECT_INTO_TEMP.search(head)):
            reasons.append("temporary objects live as long as the session")
        if _HOLD_CURSOR.match(head):
            reasons.append("a WITH HOLD cursor outlives its transaction")
        if _SESSION_LOCKS.search(part):
            reasons.append("session-level advisory lock (use pg_advisory_xact_lock)")
        for match in _SET_CONFIG.finditer(part):
            args = _top_level_args(part, match.end() - 1)
            is_local = args[2].lower() if len(args) > 2 else ""
            if is_local not in ("true", "'t'", "'true'", "true::boolean"):
                reasons.append("set_config(..., false) changes session state")
    return reasons


@lru_cache(maxsize=1)
def _migration_bodies() -> frozenset[str]:
    root = Path(__file__).resolve().parents[2]
    return frozenset(p.read_text(encoding="utf-8") for p in (root / "sql").glob("*.sql"))


def is_exempt(statement: str) -> bool:
    """Migration files run by the migrate function (deploy time, its own connection) are exempt."""
    return statement in _migration_bodies()


@dataclass
class PinningGuard:
    """A statement observer that collects statements that would pin a proxy session."""

    violations: list[tuple[str, list[str]]] = field(default_factory=list)
    seen: int = 0

    def __call__(self, statement: str, elapsed_ms: float) -> None:
        self.seen += 1
        if is_exempt(statement):
            return
        reasons = pinning_reasons(statement)
        if reasons:
            self.violations.append((statement, reasons))

    def report(self) -> str:
        lines = [f"{len(self.violations)} statement(s) would pin an RDS Proxy session:"]
        for statement, reasons in self.violations:
            flat = " ".join(statement.split())
            shown = flat if len(flat) <= 300 else flat[:300] + "..."
            lines.append(f"  - {'; '.join(reasons)}: {shown}")
        lines.append(
            f"No session state through the proxy (README, 'No session state'). If this test really needs it, "
            f"mark it @pytest.mark.{MARKER} and say why."
        )
        return "\n".join(lines)


def is_guarded(path: Path, rootdir: Path) -> bool:
    try:
        parts = path.resolve().relative_to(rootdir.resolve()).parts
    except ValueError:
        parts = path.parts
    return any(parts[i : i + len(d)] == d for d in GUARDED_DIRS for i in range(len(parts)))


_GUARD_KEY = pytest.StashKey[PinningGuard]()


@pytest.fixture(autouse=True)
def _no_proxy_pinning(request: pytest.FixtureRequest) -> Iterator[None]:
    """Installed for tests under tests/functional/ and tests/e2e/; checked right after the test's call."""
    node = request.node
    if not is_guarded(Path(str(node.path)), request.config.rootpath) or node.get_closest_marker(MARKER):
        yield
        return
    from genjobs.db.instrumentation import instrumentation

    guard = PinningGuard()
    node.stash[_GUARD_KEY] = guard
    instrumentation.add(guard)
    try:
        yield
    finally:
        instrumentation.remove(guard)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    result = yield  # a failing test keeps its own failure
    guard = item.stash.get(_GUARD_KEY, None)
    if guard is not None and guard.violations:
        pytest.fail(guard.report(), pytrace=False)
    return result
