//! The two migration sets describe one schema: after migrating both, every table has the same
//! columns in the same order, with the same nullability and type class, and the same primary
//! key and unique sets.

use std::collections::{BTreeMap, BTreeSet};

use super::testing;

#[derive(Debug, PartialEq, Eq)]
struct Table {
    /// (name, not null, type class) in order.
    columns: Vec<(String, bool, &'static str)>,
    primary_key: Vec<String>,
    /// Column sets of unique indexes, with whether the index is partial.
    unique: BTreeSet<(Vec<String>, bool)>,
}

fn sqlite_class(declared: &str) -> &'static str {
    match declared.to_ascii_uppercase().as_str() {
        "INTEGER" => "integer",
        "TEXT" => "text",
        "BLOB" => "bytes",
        other => panic!("unexpected SQLite column type {other}"),
    }
}

fn postgres_class(declared: &str) -> &'static str {
    match declared {
        "bigint" | "boolean" => "integer",
        "text" => "text",
        "bytea" => "bytes",
        other => panic!("unexpected PostgreSQL column type {other} (every integer is BIGINT)"),
    }
}

fn sqlite_schema() -> BTreeMap<String, Table> {
    use crate::adapters::sqlite::{Database, DbOptions};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("parity.sqlite3");
    drop(Database::open(&path, &DbOptions::default()).unwrap());
    let conn = rusqlite::Connection::open(&path).unwrap();
    let names: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let mut tables = BTreeMap::new();
    for name in names {
        let mut columns = Vec::new();
        let mut primary_key = Vec::new();
        let mut info = conn
            .prepare("SELECT name, type, \"notnull\", pk FROM pragma_table_info(?1) ORDER BY cid")
            .unwrap();
        let rows = info
            .query_map([&name], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, bool>(2)?,
                    r.get::<_, i64>(3)?,
                ))
            })
            .unwrap();
        let mut keyed = Vec::new();
        for row in rows {
            let (column, declared, not_null, pk) = row.unwrap();
            // A primary key column never holds NULL, declared so or not.
            columns.push((column.clone(), not_null || pk > 0, sqlite_class(&declared)));
            if pk > 0 {
                keyed.push((pk, column));
            }
        }
        keyed.sort();
        primary_key.extend(keyed.into_iter().map(|(_, c)| c));
        let mut unique = BTreeSet::new();
        let mut indexes = conn
            .prepare("SELECT name, \"unique\", origin, partial FROM pragma_index_list(?1)")
            .unwrap();
        let list: Vec<(String, bool, String, bool)> = indexes
            .query_map([&name], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })
            .unwrap()
            .map(Result::unwrap)
            .collect();
        for (index, is_unique, origin, partial) in list {
            if !is_unique || origin == "pk" {
                continue;
            }
            let mut columns: Vec<String> = conn
                .prepare("SELECT name FROM pragma_index_info(?1) ORDER BY seqno")
                .unwrap()
                .query_map([&index], |r| r.get(0))
                .unwrap()
                .map(Result::unwrap)
                .collect();
            columns.sort();
            unique.insert((columns, partial));
        }
        tables.insert(
            name,
            Table {
                columns,
                primary_key,
                unique,
            },
        );
    }
    tables
}

fn postgres_schema(schema: &testing::TestSchema) -> BTreeMap<String, Table> {
    let mut conn = schema.connect();
    let mut s = conn.session();
    let names = super::tables(&mut s).unwrap();
    let mut tables = BTreeMap::new();
    for name in names {
        let columns = s
            .query(
                "SELECT column_name::text, is_nullable = 'NO', data_type::text
                 FROM information_schema.columns
                 WHERE table_schema = current_schema() AND table_name = $1
                 ORDER BY ordinal_position",
                &[&name],
            )
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1), postgres_class(r.get::<_, &str>(2))))
            .collect();
        let indexes = s
            .query(
                "SELECT i.indisprimary, i.indpred IS NOT NULL,
                        ARRAY(SELECT a.attname::text FROM unnest(i.indkey) WITH ORDINALITY k(n, o)
                              JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.n
                              ORDER BY k.o)
                 FROM pg_index i
                 WHERE i.indrelid = to_regclass($1) AND i.indisunique",
                &[&name],
            )
            .unwrap();
        let mut primary_key = Vec::new();
        let mut unique = BTreeSet::new();
        for row in indexes {
            let (primary, partial, mut columns): (bool, bool, Vec<String>) =
                (row.get(0), row.get(1), row.get(2));
            if primary {
                primary_key = columns;
            } else {
                columns.sort();
                unique.insert((columns, partial));
            }
        }
        tables.insert(
            name,
            Table {
                columns,
                primary_key,
                unique,
            },
        );
    }
    tables
}

#[test]
fn both_migration_sets_describe_one_schema() {
    assert_eq!(
        crate::adapters::sqlite::latest_version(),
        super::latest_version(),
        "the two migration sets must have the same number of steps"
    );
    let Some((schema, _db)) = testing::database() else {
        return;
    };
    let sqlite = sqlite_schema();
    let postgres = postgres_schema(&schema);
    assert_eq!(
        sqlite.keys().collect::<Vec<_>>(),
        postgres.keys().collect::<Vec<_>>(),
        "tables"
    );
    for (name, table) in &sqlite {
        assert_eq!(Some(table), postgres.get(name), "table {name}");
    }
}
