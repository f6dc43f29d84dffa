//! Connections: the URI as talerbox accepts it, session settings, and a per-connection cache
//! of prepared statements (a statement parsed on every call costs a second round trip).

use std::collections::HashMap;
use std::time::Duration;

use postgres::config::SslMode;
use postgres::types::ToSql;
use postgres::{Client, GenericClient, NoTls, Row, Statement};

/// Where libpq looks when a URI names no host (Debian's socket directory).
const DEFAULT_SOCKET_DIR: &str = "/var/run/postgresql";

/// Settings of every session: waits bounded like SQLite's busy timeout, and commits durable
/// before they are answered.
const SESSION_SETTINGS: &str = "SET lock_timeout = '5s'; SET statement_timeout = '30s'; \
     SET idle_in_transaction_session_timeout = '60s'; SET synchronous_commit = on";

/// Parses a `postgres://` or `postgresql://` URI as the real components' configuration gives
/// it; a URI without a host means the default socket directory, and TLS is refused.
pub fn parse_uri(uri: &str) -> Result<postgres::Config, String> {
    let mut config: postgres::Config = uri
        .parse()
        .map_err(|e| format!("invalid PostgreSQL URI {}: {e}", redact(uri)))?;
    if config.get_hosts().is_empty() {
        config.host_path(DEFAULT_SOCKET_DIR);
    }
    if config.get_ssl_mode() == SslMode::Require {
        return Err(format!(
            "{}: TLS connections (sslmode=require) are not supported; connect over a unix \
             socket or a private network",
            redact(uri)
        ));
    }
    config.application_name("talerbox");
    config.connect_timeout(Duration::from_secs(5));
    Ok(config)
}

/// `uri` with sessions confined to `schema` (a fresh schema per test or benchmark).
pub fn with_search_path(uri: &str, schema: &str) -> String {
    let separator = if uri.contains('?') { '&' } else { '?' };
    format!("{uri}{separator}options=-c%20search_path%3D{schema}")
}

/// The URI without its password, for logs and messages.
pub fn redact(uri: &str) -> String {
    let Some((scheme, rest)) = uri.split_once("://") else {
        return uri.to_owned();
    };
    let (authority, tail) = rest.split_at(rest.find(['/', '?']).unwrap_or(rest.len()));
    match authority.rsplit_once('@') {
        Some((credentials, host)) => {
            let user = credentials.split(':').next().unwrap_or_default();
            format!("{scheme}://{user}:***@{host}{tail}")
        }
        None => uri.to_owned(),
    }
}

/// One session with its cache of prepared statements.
pub struct PgConnection {
    client: Client,
    statements: HashMap<String, Statement>,
}

impl PgConnection {
    pub fn connect(config: &postgres::Config) -> Result<PgConnection, postgres::Error> {
        let mut client = config.connect(NoTls)?;
        client.batch_execute(SESSION_SETTINGS)?;
        Ok(PgConnection {
            client,
            statements: HashMap::new(),
        })
    }

    pub fn is_closed(&self) -> bool {
        self.client.is_closed()
    }

    /// A session in autocommit mode.
    pub fn session(&mut self) -> Session<'_, Client> {
        Session {
            client: &mut self.client,
            statements: &mut self.statements,
        }
    }

    /// Runs `work` inside `BEGIN … COMMIT` (READ COMMITTED); rolled back when it fails.
    pub fn transaction<T, E>(
        &mut self,
        work: impl FnOnce(&mut Session<'_, postgres::Transaction<'_>>) -> Result<T, E>,
    ) -> Result<T, E>
    where
        E: From<postgres::Error>,
    {
        let mut transaction = self.client.transaction()?;
        let mut session = Session {
            client: &mut transaction,
            statements: &mut self.statements,
        };
        let value = work(&mut session)?;
        transaction.commit()?;
        Ok(value)
    }
}

/// Statements on one connection, inside a transaction or not, prepared once per connection.
pub struct Session<'a, C> {
    client: &'a mut C,
    statements: &'a mut HashMap<String, Statement>,
}

pub type Params<'p> = [&'p (dyn ToSql + Sync)];

impl<C: GenericClient> Session<'_, C> {
    fn statement(&mut self, sql: &str) -> Result<Statement, postgres::Error> {
        if let Some(statement) = self.statements.get(sql) {
            return Ok(statement.clone());
        }
        let statement = self.client.prepare(sql)?;
        self.statements.insert(sql.to_owned(), statement.clone());
        Ok(statement)
    }

    pub fn query(&mut self, sql: &str, params: &Params<'_>) -> Result<Vec<Row>, postgres::Error> {
        let statement = self.statement(sql)?;
        self.client.query(&statement, params)
    }

    pub fn query_opt(
        &mut self,
        sql: &str,
        params: &Params<'_>,
    ) -> Result<Option<Row>, postgres::Error> {
        let statement = self.statement(sql)?;
        self.client.query_opt(&statement, params)
    }

    pub fn query_one(&mut self, sql: &str, params: &Params<'_>) -> Result<Row, postgres::Error> {
        let statement = self.statement(sql)?;
        self.client.query_one(&statement, params)
    }

    /// Runs a statement; the number of rows it changed.
    pub fn execute(&mut self, sql: &str, params: &Params<'_>) -> Result<u64, postgres::Error> {
        let statement = self.statement(sql)?;
        self.client.execute(&statement, params)
    }

    /// Runs statements without parameters in one round trip (not prepared).
    pub fn batch(&mut self, sql: &str) -> Result<(), postgres::Error> {
        self.client.batch_execute(sql)
    }

    /// Runs `work` inside a savepoint: undone alone when it fails or asks to be undone.
    /// `work` answers the value and whether to keep its changes.
    pub fn savepoint<T, E>(
        &mut self,
        work: impl FnOnce(&mut Self) -> Result<(T, bool), E>,
    ) -> Result<T, E>
    where
        E: From<postgres::Error>,
    {
        self.batch("SAVEPOINT talerbox_step")?;
        match work(self) {
            Ok((value, true)) => {
                self.batch("RELEASE SAVEPOINT talerbox_step")?;
                Ok(value)
            }
            Ok((value, false)) => {
                self.batch("ROLLBACK TO SAVEPOINT talerbox_step; RELEASE SAVEPOINT talerbox_step")?;
                Ok(value)
            }
            Err(e) => {
                // The transaction fails anyway; its rollback undoes the step.
                Err(e)
            }
        }
    }
}

/// The r2d2 manager: connections with session settings and a statement cache. No query on
/// checkout (a lost connection shows as closed, and the next statement reports it).
pub struct PgManager {
    config: postgres::Config,
}

impl PgManager {
    pub fn new(config: postgres::Config) -> PgManager {
        PgManager { config }
    }
}

impl r2d2::ManageConnection for PgManager {
    type Connection = PgConnection;
    type Error = postgres::Error;

    fn connect(&self) -> Result<PgConnection, postgres::Error> {
        PgConnection::connect(&self.config)
    }

    fn is_valid(&self, conn: &mut PgConnection) -> Result<(), postgres::Error> {
        conn.client.simple_query("").map(|_| ())
    }

    fn has_broken(&self, conn: &mut PgConnection) -> bool {
        conn.is_closed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_uri_without_host_uses_the_default_socket_directory() {
        let config = parse_uri("postgres:///talerbox").unwrap();
        assert_eq!(
            config.get_hosts(),
            &[postgres::config::Host::Unix(DEFAULT_SOCKET_DIR.into())]
        );
        assert_eq!(config.get_dbname(), Some("talerbox"));
        let config = parse_uri("postgresql:///tb?host=/tmp/sock&user=ann").unwrap();
        assert_eq!(
            config.get_hosts(),
            &[postgres::config::Host::Unix("/tmp/sock".into())]
        );
        assert_eq!(config.get_user(), Some("ann"));
    }

    #[test]
    fn tls_and_nonsense_are_refused_without_showing_the_password() {
        let error = parse_uri("postgres://ann:s3cret@db.internal/tb?sslmode=require").unwrap_err();
        assert!(error.contains("sslmode=require"), "{error}");
        assert!(!error.contains("s3cret"), "{error}");
        let error = parse_uri("postgres://ann:s3cret@db.internal/tb?nonsense=1").unwrap_err();
        assert!(!error.contains("s3cret"), "{error}");
    }

    #[test]
    fn redaction_keeps_everything_but_the_password() {
        assert_eq!(
            redact("postgres://ann:s3cret@db.internal:5433/tb?host=x"),
            "postgres://ann:***@db.internal:5433/tb?host=x"
        );
        assert_eq!(
            redact("postgres:///talerbox?host=/run/postgresql"),
            "postgres:///talerbox?host=/run/postgresql"
        );
    }
}
