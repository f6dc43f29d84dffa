//! Test fixtures: each PostgreSQL test gets a fresh schema of its own in the cluster named by
//! `TALERBOX_TEST_PG`, dropped when the test ends. Without the variable the tests skip
//! loudly (and in CI, a guard test fails).

use std::io::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use super::{PgConnection, PgDatabase, parse_uri};

pub const VARIABLE: &str = "TALERBOX_TEST_PG";

/// A schema that is dropped with everything in it when the guard goes.
pub struct TestSchema {
    base: String,
    name: String,
}

impl TestSchema {
    /// The URI whose sessions see this schema only.
    pub fn uri(&self) -> String {
        super::with_search_path(&self.base, &self.name)
    }

    /// A connection of its own to the schema.
    pub fn connect(&self) -> PgConnection {
        PgConnection::connect(&parse_uri(&self.uri()).unwrap()).unwrap()
    }
}

impl Drop for TestSchema {
    fn drop(&mut self) {
        if let Ok(mut conn) = parse_uri(&self.base)
            .and_then(|config| PgConnection::connect(&config).map_err(|e| e.to_string()))
        {
            let _ = conn
                .session()
                .batch(&format!("DROP SCHEMA IF EXISTS {} CASCADE", self.name));
        }
    }
}

/// A fresh, empty schema, or `None` (with a SKIPPED line on the terminal) without a cluster.
pub fn schema() -> Option<TestSchema> {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let Ok(base) = std::env::var(VARIABLE) else {
        // Written past libtest's capture, so that a skipped suite is seen.
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED: PostgreSQL test (set {VARIABLE}; see scripts/pg-test-cluster)"
        );
        return None;
    };
    let name = format!(
        "t_{}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    );
    let mut conn = PgConnection::connect(&parse_uri(&base).unwrap()).unwrap();
    conn.session()
        .batch(&format!(
            "DROP SCHEMA IF EXISTS {name} CASCADE; CREATE SCHEMA {name}"
        ))
        .unwrap();
    Some(TestSchema { base, name })
}

/// A migrated database in a fresh schema.
pub fn database() -> Option<(TestSchema, Arc<PgDatabase>)> {
    let schema = schema()?;
    let db = PgDatabase::open(&schema.uri(), 4).unwrap();
    Some((schema, Arc::new(db)))
}

/// CI must never pass by skipping the PostgreSQL tests.
#[test]
fn postgres_tests_configured_in_ci() {
    if std::env::var_os("CI").is_some() {
        assert!(
            std::env::var_os(VARIABLE).is_some(),
            "CI is set but {VARIABLE} is not: .ci/run must start scripts/pg-test-cluster"
        );
    }
}
