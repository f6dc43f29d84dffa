//! The configured database and the stores over it: the embedded SQLite file (the default)
//! or a PostgreSQL database shared by several instances. Everything above the ports is the
//! same for both.

use std::sync::Arc;

use anyhow::Context as _;

use crate::adapters::http::metrics::DatabaseFacts;
use crate::adapters::postgres::{
    PgAccountStore, PgAmlStore, PgChallengeStore, PgDatabase, PgKycStore, PgTanStore, journal,
};
use crate::adapters::private_files;
use crate::adapters::sqlite::{
    Database, DbOptions, SqliteAccountStore, SqliteAmlStore, SqliteChallengeStore, SqliteJournal,
    SqliteKycStore, SqliteTanStore,
};
use crate::config::{Config, DatabaseChoice};
use crate::ports::accounts::AccountStore;
use crate::ports::aml::{AttributeStore, DecisionStore, OfficerStore};
use crate::ports::challenges::ChallengeStore;
use crate::ports::health::HealthProbe;
use crate::ports::journal::Journal;
use crate::ports::kyc::KycStore;
use crate::ports::meta::MetaStore;
use crate::ports::retention::RetentionStore;
use crate::ports::tan::TanStore;

/// The database of an installation.
#[derive(Clone)]
pub enum Storage {
    Sqlite(Arc<Database>),
    Postgres(Arc<PgDatabase>),
}

/// The AML stores (one object implements the three ports on either database).
pub struct AmlStores {
    pub officers: Arc<dyn OfficerStore>,
    pub attributes: Arc<dyn AttributeStore>,
    pub decisions: Arc<dyn DecisionStore>,
}

impl Storage {
    /// Opens (creating and migrating) the configured database.
    pub fn open(config: &Config) -> anyhow::Result<Storage> {
        match &config.server.database {
            DatabaseChoice::Sqlite { readers } => {
                let data_dir = &config.server.data_dir;
                private_files::create_dir(data_dir).with_context(|| {
                    format!("creating the data directory {}", data_dir.display())
                })?;
                let path = super::database_path(config);
                let db = Database::open(&path, &DbOptions { readers: *readers })
                    .with_context(|| format!("opening the database {}", path.display()))?;
                Ok(Storage::Sqlite(Arc::new(db)))
            }
            DatabaseChoice::Postgres { uri, pool_size } => {
                let db = PgDatabase::open(uri, *pool_size).with_context(|| {
                    format!(
                        "opening the database {}",
                        crate::adapters::postgres::redact(uri)
                    )
                })?;
                Ok(Storage::Postgres(Arc::new(db)))
            }
        }
    }

    /// Where the data is, for logs (no password).
    pub fn describe(&self) -> String {
        match self {
            Storage::Sqlite(db) => db.path().display().to_string(),
            Storage::Postgres(db) => db.uri().to_owned(),
        }
    }

    pub fn is_postgres(&self) -> bool {
        matches!(self, Storage::Postgres(_))
    }

    pub fn accounts(&self) -> Arc<dyn AccountStore> {
        match self {
            Storage::Sqlite(db) => Arc::new(SqliteAccountStore::new(Arc::clone(db))),
            Storage::Postgres(db) => Arc::new(PgAccountStore::new(Arc::clone(db))),
        }
    }

    pub fn tan(&self) -> Arc<dyn TanStore> {
        match self {
            Storage::Sqlite(db) => Arc::new(SqliteTanStore::new(Arc::clone(db))),
            Storage::Postgres(db) => Arc::new(PgTanStore::new(Arc::clone(db))),
        }
    }

    /// The store of the challenger instance of configuration section `section`.
    pub fn challenges(&self, section: &str) -> Arc<dyn ChallengeStore> {
        match self {
            Storage::Sqlite(db) => Arc::new(SqliteChallengeStore::new(Arc::clone(db), section)),
            Storage::Postgres(db) => Arc::new(PgChallengeStore::new(Arc::clone(db), section)),
        }
    }

    pub fn aml(&self) -> AmlStores {
        match self {
            Storage::Sqlite(db) => {
                let store = Arc::new(SqliteAmlStore::new(Arc::clone(db)));
                AmlStores {
                    officers: store.clone(),
                    attributes: store.clone(),
                    decisions: store,
                }
            }
            Storage::Postgres(db) => {
                let store = Arc::new(PgAmlStore::new(Arc::clone(db)));
                AmlStores {
                    officers: store.clone(),
                    attributes: store.clone(),
                    decisions: store,
                }
            }
        }
    }

    pub fn kyc(&self) -> Arc<dyn KycStore> {
        match self {
            Storage::Sqlite(db) => Arc::new(SqliteKycStore::new(Arc::clone(db))),
            Storage::Postgres(db) => Arc::new(PgKycStore::new(Arc::clone(db))),
        }
    }

    pub fn journal(&self) -> Arc<dyn Journal> {
        match self {
            Storage::Sqlite(db) => Arc::new(SqliteJournal::new(Arc::clone(db))),
            Storage::Postgres(db) => Arc::new(journal::PgJournal::new(Arc::clone(db))),
        }
    }

    pub fn meta(&self) -> &dyn MetaStore {
        match self {
            Storage::Sqlite(db) => &**db,
            Storage::Postgres(db) => &**db,
        }
    }

    pub fn health(&self) -> Arc<dyn HealthProbe> {
        match self {
            Storage::Sqlite(db) => Arc::clone(db) as Arc<dyn HealthProbe>,
            Storage::Postgres(db) => Arc::clone(db) as Arc<dyn HealthProbe>,
        }
    }

    pub fn facts(&self) -> Arc<dyn DatabaseFacts> {
        match self {
            Storage::Sqlite(db) => Arc::clone(db) as Arc<dyn DatabaseFacts>,
            Storage::Postgres(db) => Arc::clone(db) as Arc<dyn DatabaseFacts>,
        }
    }

    pub fn retention(&self) -> Arc<dyn RetentionStore> {
        match self {
            Storage::Sqlite(db) => Arc::clone(db) as Arc<dyn RetentionStore>,
            Storage::Postgres(db) => Arc::clone(db) as Arc<dyn RetentionStore>,
        }
    }
}
