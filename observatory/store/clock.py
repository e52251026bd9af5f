"""The database's clock: lease and heartbeat times every host reads the same way.

Hosts sharing a database may disagree about the time; a lease written with one host's
clock and checked with another's expires early or never. ``db_now(offset_s)`` renders as
the database's own current UTC time plus an offset, evaluated inside the statement, in the
column format of each dialect (SQLite stores naive UTC text, Postgres ``timestamptz``).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import FunctionElement

from observatory.store.tables import UTCDateTime


class db_now(FunctionElement[Any]):  # noqa: N801 - reads as a SQL function
    """The database's current UTC time plus ``offset_s`` seconds (may be negative)."""

    type = UTCDateTime()
    inherit_cache = False

    def __init__(self, offset_s: float = 0.0) -> None:
        super().__init__()
        self.offset_s = float(offset_s)


@compiles(db_now, "sqlite")
def _sqlite(element: db_now, compiler: Any, **kw: Any) -> str:
    # The text format SQLAlchemy writes for naive datetimes, to the microsecond.
    return f"strftime('%Y-%m-%d %H:%M:%f000', 'now', '{element.offset_s:+.6f} seconds')"


@compiles(db_now, "postgresql")
def _postgres(element: db_now, compiler: Any, **kw: Any) -> str:
    # statement_timestamp(): one time for the whole statement (as SQLite's 'now'), and the
    # time now rather than when a long transaction began.
    return f"(statement_timestamp() + make_interval(secs => {element.offset_s:.6f}))"
