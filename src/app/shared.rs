//! What instances sharing one PostgreSQL database must agree on: they start one at a time,
//! answer under one public address, and read the same keys (each key's fingerprint is kept
//! in the database, and an instance with another key refuses to start).

use anyhow::Context as _;

use crate::adapters::keys::MasterKey;
use crate::adapters::postgres::locks::StartupLock;
use crate::config::{Config, DatabaseChoice};
use crate::domain::primitives::EddsaPrivateKey;
use crate::domain::tan::BodyKey;
use crate::ports::meta::MetaStore;

/// On PostgreSQL, the lock held while an instance (or a command) opens the installation.
pub fn startup_lock(config: &Config) -> anyhow::Result<Option<StartupLock>> {
    match &config.server.database {
        DatabaseChoice::Sqlite { .. } => Ok(None),
        DatabaseChoice::Postgres { uri, .. } => StartupLock::acquire(uri)
            .map(Some)
            .with_context(|| format!("connecting to {}", crate::adapters::postgres::redact(uri))),
    }
}

/// On PostgreSQL the next request may reach another instance, so every URL talerbox hands
/// out must name the one public address: `[talerbox] BASE_URL` (or each component's own).
pub fn require_public_url(config: &Config) -> anyhow::Result<()> {
    if !config.server.database.is_postgres() || config.server.public_base_url.is_some() {
        return Ok(());
    }
    let components = [
        config.bank.base_url.is_some(),
        config.exchange.base_url.is_some(),
        config.challenger.base_url.is_some(),
    ];
    if components.iter().all(|set| *set) {
        return Ok(());
    }
    anyhow::bail!(
        "[talerbox] BASE_URL must be set when DATABASE is PostgreSQL: instances sharing a \
         database answer under one public address (the load balancer's), and every URL they \
         hand out must name it"
    )
}

/// Refuses an instance whose master or journal key differs from the first instance's.
pub fn guard_keys(
    meta: &dyn MetaStore,
    master: &MasterKey,
    journal: &EddsaPrivateKey,
) -> anyhow::Result<()> {
    guard(
        meta,
        "master_public_key",
        &master.public.to_string(),
        "master key",
    )?;
    guard(
        meta,
        "journal_public_key",
        &journal.public_key().to_string(),
        "journal key",
    )
}

/// Refuses an instance whose TAN body key differs from the first instance's.
pub fn guard_tan_body_key(meta: &dyn MetaStore, key: &BodyKey) -> anyhow::Result<()> {
    let fingerprint = data_encoding::HEXLOWER.encode(&key.fingerprint());
    guard(
        meta,
        "tan_body_key_fingerprint",
        &fingerprint,
        "TAN body key",
    )
}

fn guard(meta: &dyn MetaStore, name: &str, value: &str, what: &str) -> anyhow::Result<()> {
    match meta
        .get(name)
        .with_context(|| format!("reading the {what}'s fingerprint"))?
    {
        Some(stored) if stored == value => Ok(()),
        Some(_) => anyhow::bail!(
            "the {what} in the key directory is not the one the other instances of this \
             database use; copy the key files of the first instance into [talerbox] KEY_DIR"
        ),
        None => meta
            .set(name, value, None)
            .with_context(|| format!("storing the {what}'s fingerprint")),
    }
}

/// `db migrate-from-sqlite FILE`: copies an installation into the configured (empty)
/// PostgreSQL database, under the startup lock so that no instance starts meanwhile.
pub fn migrate_from_sqlite(
    config: &Config,
    file: &std::path::Path,
) -> anyhow::Result<crate::adapters::postgres::import::ImportReport> {
    let DatabaseChoice::Postgres { uri, .. } = &config.server.database else {
        anyhow::bail!(
            "[talerbox] DATABASE is sqlite: set it to the PostgreSQL database to move into"
        );
    };
    let _startup = startup_lock(config)?;
    let target = crate::adapters::postgres::PgDatabase::open(uri, 2)
        .with_context(|| format!("opening {}", crate::adapters::postgres::redact(uri)))?;
    crate::adapters::postgres::import::import_sqlite(file, &target)
        .with_context(|| format!("moving {} into PostgreSQL", file.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::meta::InMemoryMetaStore;

    #[test]
    fn the_first_key_is_kept_and_another_refused() {
        let meta = InMemoryMetaStore::default();
        let first = BodyKey::new([1; 32]);
        guard_tan_body_key(&meta, &first).unwrap();
        guard_tan_body_key(&meta, &first).unwrap();
        let error = guard_tan_body_key(&meta, &BodyKey::new([2; 32])).unwrap_err();
        assert!(error.to_string().contains("KEY_DIR"), "{error}");
        let master = MasterKey {
            public: EddsaPrivateKey::from_seed([3; 32]).public_key(),
            private: None,
        };
        let journal = EddsaPrivateKey::from_seed([4; 32]);
        guard_keys(&meta, &master, &journal).unwrap();
        let other = EddsaPrivateKey::from_seed([5; 32]);
        let error = guard_keys(&meta, &master, &other).unwrap_err();
        assert!(error.to_string().contains("journal key"), "{error}");
    }

    #[test]
    fn instances_resolving_together_register_the_exchange_once() {
        use crate::adapters::postgres::testing;
        let Some(schema) = testing::schema() else {
            return;
        };
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("talerbox.conf");
        std::fs::write(
            &file,
            format!(
                "[talerbox]\nDATABASE = {}\nBASE_URL = http://127.0.0.1:9/\n\
                 [exchange]\nATTRIBUTE_ENCRYPTION_KEY = shared\n\
                 [libeufin-bank]\nPASSWORD_HASH_MEMORY_KIB = 64\nPASSWORD_HASH_ITERATIONS = 1\n",
                schema.uri()
            ),
        )
        .unwrap();
        let open = |name: &str| {
            let overrides = crate::config::Overrides {
                listen: None,
                data_dir: Some(dir.path().join(name)),
            };
            let mut config = Config::load(Some(&file), &overrides).unwrap();
            config.server.key_dir = Some(dir.path().join("keys"));
            crate::app::App::open(config).unwrap()
        };
        let (a, b) = (open("a"), open("b"));
        let together = std::sync::Barrier::new(2);
        std::thread::scope(|scope| {
            for app in [&a, &b] {
                let together = &together;
                scope.spawn(move || {
                    together.wait();
                    app.kyc_service(
                        "http://127.0.0.1:9/exchange/",
                        "http://127.0.0.1:9/challenger/",
                    )
                    .unwrap();
                });
            }
        });
        let clients = a.challenger(None).unwrap().service.clients().unwrap();
        assert_eq!(clients.len(), 1, "{clients:?}");
    }
}
