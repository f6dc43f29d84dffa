//! A fresh schema of the throwaway cluster named by `TALERBOX_TEST_PG` for one test (dropped
//! at the end), and direct queries on it. Without the variable the tests skip loudly.
//!
//! The blocking client runs a runtime of its own, so everything here runs on a thread of its
//! own (`outside_runtime`) and may be called from async tests.

use talerbox::adapters::system::outside_runtime;

use std::io::Write as _;
use std::sync::atomic::{AtomicU32, Ordering};

const VARIABLE: &str = "TALERBOX_TEST_PG";

pub struct Schema {
    base: String,
    name: String,
}

impl Schema {
    /// A fresh, empty schema, or `None` with a SKIPPED line on the terminal.
    pub fn fresh(test: &str) -> Option<Schema> {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let Ok(base) = std::env::var(VARIABLE) else {
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED: {test} (set {VARIABLE}; see scripts/pg-test-cluster)"
            );
            return None;
        };
        let name = format!(
            "bb_{}_{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let schema = Schema { base, name };
        let create = format!(
            "DROP SCHEMA IF EXISTS {0} CASCADE; CREATE SCHEMA {0}",
            schema.name
        );
        outside_runtime(|| schema.admin().batch_execute(&create).unwrap()).unwrap();
        Some(schema)
    }

    /// The `DATABASE` value whose sessions see this schema only.
    pub fn uri(&self) -> String {
        talerbox::adapters::postgres::with_search_path(&self.base, &self.name)
    }

    fn admin(&self) -> postgres::Client {
        talerbox::adapters::postgres::parse_uri(&self.base)
            .unwrap()
            .connect(postgres::NoTls)
            .unwrap()
    }

    /// A connection that sees this schema (use it inside `outside_runtime`).
    pub fn client(&self) -> postgres::Client {
        talerbox::adapters::postgres::parse_uri(&self.uri())
            .unwrap()
            .connect(postgres::NoTls)
            .unwrap()
    }

    /// The one number `sql` answers.
    pub fn count(&self, sql: &str) -> i64 {
        outside_runtime(|| self.client().query_one(sql, &[]).unwrap().get(0)).unwrap()
    }
}

impl Drop for Schema {
    fn drop(&mut self) {
        let drop = format!("DROP SCHEMA IF EXISTS {} CASCADE", self.name);
        let _ = outside_runtime(|| self.admin().batch_execute(&drop));
    }
}
