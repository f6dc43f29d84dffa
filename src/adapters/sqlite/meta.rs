//! Facts about the installation kept in `talerbox_meta` (e.g. key fingerprints).

use rusqlite::OptionalExtension;

use super::{Database, DbError};
use crate::domain::evidence::NewJournalEntry;

impl Database {
    /// The value stored under `name`, if any.
    pub fn meta(&self, name: &str) -> Result<Option<String>, DbError> {
        self.read(|conn| {
            conn.query_row(
                "SELECT value FROM talerbox_meta WHERE name = ?1",
                [name],
                |row| row.get(0),
            )
            .optional()
            .map_err(DbError::from)
        })
    }

    /// Stores `value` under `name`, replacing any earlier value.
    pub fn set_meta(&self, name: &str, value: &str) -> Result<(), DbError> {
        self.set_meta_journaled(name, value, None)
    }

    /// Stores `value` under `name` and appends `entry` to the journal, both or neither.
    pub fn set_meta_journaled(
        &self,
        name: &str,
        value: &str,
        entry: Option<NewJournalEntry>,
    ) -> Result<(), DbError> {
        let (name, value) = (name.to_owned(), value.to_owned());
        self.write(move |conn| {
            conn.execute(
                "INSERT INTO talerbox_meta (name, value) VALUES (?1, ?2) \
                 ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                [&name, &value],
            )?;
            if let Some(entry) = &entry {
                super::journal::append(conn, entry).map_err(|e| DbError::Sqlite(e.to_string()))?;
            }
            Ok(())
        })
    }
}

impl crate::ports::meta::MetaStore for Database {
    fn get(&self, name: &str) -> Result<Option<String>, crate::ports::StoreError> {
        Ok(self.meta(name)?)
    }

    fn set(
        &self,
        name: &str,
        value: &str,
        entry: Option<NewJournalEntry>,
    ) -> Result<(), crate::ports::StoreError> {
        Ok(self.set_meta_journaled(name, value, entry)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::sqlite::DbOptions;

    #[test]
    fn set_read_and_replace() {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::open(&dir.path().join("m.sqlite3"), &DbOptions::default()).unwrap();
        assert_eq!(db.meta("k").unwrap(), None);
        db.set_meta("k", "one").unwrap();
        db.set_meta("k", "two").unwrap();
        assert_eq!(db.meta("k").unwrap().as_deref(), Some("two"));
    }

    #[test]
    fn conforms() {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::open(&dir.path().join("m.sqlite3"), &DbOptions::default()).unwrap();
        crate::ports::meta::conformance(&db);
    }
}
