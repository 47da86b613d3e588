"""Swapping a table built beside the live one into its place, inside the build's transaction.

The live table is dropped and the new one renamed, so readers wait only for the swap
itself (its locks are taken last, just before commit) and never see a half-built table.
What roles and DBAs attached to the live table goes with it: its privileges (a SELECT-only
serving role keeps reading) and its comments, table and columns, are copied first.
Column-level privileges, extra indexes, triggers and policies are not carried over.
"""

from __future__ import annotations

from typing import Any

from fsql.online.tables import OnlineTable, primary_key_name, quoted

# What aclexplode() may report for a table, and nothing else is ever put into a GRANT.
_TABLE_PRIVILEGES = frozenset({"SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER", "MAINTAIN"})


def swap_in(cursor: Any, table: OnlineTable, new_name: str) -> None:
    """Replace the live table by `new_name`, carrying privileges and comments over."""
    live, new = table.ref().sql("postgres"), table.ref(new_name).sql("postgres")
    for statement in _carried_over(cursor, live, new):
        cursor.execute(statement)
    cursor.execute(f"DROP TABLE {live}")
    cursor.execute(f"ALTER TABLE {new} RENAME TO {quoted(table.name)}")
    cursor.execute(
        f"ALTER INDEX {quoted(table.schema)}.{quoted(primary_key_name(new_name))} "
        f"RENAME TO {quoted(primary_key_name(table.name))}"
    )


def _carried_over(cursor: Any, live: str, new: str) -> list[str]:
    return [*_grants(cursor, live, new), *_comments(cursor, live, new)]


def _grants(cursor: Any, live: str, new: str) -> list[str]:
    """GRANTs that give the new table what was granted on the live one (the owner's own aside)."""
    cursor.execute(
        "SELECT CASE WHEN a.grantee = 0 THEN NULL ELSE pg_get_userbyid(a.grantee) END, a.privilege_type, "
        "a.is_grantable FROM pg_class c, aclexplode(c.relacl) a WHERE c.oid = %s::regclass AND a.grantee <> c.relowner",
        (live,),
    )
    statements = []
    for grantee, privilege, grantable in cursor.fetchall():
        if privilege not in _TABLE_PRIVILEGES:
            continue
        to = "PUBLIC" if grantee is None else quoted(grantee)
        statements.append(f"GRANT {privilege} ON TABLE {new} TO {to}" + (" WITH GRANT OPTION" if grantable else ""))
    return statements


def _comments(cursor: Any, live: str, new: str) -> list[str]:
    """COMMENT ON the new table and its columns, as on the live one (columns both have)."""
    from psycopg import sql

    cursor.execute(
        "SELECT NULL, obj_description(%(live)s::regclass, 'pg_class') UNION ALL "
        "SELECT a.attname, col_description(a.attrelid, a.attnum) FROM pg_attribute a "
        "WHERE a.attrelid = %(live)s::regclass AND a.attnum > 0 AND NOT a.attisdropped "
        "AND a.attname IN (SELECT attname FROM pg_attribute WHERE attrelid = %(new)s::regclass AND attnum > 0)",
        {"live": live, "new": new},
    )
    statements = []
    for column, comment in cursor.fetchall():
        if comment is None:
            continue
        target = f"TABLE {new}" if column is None else f"COLUMN {new}.{quoted(column)}"
        statements.append(
            sql.SQL("COMMENT ON {} IS {}").format(sql.SQL(target), sql.Literal(comment)).as_string(cursor.connection)
        )
    return statements
