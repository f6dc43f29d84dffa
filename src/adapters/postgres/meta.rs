//! Facts about the installation kept in `talerbox_meta` (key fingerprints, the exchange's
//! registration with the built-in challenger).

use super::{PgDatabase, journal};
use crate::domain::evidence::NewJournalEntry;
use crate::ports::StoreError;

impl PgDatabase {
    /// The value stored under `name`, if any.
    pub fn meta(&self, name: &str) -> Result<Option<String>, StoreError> {
        self.read(|s| {
            let row = s.query_opt("SELECT value FROM talerbox_meta WHERE name = $1", &[&name])?;
            Ok(row.map(|r| r.try_get(0)).transpose()?)
        })
    }

    /// Stores `value` under `name` and appends `entry` to the journal, both or neither.
    pub fn set_meta_journaled(
        &self,
        name: &str,
        value: &str,
        entry: Option<NewJournalEntry>,
    ) -> Result<(), StoreError> {
        self.write(|s| {
            s.execute(
                "INSERT INTO talerbox_meta (name, value) VALUES ($1, $2) \
                 ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                &[&name, &value],
            )?;
            if let Some(entry) = &entry {
                journal::append(s, entry)?;
            }
            Ok(())
        })
    }
}

impl crate::ports::meta::MetaStore for PgDatabase {
    fn get(&self, name: &str) -> Result<Option<String>, StoreError> {
        self.meta(name)
    }

    fn set(
        &self,
        name: &str,
        value: &str,
        entry: Option<NewJournalEntry>,
    ) -> Result<(), StoreError> {
        self.set_meta_journaled(name, value, entry)
    }
}

#[cfg(test)]
mod tests {
    use crate::adapters::postgres::testing;

    #[test]
    fn conforms() {
        let Some((_schema, db)) = testing::database() else {
            return;
        };
        crate::ports::meta::conformance(&*db);
    }
}
