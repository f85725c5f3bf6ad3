"""Catalog reads for `crm.pg.rebuild`: a table's shape, what a swap would lose, names to use.

`read_table` collects what the rebuild must recreate (options, columns' settings, constraints,
indexes, sequences, the tables its foreign keys reference); `refuse_unsupported` names what it
cannot carry over; `table_shape` is what must be identical before and after the swap, compared
by `shape_diff`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from psycopg import sql

NAME_MAX = 63  # NAMEDATALEN - 1: PostgreSQL silently truncates longer identifiers
NEXT = "__next"
LIKE_OPTIONS = (
    "INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING GENERATED INCLUDING IDENTITY "
    "INCLUDING STORAGE INCLUDING COMMENTS INCLUDING COMPRESSION"
)
# Privilege keywords aclexplode() reports (MAINTAIN since PostgreSQL 17).
PRIVILEGES = frozenset(
    {"SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER", "MAINTAIN"}
)
# The per-column options PostgreSQL defines. Some builds keep bookkeeping of their own in
# attoptions; that is not ours to copy or compare.
COLUMN_OPTIONS = ("n_distinct", "n_distinct_inherited")


class UnsupportedTable(Exception):
    """The table has something the rebuild would lose or break; nothing was changed."""


@dataclass
class Constraint:
    name: str
    kind: str  # pg_constraint.contype: p, u, x, f, c, n (NOT NULL, PostgreSQL 18)
    definition: str
    validated: bool
    comment: str | None


@dataclass
class Index:
    name: str
    definition: str
    constraint: str | None  # the primary key / unique / exclusion constraint it backs
    clustered: bool
    replica_identity: bool
    comment: str | None
    unique: bool
    # The definition after "CREATE [UNIQUE] INDEX <name> ON <table> USING ", which names
    # neither; None if pg_get_indexdef wrote something else (refused).
    method_and_keys: str | None = None


@dataclass
class Table:
    oid: int
    schema: str
    name: str
    owner: str  # quoted role name
    access_method: str
    persistence: str
    options: list[str]
    toast_options: list[str]
    replica_identity: str
    comment: str | None
    insertable: list[str]  # columns without generated ones, in table order
    primary_key: list[str]
    column_settings: list[tuple[str, int | None, list[str]]]  # name, stattarget, options
    constraints: list[Constraint] = field(default_factory=list)
    indexes: list[Index] = field(default_factory=list)
    identity_sequences: dict[str, str] = field(default_factory=dict)  # column -> name
    owned_sequences: dict[str, str] = field(default_factory=dict)  # column -> regclass text
    referenced: list[str] = field(default_factory=list)  # regclass texts, in lock order


def read_table(cursor, oid: int) -> Table:
    cursor.execute(
        """
        SELECT n.nspname, c.relname, quote_ident(n.nspname) || '.' || quote_ident(c.relname),
               c.relowner::regrole::text, am.amname, c.relpersistence,
               coalesce(c.reloptions, '{}'), coalesce(t.reloptions, '{}'), c.relreplident,
               obj_description(c.oid, 'pg_class')
        FROM pg_class c
        JOIN pg_namespace n ON n.oid = c.relnamespace
        LEFT JOIN pg_am am ON am.oid = c.relam
        LEFT JOIN pg_class t ON t.oid = c.reltoastrelid
        WHERE c.oid = %s
        """,
        [oid],
    )
    # `qualified` as pg_get_indexdef writes the table: quote_ident(schema).quote_ident(name).
    schema, name, qualified, owner, am, persistence, options, toast, replident, comment = (
        cursor.fetchone()
    )
    cursor.execute(
        """
        SELECT a.attname, a.attgenerated <> '', a.attstattarget,
               array(SELECT o FROM unnest(a.attoptions) o
                     WHERE split_part(o, '=', 1) = ANY(%s) ORDER BY o)
        FROM pg_attribute a
        WHERE a.attrelid = %s AND a.attnum > 0 AND NOT a.attisdropped
        ORDER BY a.attnum
        """,
        [list(COLUMN_OPTIONS), oid],
    )
    rows = cursor.fetchall()
    table = Table(
        oid=oid,
        schema=schema,
        name=name,
        owner=owner,
        access_method=am,
        persistence=persistence,
        options=list(options),
        toast_options=list(toast),
        replica_identity=replident,
        comment=comment,
        insertable=[column for column, generated, _t, _o in rows if not generated],
        primary_key=[],
        column_settings=[(column, target, list(opts)) for column, _g, target, opts in rows],
    )
    cursor.execute(
        """
        SELECT con.conname, con.contype, pg_get_constraintdef(con.oid), con.convalidated,
               obj_description(con.oid, 'pg_constraint'),
               CASE WHEN con.contype = 'f' THEN con.confrelid::regclass::text END,
               CASE WHEN con.contype = 'p' THEN
                   array(SELECT a.attname FROM unnest(con.conkey) WITH ORDINALITY k(num, pos)
                         JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.num
                         ORDER BY k.pos)
               END
        FROM pg_constraint con
        WHERE con.conrelid = %s
        ORDER BY con.contype = 'p' DESC, con.conname
        """,
        [oid],
    )
    for name, kind, definition, validated, comment, referenced, key in cursor.fetchall():
        table.constraints.append(Constraint(name, kind, definition, validated, comment))
        if referenced is not None and referenced not in table.referenced:
            table.referenced.append(referenced)
        if key is not None:
            table.primary_key = list(key)
    cursor.execute(
        """
        SELECT i.relname, pg_get_indexdef(x.indexrelid), con.conname, x.indisclustered,
               x.indisreplident, obj_description(x.indexrelid, 'pg_class'), x.indisunique,
               quote_ident(i.relname)
        FROM pg_index x
        JOIN pg_class i ON i.oid = x.indexrelid
        LEFT JOIN pg_constraint con
               ON con.conindid = x.indexrelid AND con.conrelid = x.indrelid
              AND con.contype IN ('p', 'u', 'x')
        WHERE x.indrelid = %s
        ORDER BY x.indisprimary DESC, i.relname
        """,
        [oid],
    )
    for *row, quoted in cursor.fetchall():
        index = Index(*row)
        head = f"CREATE {'UNIQUE ' if index.unique else ''}INDEX {quoted} ON {qualified} USING "
        if index.definition.startswith(head):
            index.method_and_keys = index.definition[len(head) :]
        table.indexes.append(index)
    cursor.execute(
        """
        SELECT a.attname, s.relname, d.deptype, s.oid::regclass::text
        FROM pg_depend d
        JOIN pg_class s ON s.oid = d.objid AND s.relkind = 'S'
        JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
        WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass
          AND d.refobjid = %s AND d.deptype IN ('a', 'i')
        """,
        [oid],
    )
    for column, sequence, deptype, regclass in cursor.fetchall():
        if deptype == "i":
            table.identity_sequences[column] = sequence
        else:
            table.owned_sequences[column] = regclass
    return table


def refuse_unsupported(cursor, table: Table) -> None:
    """Raise `UnsupportedTable` for anything the swap would drop silently or cannot drop."""
    oid = table.oid

    def names(query: str, params=None) -> list[str]:
        cursor.execute(query, params if params is not None else {"t": oid})
        return [row[0] for row in cursor.fetchall()]

    problems = []
    cursor.execute(
        "SELECT relkind, relpersistence, relispartition, reloftype <> 0, reltablespace <> 0, "
        "relrowsecurity OR relforcerowsecurity FROM pg_class WHERE oid = %s",
        [oid],
    )
    kind, persistence, partition, typed, tablespace, row_security = cursor.fetchone()
    if kind != "r" or partition or typed:
        problems.append("not a plain table (partitioned, a partition, typed, or no table)")
    if persistence == "t":
        problems.append("a temporary table")
    if tablespace or names(
        "SELECT i.relname FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid "
        "WHERE x.indrelid = %(t)s AND i.reltablespace <> 0"
    ):
        problems.append("it or an index lives in a non-default tablespace")
    into = names(
        "SELECT format('%%s on %%s', conname, conrelid::regclass) FROM pg_constraint "
        "WHERE contype = 'f' AND confrelid = %(t)s ORDER BY 1"
    )
    if into:
        problems.append(
            "foreign keys point into it and would be lost with the old table: " + ", ".join(into)
        )
    checks = [
        (
            "triggers",
            "SELECT tgname FROM pg_trigger WHERE tgrelid = %(t)s AND NOT tgisinternal",
        ),
        ("rules", "SELECT rulename FROM pg_rewrite WHERE ev_class = %(t)s"),
        ("row-level security policies", "SELECT polname FROM pg_policy WHERE polrelid = %(t)s"),
        (
            "inheritance",
            "SELECT inhrelid::regclass::text FROM pg_inherits WHERE inhparent = %(t)s "
            "UNION ALL SELECT inhparent::regclass::text FROM pg_inherits WHERE inhrelid = %(t)s",
        ),
        (
            "publications",
            "SELECT p.pubname FROM pg_publication_rel r JOIN pg_publication p ON p.oid = r.prpubid "
            "WHERE r.prrelid = %(t)s",
        ),
        ("extended statistics", "SELECT stxname FROM pg_statistic_ext WHERE stxrelid = %(t)s"),
        (
            "column privileges",
            "SELECT attname FROM pg_attribute WHERE attrelid = %(t)s AND attacl IS NOT NULL",
        ),
        (
            "NOT VALID not-null constraints",
            "SELECT conname FROM pg_constraint WHERE conrelid = %(t)s AND contype = 'n' "
            "AND NOT convalidated",
        ),
        # Whatever else depends on the table or its row type (views, SQL functions, columns
        # of that type) would make DROP fail; say so now, before any work.
        (
            "dependent objects",
            """
            SELECT DISTINCT pg_describe_object(d.classid, d.objid, 0)
            FROM pg_depend d
            WHERE d.deptype = 'n'
              AND ((d.refclassid = 'pg_class'::regclass AND d.refobjid = %(t)s)
                   OR (d.refclassid = 'pg_type'::regclass AND d.refobjid IN (
                       SELECT reltype FROM pg_class WHERE oid = %(t)s
                       UNION ALL
                       SELECT typarray FROM pg_type
                       WHERE oid = (SELECT reltype FROM pg_class WHERE oid = %(t)s))))
              AND NOT (d.classid = 'pg_constraint'::regclass AND d.objid IN (
                       SELECT oid FROM pg_constraint WHERE conrelid = %(t)s OR confrelid = %(t)s))
              AND NOT (d.classid = 'pg_attrdef'::regclass AND d.objid IN (
                       SELECT oid FROM pg_attrdef WHERE adrelid = %(t)s))
              AND NOT (d.classid = 'pg_class'::regclass AND d.objid IN (
                       SELECT indexrelid FROM pg_index WHERE indrelid = %(t)s))
            ORDER BY 1
            """,
        ),
    ]
    if row_security:
        problems.append("row-level security is enabled")
    for what, query in checks:
        found = names(query)
        if found:
            problems.append(f"{what}: {', '.join(found)}")
    taken = names(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = %s AND c.relname = ANY(%s)",
        [
            table.schema,
            [temp_name(table.name), *(temp_name(i.name) for i in table.indexes)],
        ],
    )
    if taken:
        problems.append(f"the temporary names are taken: {', '.join(taken)}")
    odd = [i.definition for i in table.indexes if i.constraint is None and not i.method_and_keys]
    if odd:
        problems.append(f"index definitions not understood: {'; '.join(odd)}")
    if problems:
        raise UnsupportedTable(
            f"rebuild_table({table.name}): refused, nothing was changed: " + "; ".join(problems)
        )


def table_shape(cursor, oid: int) -> dict[str, Any]:
    """What must be identical before and after the swap, names included."""
    shape: dict[str, Any] = {}
    cursor.execute(
        """
        SELECT c.relname, c.relowner::regrole::text, am.amname, c.relpersistence, c.relkind,
               array(SELECT unnest(coalesce(c.reloptions, '{}')) ORDER BY 1),
               array(SELECT unnest(coalesce(t.reloptions, '{}')) ORDER BY 1),
               c.relreplident, c.relrowsecurity, obj_description(c.oid, 'pg_class')
        FROM pg_class c
        LEFT JOIN pg_am am ON am.oid = c.relam
        LEFT JOIN pg_class t ON t.oid = c.reltoastrelid
        WHERE c.oid = %s
        """,
        [oid],
    )
    shape["table"] = cursor.fetchone()
    shape["privileges"] = relation_privileges(cursor, oid, "r")
    cursor.execute(
        """
        SELECT a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
               pg_get_expr(d.adbin, d.adrelid), a.attgenerated, a.attidentity,
               co.collname, a.attstorage, a.attcompression, a.attstattarget,
               array(SELECT o FROM unnest(a.attoptions) o
                     WHERE split_part(o, '=', 1) = ANY(%s) ORDER BY o),
               col_description(a.attrelid, a.attnum)
        FROM pg_attribute a
        LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
        LEFT JOIN pg_collation co ON co.oid = a.attcollation
        WHERE a.attrelid = %s AND a.attnum > 0 AND NOT a.attisdropped
        ORDER BY a.attnum
        """,
        [list(COLUMN_OPTIONS), oid],
    )
    shape["columns"] = cursor.fetchall()
    cursor.execute(
        """
        SELECT conname, contype, pg_get_constraintdef(oid), condeferrable, condeferred,
               convalidated, obj_description(oid, 'pg_constraint')
        FROM pg_constraint WHERE conrelid = %s ORDER BY conname
        """,
        [oid],
    )
    shape["constraints"] = cursor.fetchall()
    cursor.execute(
        """
        SELECT i.relname, pg_get_indexdef(x.indexrelid), x.indisunique, x.indisprimary,
               x.indisclustered, x.indisreplident, obj_description(x.indexrelid, 'pg_class')
        FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid
        WHERE x.indrelid = %s ORDER BY i.relname
        """,
        [oid],
    )
    shape["indexes"] = cursor.fetchall()
    cursor.execute(
        """
        SELECT a.attname, d.deptype, s.oid, s.relname, s.relowner::regrole::text,
               q.seqtypid::regtype::text, q.seqstart, q.seqincrement, q.seqmax, q.seqmin,
               q.seqcache, q.seqcycle
        FROM pg_depend d
        JOIN pg_class s ON s.oid = d.objid AND s.relkind = 'S'
        JOIN pg_sequence q ON q.seqrelid = s.oid
        JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
        WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass
          AND d.refobjid = %s AND d.deptype IN ('a', 'i')
        ORDER BY a.attname
        """,
        [oid],
    )
    shape["sequences"] = [
        (column, deptype, name, owner, *options, relation_privileges(cursor, seq_oid, "s"))
        for column, deptype, seq_oid, name, owner, *options in cursor.fetchall()
    ]
    return shape


def relation_privileges(cursor, relation, kind: str) -> set[tuple[str, str, bool]]:
    """(grantee, privilege, grantable) of a relation (oid or name), defaults made explicit."""
    cursor.execute(
        """
        SELECT CASE WHEN e.grantee = 0 THEN 'PUBLIC' ELSE e.grantee::regrole::text END,
               e.privilege_type, e.is_grantable
        FROM pg_class c, aclexplode(coalesce(c.relacl, acldefault(%s, c.relowner))) e
        WHERE c.oid = %s::regclass
        """,
        [kind, str(relation)],
    )
    return set(cursor.fetchall())


def grantee_sql(grantee: str) -> sql.Composable:
    # regrole::text is already a quoted identifier; PUBLIC is the keyword.
    return sql.SQL(grantee)


def option_sql(option: str, prefix: str | None = None) -> sql.Composable:
    key, _sep, value = option.partition("=")
    name = sql.Identifier(key)
    if prefix is not None:
        name = sql.SQL("{}.{}").format(sql.Identifier(prefix), name)
    return sql.SQL("{} = {}").format(name, sql.Literal(value))


def validated_definition(definition: str) -> str:
    """A constraint definition without its NOT VALID (pg_get_constraintdef puts it last)."""
    return definition.removesuffix(" NOT VALID")


def temp_name(name: str) -> str:
    candidate = name + NEXT
    if len(candidate.encode()) <= NAME_MAX:
        return candidate
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    room = NAME_MAX - len(NEXT) - len(digest) - 1
    return name.encode()[:room].decode(errors="ignore") + "_" + digest + NEXT


def shape_diff(before: dict, after: dict) -> str:
    parts = []
    for key in before:
        if before[key] != after.get(key):
            parts.append(f"{key}: {before[key]!r} -> {after.get(key)!r}")
    return "; ".join(parts)
