"""Forward-only SQL migrations.

Files `sql/NNN_name.sql` are applied in order, each in its own transaction together with its
`schema_migrations` row (version, name, checksum, applied_at, duration_ms), so a failing migration leaves
nothing of itself behind. Every transaction first takes a transaction-level advisory lock: concurrent
runners (several Lambda cold starts, a deploy and a developer) queue on it and each migration is applied
exactly once; a transaction-level lock also ends with the transaction, so nothing is left behind on a
pooled connection. A file whose checksum differs from the one recorded when it was applied is refused:
applied migrations are history, changes go in a new file.

Why not a library: the runner is ~150 lines; yoyo/alembic/dbmate would add a dependency (and for alembic,
SQLAlchemy) to the layer for less control over locking and checksums than this gives.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from time import perf_counter

from psycopg import errors as pg_errors

from genjobs.db.database import Database, Session
from genjobs.errors import MigrationError

logger = logging.getLogger("genjobs.migrations")

# pg_advisory_xact_lock key: the bytes of "genjobs" as a bigint
MIGRATION_LOCK_KEY = int.from_bytes(b"genjobs", "big")
_FILE_PATTERN = re.compile(r"^(\d{3,})_([a-z0-9_]+)\.sql$")

_CREATE_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version      integer PRIMARY KEY,
    name         text NOT NULL,
    checksum     text NOT NULL,
    applied_at   timestamptz NOT NULL DEFAULT now(),
    duration_ms  numeric(12, 3) NOT NULL
)
"""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode("utf-8")).hexdigest()

    @property
    def filename(self) -> str:
        return f"{self.version:03d}_{self.name}.sql"


@dataclass(frozen=True)
class AppliedMigration:
    version: int
    name: str
    checksum: str


def default_migrations_dir() -> Path:
    """`genjobs/sql` inside the built layer, else the repository's top-level `sql/`."""
    package_dir = Path(__file__).resolve().parent.parent
    bundled = package_dir / "sql"
    if bundled.is_dir():
        return bundled
    return package_dir.parents[2] / "sql"


def load_migrations(directory: Path | None = None) -> list[Migration]:
    directory = directory or default_migrations_dir()
    if not directory.is_dir():
        raise MigrationError(f"migrations directory {directory} does not exist")
    found: dict[int, Migration] = {}
    for path in sorted(directory.glob("*.sql")):
        match = _FILE_PATTERN.match(path.name)
        if not match:
            raise MigrationError(f"{path.name}: migration files are named NNN_lowercase_name.sql")
        version = int(match.group(1))
        if version in found:
            raise MigrationError(f"two migrations share version {version}: {found[version].filename}, {path.name}")
        found[version] = Migration(version=version, name=match.group(2), sql=path.read_text(encoding="utf-8"))
    return [found[v] for v in sorted(found)]


def _applied(session: Session) -> dict[int, AppliedMigration]:
    rows = session.fetch_all(
        "SELECT version, name, checksum FROM schema_migrations ORDER BY version", row=AppliedMigration
    )
    return {row.version: row for row in rows}


def _verify(applied: dict[int, AppliedMigration], migrations: list[Migration]) -> list[AppliedMigration]:
    """Refuse an applied migration whose file was edited, or whose file is missing below the newest file (a
    hole in history). Applied migrations above the newest file are the database being ahead of the code — a
    stack rollback runs the previous release's migrations against the newer schema, which expand/contract
    keeps compatible — and are returned (nothing is done for them)."""
    by_version = {m.version: m for m in migrations}
    newest = max(by_version, default=0)
    ahead: list[AppliedMigration] = []
    for version, row in sorted(applied.items()):
        migration = by_version.get(version)
        if migration is None and version > newest:
            ahead.append(row)
            continue
        if migration is None:
            raise MigrationError(
                f"migration {version:03d}_{row.name} is applied but its file is missing",
                details={"version": version},
            )
        if migration.checksum != row.checksum:
            raise MigrationError(
                f"{migration.filename} was edited after it was applied (checksum mismatch); "
                "add a new migration instead",
                details={"version": version, "recorded": row.checksum, "file": migration.checksum},
            )
    return ahead


def database_ahead(db: Database, migrations: list[Migration] | None = None) -> list[str]:
    """The applied migrations newer than every file of this release (a rollback's state), as names."""
    migrations = load_migrations() if migrations is None else migrations
    return [f"{row.version:03d}_{row.name}" for row in _verify(applied_migrations(db), migrations)]


def applied_migrations(db: Database) -> dict[int, AppliedMigration]:
    with db.session() as session:
        try:
            return _applied(session)
        except pg_errors.UndefinedTable:
            return {}


def pending_migrations(db: Database, migrations: list[Migration] | None = None) -> list[Migration]:
    """Migrations whose files exist but which are not applied yet (refuses edited applied files)."""
    migrations = load_migrations() if migrations is None else migrations
    applied = applied_migrations(db)
    _verify(applied, migrations)
    return [m for m in migrations if m.version not in applied]


def migrate(db: Database, migrations: list[Migration] | None = None) -> list[Migration]:
    """Apply every pending migration; return those this call applied."""
    migrations = load_migrations() if migrations is None else migrations
    done: list[Migration] = []
    warned = False
    for migration in migrations:
        with db.transaction() as session:
            session.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK_KEY,))
            session.execute(_CREATE_TABLE)
            applied = _applied(session)
            ahead = _verify(applied, migrations)
            if ahead and not warned:
                warned = True
                logger.warning("database is ahead of the code: applied %s have no file in this release (rollback or "
                               "older code); nothing to do for them",
                               ", ".join(f"{a.version:03d}_{a.name}" for a in ahead))
            if migration.version in applied:
                continue
            started = perf_counter()
            try:
                session.execute(migration.sql.encode("utf-8"))
            except pg_errors.Error as exc:
                raise MigrationError(
                    f"{migration.filename} failed: {exc.diag.message_primary or exc}",
                    details={"version": migration.version, "sqlstate": exc.sqlstate},
                ) from exc
            duration_ms = (perf_counter() - started) * 1000.0
            session.execute(
                "INSERT INTO schema_migrations (version, name, checksum, duration_ms) VALUES (%s, %s, %s, %s)",
                (migration.version, migration.name, migration.checksum, round(duration_ms, 3)),
            )
            logger.info("applied migration %s in %.1f ms", migration.filename, duration_ms)
            done.append(migration)
    return done
