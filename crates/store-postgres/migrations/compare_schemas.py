"""Compare the PostgreSQL schema of these migrations with the SQLite schema they translate.

The store runs the same statements on both databases and the audit verifier hashes the rows of
`SELECT * FROM t ORDER BY id`, so the two schemas must not differ where that code can tell:
the same tables, the same columns in the same order, and indexes of the same names over the same
columns. This script builds the SQLite schema in memory (the SQLite migrations in order, then
READ_LOG_SCHEMA on an attached `readlog`, as the SQLite driver does) and compares it with a
PostgreSQL database that has had the migrations of this folder applied:

- tables: the same in `main`/`public` and `readlog`;
- columns: names and order, type (INTEGER/REAL/BLOB/TEXT as BIGINT/DOUBLE PRECISION/BYTEA/TEXT
  COLLATE "C"), NOT NULL, default (identity ids excepted);
- indexes: every named SQLite index has a PostgreSQL index of the same name over the same key
  columns or expressions, equally unique, with the same predicate if partial;
- primary keys and UNIQUE constraints (by their columns: their index names differ by design);
- foreign keys (columns and referenced columns), each DEFERRABLE INITIALLY IMMEDIATE;
- triggers (by name).

Python 3 standard library only; PostgreSQL is read through `psql`, which must be on PATH. Every
argument the script does not know is passed to psql as a connection option. Run it from anywhere:

    python3 crates/store-postgres/migrations/compare_schemas.py --apply -h SOCKDIR -p PORT -U postgres -d DB

`--apply` first applies this folder's migrations, in order, each in one transaction, to the
database (which must be empty; use a throw-away one). Without it the database is only read.
`--sqlite-migrations DIR` and `--read-log-schema FILE` (the Rust file that defines
READ_LOG_SCHEMA) override where the SQLite side is read from; by default they are found from
this file's place in the repository. The exit status is 0 when the schemas agree, 1 otherwise.
"""

import os
import re
import sqlite3
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
CRATES = os.path.dirname(os.path.dirname(HERE))
SQLITE_MIGRATIONS = [
    os.path.join(CRATES, "store-sqlite", "migrations"),
    os.path.join(CRATES, "store", "migrations", "sqlite"),
]
READ_LOG_SOURCES = [
    os.path.join(CRATES, "store-sqlite", "src", "lib.rs"),
    os.path.join(CRATES, "store", "src", "sqlite.rs"),
]
SCHEMAS = {"main": "public", "readlog": "readlog"}
TYPES = {"INTEGER": "bigint", "REAL": "double precision", "BLOB": "bytea", "TEXT": "text"}
FIELD = "\x1f"  # psql field separator; no name or expression here contains it
ITEM = "\x1e"  # separator of the items of a list inside one field


def usage(message):
    sys.stderr.write(f"compare_schemas.py: {message}\n")
    sys.exit(2)


def parse_args(argv):
    apply, migrations, read_log, psql = False, None, None, []
    args = iter(argv)
    for arg in args:
        if arg == "--apply":
            apply = True
        elif arg in ("--sqlite-migrations", "--read-log-schema"):
            value = next(args, None)
            if value is None:
                usage(f"{arg} needs a value")
            if arg == "--sqlite-migrations":
                migrations = value
            else:
                read_log = value
        elif arg.startswith("--sqlite-migrations="):
            migrations = arg.split("=", 1)[1]
        elif arg.startswith("--read-log-schema="):
            read_log = arg.split("=", 1)[1]
        else:
            psql.append(arg)
    return apply, migrations, read_log, psql


def first_existing(paths, what):
    for path in paths:
        if os.path.exists(path):
            return path
    usage(f"cannot find {what}; tried {', '.join(paths)}")


def migration_files(folder):
    files = sorted(f for f in os.listdir(folder) if re.fullmatch(r"\d{4}_\w+\.sql", f))
    return [os.path.join(folder, f) for f in files]


# ---------------------------------------------------------------- SQLite side


def read_log_schema(source):
    text = open(source, encoding="utf-8").read()
    m = re.search(r'const READ_LOG_SCHEMA: &str = "(.*?)";', text, re.S)
    if not m:
        usage(f"no READ_LOG_SCHEMA in {source}")
    return m.group(1).replace('\\"', '"')


def index_terms(sql):
    """The key terms and the predicate of a CREATE INDEX statement."""
    start = sql.index("(", sql.upper().index(" ON "))
    depth, terms, term = 0, [], ""
    for i in range(start, len(sql)):
        c = sql[i]
        if c == "(":
            depth += 1
            if depth == 1:
                continue
        elif c == ")":
            depth -= 1
            if depth == 0:
                terms.append(term.strip())
                rest = sql[i + 1 :].strip()
                predicate = rest[len("WHERE") :].strip() if rest.upper().startswith("WHERE") else ""
                return terms, predicate
        elif c == "," and depth == 1:
            terms.append(term.strip())
            term = ""
            continue
        term += c
    raise ValueError(f"cannot parse {sql}")


def sqlite_schema(migrations, read_log):
    db = sqlite3.connect(":memory:")
    db.execute("ATTACH DATABASE ':memory:' AS readlog")
    for path in migrations:
        db.executescript(open(path, encoding="utf-8").read())
    db.executescript(read_log)

    tables, indexes, uniques, fks, triggers = {}, {}, {}, {}, set()
    for schema, pg_schema in SCHEMAS.items():
        master = f"{schema}.sqlite_schema"
        for (name,) in db.execute(f"SELECT name FROM {master} WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"):
            table = (pg_schema, name)
            info = db.execute(f"PRAGMA {schema}.table_info({name})").fetchall()
            pk = [row[1] for row in sorted((r for r in info if r[5]), key=lambda r: r[5])]
            tables[table] = [
                {
                    "name": cname,
                    "type": TYPES.get(ctype.upper(), "?" + ctype),
                    # A primary key column is NOT NULL in PostgreSQL; SQLite leaves a TEXT key
                    # nullable, but no statement of the store writes NULL into a key.
                    "notnull": bool(notnull) or cname in pk,
                    "default": dflt,
                }
                for _, cname, ctype, notnull, dflt, _ in info
            ]
            uniques[table] = {("pk", tuple(pk))}
            for _, iname, unique, origin, partial in db.execute(f"PRAGMA {schema}.index_list({name})"):
                keys = [r for r in db.execute(f"PRAGMA {schema}.index_xinfo({iname})") if r[5]]
                columns = tuple(r[2] for r in keys)
                if origin == "u":
                    uniques[table].add(("unique", columns))
                if origin != "c":
                    continue  # automatic index of a PRIMARY KEY or UNIQUE constraint
                (sql,) = db.execute(f"SELECT sql FROM {master} WHERE name = ?", (iname,)).fetchone()
                terms, predicate = index_terms(sql)
                indexes[(pg_schema, iname)] = {
                    "table": table,
                    "terms": tuple(col if col is not None else terms[i] for i, col in enumerate(columns)),
                    "unique": bool(unique),
                    "predicate": predicate,
                }
            fk = {}
            for fid, seq, ref, col, ref_col, *_ in db.execute(f"PRAGMA {schema}.foreign_key_list({name})"):
                if ref_col is None:  # REFERENCES t without a column: its primary key
                    ref_pk = [r for r in db.execute(f"PRAGMA {schema}.table_info({ref})") if r[5]]
                    ref_col = sorted(ref_pk, key=lambda r: r[5])[seq][1]
                fk.setdefault(fid, []).append((seq, col, ref, ref_col))
            fks[table] = {
                (tuple(c for _, c, _, _ in sorted(v)), v[0][2], tuple(r for *_, r in sorted(v))) for v in fk.values()
            }
        for (name,) in db.execute(f"SELECT name FROM {master} WHERE type = 'trigger'"):
            triggers.add((pg_schema, name))
    return tables, indexes, uniques, fks, triggers


# ---------------------------------------------------------------- PostgreSQL side


def psql(conn, query):
    cmd = ["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-F", FIELD, *conn, "-c", query]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return [line.split(FIELD) for line in out.split("\n") if line]  # not splitlines: it splits at ITEM too


def apply_migrations(conn):
    for path in migration_files(HERE):
        print(f"applying {os.path.basename(path)}")
        subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-1", *conn, "-f", path], check=True)


IN_SCHEMAS = "IN ('public', 'readlog')"


def postgres_schema(conn):
    tables = {}
    for schema, table, column, dtype, nullable, default, collation, identity in psql(
        conn,
        f"""SELECT c.table_schema, c.table_name, c.column_name, c.data_type, c.is_nullable,
                   coalesce(c.column_default, ''), coalesce(c.collation_name, ''), c.is_identity
            FROM information_schema.columns c
            JOIN information_schema.tables t USING (table_catalog, table_schema, table_name)
            WHERE c.table_schema {IN_SCHEMAS} AND t.table_type = 'BASE TABLE'
            ORDER BY c.table_schema, c.table_name, c.ordinal_position""",
    ):
        tables.setdefault((schema, table), []).append(
            {
                "name": column,
                "type": dtype,
                "notnull": nullable == "NO",
                "default": default or None,
                "collation": collation,
                "identity": identity == "YES",
            }
        )
    indexes, uniques = {}, {}
    for schema, table, name, unique, primary, constraint, predicate, terms in psql(
        conn,
        f"""SELECT n.nspname, t.relname, i.relname, x.indisunique, x.indisprimary,
                   EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = x.indexrelid AND k.contype IN ('p', 'u')),
                   coalesce(pg_get_expr(x.indpred, x.indrelid, true), ''),
                   (SELECT string_agg(pg_get_indexdef(x.indexrelid, k, true), chr(30) ORDER BY k)
                    FROM generate_series(1, x.indnkeyatts) k)
            FROM pg_index x
            JOIN pg_class i ON i.oid = x.indexrelid
            JOIN pg_class t ON t.oid = x.indrelid
            JOIN pg_namespace n ON n.oid = t.relnamespace
            WHERE n.nspname {IN_SCHEMAS}""",
    ):
        key = (schema, table)
        if constraint == "t":
            kind = "pk" if primary == "t" else "unique"
            uniques.setdefault(key, set()).add((kind, tuple(terms.split(ITEM))))
        else:
            indexes[(schema, name)] = {
                "table": key,
                "terms": tuple(terms.split(ITEM)),
                "unique": unique == "t",
                "predicate": predicate,
            }
    fks, deferrable = {}, {}
    for schema, table, name, columns, ref, ref_columns, can_defer, deferred in psql(
        conn,
        f"""SELECT n.nspname, t.relname, k.conname,
                   (SELECT string_agg(a.attname, chr(30) ORDER BY o.i) FROM unnest(k.conkey) WITH ORDINALITY o(att, i)
                    JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = o.att),
                   f.relname,
                   (SELECT string_agg(a.attname, chr(30) ORDER BY o.i) FROM unnest(k.confkey) WITH ORDINALITY o(att, i)
                    JOIN pg_attribute a ON a.attrelid = k.confrelid AND a.attnum = o.att),
                   k.condeferrable, k.condeferred
            FROM pg_constraint k
            JOIN pg_class t ON t.oid = k.conrelid
            JOIN pg_namespace n ON n.oid = t.relnamespace
            JOIN pg_class f ON f.oid = k.confrelid
            WHERE k.contype = 'f' AND n.nspname {IN_SCHEMAS}""",
    ):
        fk = (tuple(columns.split(ITEM)), ref, tuple(ref_columns.split(ITEM)))
        fks.setdefault((schema, table), set()).add(fk)
        deferrable[(schema, table, fk)] = (name, can_defer == "t" and deferred == "f")
    triggers = {
        (schema, name)
        for schema, name in psql(
            conn,
            f"""SELECT n.nspname, g.tgname FROM pg_trigger g
                JOIN pg_class t ON t.oid = g.tgrelid JOIN pg_namespace n ON n.oid = t.relnamespace
                WHERE NOT g.tgisinternal AND n.nspname {IN_SCHEMAS}""",
        )
    }
    return tables, indexes, uniques, fks, deferrable, triggers


# ---------------------------------------------------------------- comparison


def normal(expr):
    """An index term or predicate as both databases would write it: PostgreSQL's `x = ANY
    (ARRAY[...])` is SQLite's `x IN (...)`, and casts, quotes, case and spaces do not count."""
    expr = re.sub(r"(\w+) = ANY \(ARRAY\[(.*?)\]\)", r"\1 IN (\2)", expr)
    expr = re.sub(r"::(text|bigint|integer)\b", "", expr)
    return re.sub(r'[\s()"]', "", expr.lower())


def name(key):
    return f"{key[0]}.{key[1]}"


def main():
    apply, migrations, read_log, conn = parse_args(sys.argv[1:])
    migrations = migrations or first_existing(SQLITE_MIGRATIONS, "the SQLite migrations")
    read_log = read_log or first_existing(READ_LOG_SOURCES, "READ_LOG_SCHEMA")
    if apply:
        apply_migrations(conn)
    s_tables, s_indexes, s_uniques, s_fks, s_triggers = sqlite_schema(migration_files(migrations), read_log_schema(read_log))
    p_tables, p_indexes, p_uniques, p_fks, p_deferrable, p_triggers = postgres_schema(conn)
    problems = []

    for t in sorted(set(s_tables) - set(p_tables)):
        problems.append(f"table {name(t)}: missing in PostgreSQL")
    for t in sorted(set(p_tables) - set(s_tables)):
        problems.append(f"table {name(t)}: only in PostgreSQL")
    columns = 0
    identities = []
    for t in sorted(set(s_tables) & set(p_tables)):
        s_cols, p_cols = s_tables[t], p_tables[t]
        s_names, p_names = [c["name"] for c in s_cols], [c["name"] for c in p_cols]
        if s_names != p_names:
            problems.append(f"table {name(t)}: columns differ\n  SQLite:     {s_names}\n  PostgreSQL: {p_names}")
            continue
        for s, p in zip(s_cols, p_cols):
            columns += 1
            where = f"column {name(t)}.{s['name']}"
            if s["type"] != p["type"]:
                problems.append(f"{where}: type {p['type']}, expected {s['type']}")
            if p["type"] == "text" and p["collation"] != "C":
                problems.append(f"{where}: collation {p['collation'] or 'default'}, expected C")
            if s["notnull"] != p["notnull"]:
                problems.append(f"{where}: NOT NULL is {p['notnull']} in PostgreSQL, {s['notnull']} in SQLite")
            if p["identity"]:
                identities.append(f"{name(t)}.{s['name']}")
                if s["default"] is not None:
                    problems.append(f"{where}: identity in PostgreSQL, default {s['default']} in SQLite")
            elif (s["default"] or None) != (p["default"] or None):
                problems.append(f"{where}: default {p['default']}, expected {s['default']}")
        if s_uniques.get(t, set()) != p_uniques.get(t, set()):
            problems.append(
                f"table {name(t)}: keys differ\n  SQLite:     {sorted(s_uniques.get(t, set()))}"
                f"\n  PostgreSQL: {sorted(p_uniques.get(t, set()))}"
            )
        if s_fks.get(t, set()) != p_fks.get(t, set()):
            problems.append(
                f"table {name(t)}: foreign keys differ\n  SQLite:     {sorted(s_fks.get(t, set()))}"
                f"\n  PostgreSQL: {sorted(p_fks.get(t, set()))}"
            )
    for (schema, table, fk), (fk_name, ok) in sorted(p_deferrable.items()):
        if not ok:
            problems.append(f"foreign key {schema}.{fk_name} on {table}: not DEFERRABLE INITIALLY IMMEDIATE")

    for i in sorted(s_indexes):
        s = s_indexes[i]
        p = p_indexes.get(i)
        if p is None:
            problems.append(f"index {name(i)} on {name(s['table'])}: missing in PostgreSQL")
            continue
        if p["table"] != s["table"]:
            problems.append(f"index {name(i)}: on {name(p['table'])}, expected {name(s['table'])}")
        if [normal(x) for x in s["terms"]] != [normal(x) for x in p["terms"]]:
            problems.append(f"index {name(i)}: terms {list(p['terms'])}, expected {list(s['terms'])}")
        if s["unique"] != p["unique"]:
            problems.append(f"index {name(i)}: UNIQUE is {p['unique']}, expected {s['unique']}")
        if normal(s["predicate"]) != normal(p["predicate"]):
            problems.append(f"index {name(i)}: predicate {p['predicate']!r}, expected {s['predicate']!r}")
    for i in sorted(set(p_indexes) - set(s_indexes)):
        problems.append(f"index {name(i)}: only in PostgreSQL")

    for g in sorted(s_triggers ^ p_triggers):
        problems.append(f"trigger {name(g)}: only in {'SQLite' if g in s_triggers else 'PostgreSQL'}")

    partial = sorted(name(i) for i, s in s_indexes.items() if s["predicate"])
    print(f"SQLite migrations: {os.path.relpath(migrations)}")
    print(f"tables: {len(s_tables)} in SQLite, {len(p_tables)} in PostgreSQL; columns compared: {columns}")
    print(f"named indexes: {len(s_indexes)} in SQLite, {len(p_indexes)} in PostgreSQL (partial: {', '.join(partial)})")
    keys = sum(len(v) for v in s_uniques.values())
    print(f"primary keys and UNIQUE constraints: {keys}; foreign keys: {sum(len(v) for v in s_fks.values())}")
    print(f"triggers: {len(s_triggers)} in SQLite, {len(p_triggers)} in PostgreSQL")
    print(f"identity ids in PostgreSQL: {', '.join(identities)}")
    for problem in problems:
        print(f"PROBLEM {problem}")
    print("schemas agree" if not problems else f"{len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
