//! The `talerbox` command line: `serve` and the admin commands.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};

use talerbox::app::{self, App, StartOptions};
use talerbox::config::{Config, DatabaseChoice, Overrides};
use talerbox::domain::aml::{Officer, iso8601_utc};
use talerbox::domain::primitives::{
    EddsaPrivateKey, EddsaPublicKey, base32, purpose, sign_purpose,
};

mod cli;

use cli::secret::SecretSource;

/// Writes a line to standard output; a write error (a closed pipe) ends the command.
macro_rules! out {
    ($($arg:tt)*) => {
        writeln!(std::io::stdout().lock(), $($arg)*)?
    };
}

#[derive(Parser)]
#[command(
    name = "talerbox",
    version,
    about = "GNU Taler compliance services on embedded SQLite"
)]
struct Cli {
    /// Configuration file (GNU Taler INI format) on top of the embedded defaults.
    #[arg(
        short = 'c',
        long = "config",
        global = true,
        value_name = "FILE",
        env = "TALERBOX_CONFIG"
    )]
    config: Option<PathBuf>,
    /// Data directory (database, key files); overrides [talerbox] DATA_DIR.
    #[arg(long, global = true, value_name = "DIR", env = "TALERBOX_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Log level: error, warn, info, debug or trace (RUST_LOG filters take precedence).
    #[arg(
        short = 'L',
        long = "log",
        global = true,
        value_name = "LEVEL",
        default_value = "info"
    )]
    log: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP server.
    Serve {
        /// Listen address; overrides [talerbox] LISTEN. Port 0 picks a free port.
        #[arg(long, value_name = "ADDR")]
        listen: Option<String>,
        /// Accept an attribute encryption key that differs from the one the database was used
        /// with (rows under the old key then show without attributes).
        #[arg(long)]
        accept_new_attribute_key: bool,
    },
    /// Create an installation (database, key files) in the data directory; `serve` does too.
    Init,
    /// Bring back the installation backed up in DIR (by `db backup`) into the data directory,
    /// which must hold none.
    Restore { dir: PathBuf },
    /// Inspect the configuration (like taler-config).
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Database maintenance.
    #[command(subcommand)]
    Db(DbCommand),
    /// Bank accounts (like libeufin-bank's admin commands).
    #[command(subcommand)]
    Bank(BankCommand),
    /// Address validation: OAuth clients and the outbox (like challenger-admin).
    Challenger(ChallengerArgs),
    /// AML officers (like taler-exchange-offline aml-enable/aml-disable).
    #[command(subcommand)]
    Aml(AmlCommand),
    /// The exchange's keys.
    #[command(subcommand)]
    Exchange(ExchangeCommand),
    /// Payto URIs.
    #[command(subcommand)]
    Payto(PaytoCommand),
    /// The exchange's KYC process (like taler-exchange-kyc-trigger).
    #[command(subcommand)]
    Kyc(KycCommand),
    /// The compliance journal: verify, list, export.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Signed attribute exports.
    #[command(subcommand)]
    Export(ExportCommand),
    /// Retention of KYC attributes.
    #[command(subcommand)]
    Retention(RetentionCommand),
}

#[derive(Subcommand)]
enum ExportCommand {
    /// Checks a downloaded export against its `Talerbox-Export-Proof`; exits 1 if it fails.
    Verify {
        file: PathBuf,
        /// The proof: its text, or a file holding it.
        proof: String,
        /// The journal public key (default: this data directory's).
        #[arg(long = "pub", value_name = "JOURNAL_PUB")]
        journal_pub: Option<EddsaPublicKey>,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Recomputes every hash and checks every checkpoint; exits 1 at the first bad serial.
    Verify,
    /// Lists entries, newest first.
    Log {
        /// Only entries of this account (payto URI or account hash).
        #[arg(long)]
        account: Option<String>,
        /// Only entries of this actor (`system`, `operator`, `officer:PUB`, …).
        #[arg(long)]
        actor: Option<String>,
        /// Only entries of this kind (e.g. `aml.attributes_read`).
        #[arg(long)]
        kind: Option<String>,
        /// Only entries at or after this time (seconds since the epoch).
        #[arg(long, value_name = "TIME")]
        since: Option<u64>,
        #[arg(long, default_value_t = 100)]
        limit: u64,
        /// One canonical JSON object a line.
        #[arg(long)]
        json: bool,
    },
    /// Writes the journal as JSON lines ending with its last checkpoint (appended if needed).
    Export {
        file: PathBuf,
        #[arg(long, value_name = "SERIAL", default_value_t = 1)]
        from: u64,
    },
    /// Checks an export offline against the journal public key.
    VerifyExport {
        file: PathBuf,
        #[arg(long = "pub", value_name = "JOURNAL_PUB")]
        journal_pub: EddsaPublicKey,
    },
    /// Prints the journal public key.
    Pub,
}

#[derive(Subcommand)]
enum PaytoCommand {
    /// Print the normalised payto URI, then its H_NORMALIZED_PAYTO (base32).
    Hash { payto: String },
}

#[derive(Subcommand)]
enum KycCommand {
    /// List the open requirements: account hash, set row, start time, the measures' checks.
    List {
        /// Rows to list (negative: the newest first).
        #[arg(long, default_value = "-100", allow_hyphen_values = true)]
        limit: String,
    },
    /// Print an account's access token and the customer's KYC page URL (ACCOUNT: payto URI or hash).
    Token { account: String },
    /// Open KYC measures for an account; prints its access token, its H_NORMALIZED_PAYTO and
    /// the customer's KYC page URL (when the exchange's public URL is known).
    Trigger {
        /// The account's full payto URI (with receiver-name).
        payto: String,
        /// A measure to open (repeatable).
        #[arg(long = "measure", value_name = "M", required = true)]
        measures: Vec<String>,
        /// The customer must satisfy all measures, not one of them.
        #[arg(long = "and")]
        all: bool,
    },
    /// Record the public key that authenticates GET /kyc-check for a bank account (talerbox's
    /// substitute for the KYC auth wire transfer); prints the account's H_NORMALIZED_PAYTO.
    AccountKey {
        /// The account's full payto URI (with receiver-name).
        payto: String,
        /// The account's EdDSA public key (52 base32 characters); replaces an earlier one.
        public_key: String,
    },
}

#[derive(clap::Args)]
struct ChallengerArgs {
    /// Act on the instance [challenger-NAME] instead of [challenger].
    #[arg(long, global = true, value_name = "NAME")]
    instance: Option<String>,
    #[command(subcommand)]
    command: ChallengerCommand,
}

#[derive(Subcommand)]
enum ChallengerCommand {
    /// OAuth clients of the instance.
    #[command(subcommand)]
    Client(ClientCommand),
    /// List the messages (with their PINs) that the outbox sender has written, newest first.
    Outbox {
        /// Only the messages to this address.
        #[arg(long, value_name = "ADDRESS")]
        address: Option<String>,
    },
}

#[derive(Subcommand)]
enum ClientCommand {
    /// Register a client; prints its id (the client_id) alone on the first line.
    Add {
        /// Read the client secret (`secret-token:…` recommended) from the first line of
        /// standard input; without this option it is prompted for on a terminal.
        #[arg(long)]
        secret_stdin: bool,
        /// The client secret itself (unsafe: visible in the process list and the shell history).
        #[arg(long, value_name = "SECRET", conflicts_with = "secret_stdin")]
        secret_unsafe: Option<String>,
        /// The one redirect URI of the client (http:// or https://).
        #[arg(long = "redirect-uri", value_name = "URI")]
        redirect_uri: String,
    },
    /// List the clients: id, redirect URI, validations started.
    List,
    /// Delete a client with its validations and grants.
    Delete { id: i64 },
}

#[derive(Subcommand)]
enum AmlCommand {
    /// Register, disable and list AML officers.
    #[command(subcommand)]
    Officer(OfficerCommand),
    /// List accounts known to the exchange: hash, whether they have rules of their own, under
    /// investigation, high risk, and the payto URI (like GET /aml/$PUB/accounts).
    Accounts {
        /// Only accounts under investigation (yes) or not (no).
        #[arg(long, value_name = "yes|no")]
        investigation: Option<String>,
        /// Rows to list (negative: the newest first), as the endpoint's `limit`.
        #[arg(long, default_value = "-100", allow_hyphen_values = true)]
        limit: String,
    },
    /// Sign and apply an AML decision as an officer (like POST /aml/$PUB/decision).
    Decide(Box<DecideArgs>),
    /// Inspect and try the configured AML programs.
    #[command(subcommand)]
    Program(ProgramCommand),
    /// Set, release or list legal holds, which keep an account's attributes from purging.
    #[command(group(clap::ArgGroup::new("hold_action").required(true).args(["reason", "release", "list"])))]
    Hold {
        /// The account: payto URI or account hash.
        #[arg(required_unless_present = "list", conflicts_with = "list")]
        account: Option<String>,
        /// Why the account is held (kept in the database; the journal keeps its hash).
        #[arg(long)]
        reason: Option<String>,
        #[arg(long)]
        release: bool,
        #[arg(long)]
        list: bool,
    },
}

#[derive(Subcommand)]
enum RetentionCommand {
    /// Erases attribute rows past `[exchange] ATTRIBUTE_RETENTION` (unless held).
    Purge {
        /// Only count what would be purged.
        #[arg(long)]
        dry_run: bool,
    },
}

#[derive(clap::Args)]
struct DecideArgs {
    /// The account: a full payto URI (creates an unknown account), a payto URI, or its hash.
    account: String,
    /// File with the officer's private key (base32, as `aml officer new` prints it).
    #[arg(long, value_name = "FILE")]
    officer_key: PathBuf,
    #[arg(long)]
    justification: String,
    /// freeze, default, keep (the default) or a LegitimizationRuleSet JSON file.
    #[arg(long, default_value = "keep")]
    rules: String,
    /// The rules expire after DURATION (30d, 12h, 90s) or never.
    #[arg(long, value_name = "DURATION")]
    expiration: Option<String>,
    /// The measure that follows when the rules expire.
    #[arg(long, value_name = "MEASURE")]
    successor: Option<String>,
    /// AccountProperties as JSON or a JSON file.
    #[arg(long, value_name = "JSON|FILE")]
    properties: Option<String>,
    /// Measures the customer must now satisfy (`new_measures`, e.g. "personal").
    #[arg(long, value_name = "SPEC")]
    measures: Option<String>,
    /// Keep the account under investigation.
    #[arg(long)]
    investigate: bool,
    /// An event to count in the statistics (repeatable).
    #[arg(long = "event", value_name = "NAME")]
    events: Vec<String>,
    /// The decision time in seconds since the epoch (default: now).
    #[arg(long, value_name = "T_S")]
    decision_time: Option<u64>,
    /// Officer-filed attributes (a JSON object with FORM_ID).
    #[arg(long, value_name = "FILE")]
    attributes: Option<PathBuf>,
    #[arg(long, value_name = "DURATION")]
    attributes_expiration: Option<String>,
    /// Print the signed request as JSON instead of applying it.
    #[arg(long)]
    print_request: bool,
}

#[derive(Subcommand)]
enum ProgramCommand {
    /// What an AML program needs (context, attributes, inputs).
    Info { name: String },
    /// Run an AML program on an AmlProgramInput (file or standard input) as the server would.
    Test {
        name: String,
        #[arg(long, value_name = "FILE")]
        input: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum OfficerCommand {
    /// Enable an officer (register it, or re-enable it with a new name and rights).
    Add {
        /// The officer's public key (base32).
        #[arg(long = "pub", value_name = "KEY")]
        officer_pub: String,
        /// The officer's legal name.
        #[arg(long)]
        name: String,
        /// May read, not decide.
        #[arg(long)]
        read_only: bool,
    },
    /// Disable an officer (the name stays).
    Disable {
        /// The officer's public key (base32).
        key: String,
    },
    /// One officer a line: public key, name, active|disabled, read-only|read-write, last change.
    List,
    /// Generate a key pair, register it read-write, print the public key and then the private
    /// key (for demos: keep it secret).
    New {
        #[arg(long)]
        name: String,
    },
    /// Print the Taler-AML-Officer-Signature header value of a private key (for demos).
    SignQuery {
        /// The officer's private key (base32 of the 32-byte seed).
        private_key: String,
    },
}

#[derive(Subcommand)]
enum ExchangeCommand {
    /// Print the effective master public key (base32).
    MasterPub,
}

#[derive(Subcommand)]
enum BankCommand {
    /// Set the password of an account (also `admin`); prompts for it on a terminal.
    Passwd {
        username: String,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
        /// The password itself (unsafe: visible in the process list and the shell history).
        #[arg(long, value_name = "PASSWORD", conflicts_with = "password_stdin")]
        password_unsafe: Option<String>,
    },
    /// Create an account, with the rights of the admin.
    CreateAccount {
        #[arg(long)]
        username: String,
        #[arg(long)]
        password: String,
        /// Legal name of the account holder.
        #[arg(long)]
        name: String,
        /// List the account in /public-accounts.
        #[arg(long)]
        public: bool,
        /// The account belongs to a Taler exchange.
        #[arg(long)]
        exchange: bool,
        #[arg(long)]
        email: Option<String>,
        #[arg(long)]
        phone: Option<String>,
        #[arg(long = "payto-uri")]
        payto_uri: Option<String>,
        #[arg(long = "debit-threshold")]
        debit_threshold: Option<String>,
    },
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Print the value of one option (like `taler-config -s SECTION -o OPTION`).
    Get { section: String, option: String },
    /// Print the whole effective configuration (like `taler-config --dump`).
    Dump,
}

#[derive(Subcommand)]
enum DbCommand {
    /// Check the database's integrity; exits non-zero on any problem.
    Check,
    /// Write a consistent copy of the installation (database, key files, manifest) into DIR,
    /// which must be new or empty (safe while the server runs).
    Backup { dir: PathBuf },
    /// Move the installation in the SQLite file FILE (stopped, or a `db backup` copy) into the
    /// configured PostgreSQL database, which must be empty; prints the rows copied per table.
    MigrateFromSqlite { file: PathBuf },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        // `talerbox … | head`: the reader has all it wanted.
        Err(error) if broken_pipe(&error) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("talerbox: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn broken_pipe(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

fn init_logging(level: &str, json: bool) {
    use std::io::IsTerminal as _;
    // The migration library's own lines repeat ours: one line per migration.
    let filter = talerbox::adapters::logging::filter(&format!("{level},rusqlite_migration=warn"));
    // A closed standard error must not bring the server down: by default the subscriber
    // reports its own write errors with eprintln!, which panics when stderr is gone.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .log_internal_errors(false);
    if json {
        builder.json().init();
    } else {
        // Colour codes only for a person at a terminal, never into files and collectors.
        builder.with_ansi(std::io::stderr().is_terminal()).init();
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let listen = match &cli.command {
        Command::Serve { listen, .. } => listen.clone(),
        _ => None,
    };
    let overrides = Overrides {
        listen,
        data_dir: cli.data_dir.clone(),
    };
    let config = Config::load(cli.config.as_deref(), &overrides)?;
    init_logging(&cli.log, config.server.log_json);
    for warning in &config.warnings {
        tracing::warn!("{warning}");
    }
    // Only `serve` and `init` may create an installation; commands that read no installation
    // need none.
    let signing = matches!(
        &cli.command,
        Command::Aml(AmlCommand::Officer(OfficerCommand::SignQuery { .. }))
    );
    if !matches!(
        cli.command,
        Command::Serve { .. }
            | Command::Init
            | Command::Restore { .. }
            | Command::Config(_)
            | Command::Payto(_)
            | Command::Audit(AuditCommand::VerifyExport { .. })
            | Command::Export(ExportCommand::Verify {
                journal_pub: Some(_),
                ..
            })
    ) && !signing
    {
        app::require_installation(&config)?;
    }
    match cli.command {
        Command::Serve {
            accept_new_attribute_key,
            ..
        } => serve(
            config,
            StartOptions {
                accept_new_attribute_key,
            },
        ),
        Command::Init => {
            let existed = app::database_path(&config).exists();
            let dir = config.server.data_dir.clone();
            App::open(config)?;
            let what = if existed {
                "already holds"
            } else {
                "now holds"
            };
            out!("{} {what} a talerbox installation", dir.display());
            Ok(ExitCode::SUCCESS)
        }
        Command::Config(ConfigCommand::Get { section, option }) => {
            match config.ini.get_string(&section, &option)? {
                Some(value) => {
                    out!("{value}");
                    Ok(ExitCode::SUCCESS)
                }
                None => {
                    eprintln!("talerbox: option [{section}] {option} is not set");
                    Ok(ExitCode::FAILURE)
                }
            }
        }
        Command::Config(ConfigCommand::Dump) => {
            write!(
                std::io::stdout().lock(),
                "{}",
                config.ini.dump_with_origins()
            )?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Db(DbCommand::Check) => {
            let problems = match &config.server.database {
                DatabaseChoice::Sqlite { .. } => {
                    talerbox::adapters::sqlite::check(&app::database_path(&config))?
                }
                DatabaseChoice::Postgres { uri, .. } => talerbox::adapters::postgres::check(uri)?,
            };
            if problems.is_empty() {
                out!("ok");
                return Ok(ExitCode::SUCCESS);
            }
            for problem in problems {
                eprintln!("{problem}");
            }
            Ok(ExitCode::FAILURE)
        }
        Command::Bank(command) => bank(config, command),
        Command::Kyc(KycCommand::Trigger {
            payto,
            measures,
            all,
        }) => {
            cli::kyc::trigger(
                config,
                &payto,
                &measures,
                all,
                &mut std::io::stdout().lock(),
            )?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Payto(PaytoCommand::Hash { payto }) => {
            cli::payto::hash(&payto, &mut std::io::stdout().lock())?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Challenger(args) => challenger(config, args),
        Command::Audit(command) => audit(config, command),
        Command::Retention(RetentionCommand::Purge { dry_run }) => {
            let app = App::open(config)?;
            cli::retention::purge(&app, dry_run, &mut std::io::stdout().lock())
        }
        Command::Aml(AmlCommand::Hold {
            account,
            reason,
            release,
            list,
        }) => {
            let app = App::open(config)?;
            let out = &mut std::io::stdout().lock();
            match (account, list) {
                (Some(account), false) => {
                    cli::retention::hold(&app, &account, reason.filter(|_| !release), out)
                }
                _ => cli::retention::list_holds(&app, out),
            }
        }
        Command::Export(ExportCommand::Verify {
            file,
            proof,
            journal_pub,
        }) => {
            let journal_pub = match journal_pub {
                Some(key) => key,
                None => App::open(config)?.journal_key.public_key(),
            };
            cli::audit::verify_export_proof(
                &file,
                &proof,
                &journal_pub,
                &mut std::io::stdout().lock(),
            )
        }
        Command::Aml(AmlCommand::Officer(command)) => officer(config, command),
        Command::Aml(AmlCommand::Decide(args)) => decide(config, *args),
        Command::Aml(AmlCommand::Accounts {
            investigation,
            limit,
        }) => aml_accounts(config, investigation, limit),
        Command::Kyc(KycCommand::List { limit }) => kyc_list(config, limit),
        Command::Aml(AmlCommand::Program(command)) => program(config, command),
        Command::Kyc(KycCommand::Token { account }) => kyc_token(config, &account),
        Command::Kyc(KycCommand::AccountKey { payto, public_key }) => {
            cli::kyc::account_key(config, &payto, &public_key, &mut std::io::stdout().lock())?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Exchange(ExchangeCommand::MasterPub) => {
            let app = App::open(config)?;
            out!("{}", app.master_key.public);
            Ok(ExitCode::SUCCESS)
        }
        Command::Db(DbCommand::MigrateFromSqlite { file }) => {
            let report = app::migrate_from_sqlite(&config, &file)?;
            out!("{report}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Db(DbCommand::Backup { .. }) | Command::Restore { .. }
            if config.server.database.is_postgres() =>
        {
            anyhow::bail!(
                "the database is PostgreSQL: back it up with pg_dump and restore it with \
                 pg_restore; keep a copy of the key files of [talerbox] KEY_DIR with it"
            )
        }
        Command::Db(DbCommand::Backup { dir }) => {
            cli::backup::backup(&config.server.data_dir, &dir)?;
            out!("{}", dir.display());
            Ok(ExitCode::SUCCESS)
        }
        Command::Restore { dir } => {
            cli::backup::restore(&dir, &config.server.data_dir)?;
            out!("{}", config.server.data_dir.display());
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn audit(config: Config, command: AuditCommand) -> anyhow::Result<ExitCode> {
    let out = &mut std::io::stdout().lock();
    if let AuditCommand::VerifyExport { file, journal_pub } = &command {
        return cli::audit::verify_export(file, journal_pub, out);
    }
    let app = App::open(config)?;
    match command {
        AuditCommand::Verify => cli::audit::verify(&app, out),
        AuditCommand::Log {
            account,
            actor,
            kind,
            since,
            limit,
            json,
        } => cli::audit::log(
            &app,
            cli::audit::LogFilter {
                account,
                actor,
                kind,
                since,
                limit,
                json,
            },
            out,
        ),
        AuditCommand::Export { file, from } => cli::audit::export(&app, &file, from, out),
        AuditCommand::Pub => {
            writeln!(out, "{}", app.journal_key.public_key())?;
            Ok(ExitCode::SUCCESS)
        }
        AuditCommand::VerifyExport { file, journal_pub } => {
            cli::audit::verify_export(&file, &journal_pub, out)
        }
    }
}

fn bank(config: Config, command: BankCommand) -> anyhow::Result<ExitCode> {
    let app = App::open(config)?;
    match command {
        BankCommand::Passwd {
            username,
            password_stdin,
            password_unsafe,
        } => {
            let source = SecretSource {
                stdin: password_stdin,
                value: password_unsafe,
            };
            let password = cli::secret::read("password", "--password-stdin", source)?;
            app.accounts.set_password(&username, &password)?;
            out!("password of {username} changed");
        }
        BankCommand::CreateAccount {
            username,
            password,
            name,
            public,
            exchange,
            email,
            phone,
            payto_uri,
            debit_threshold,
        } => {
            let request = serde_json::json!({
                "username": username,
                "password": password,
                "name": name,
                "is_public": public,
                "is_taler_exchange": exchange,
                "contact_data": {"email": email, "phone": phone},
                "payto_uri": payto_uri,
                "debit_threshold": debit_threshold,
            });
            let request = serde_json::from_value(request).context("building the request")?;
            let admin = talerbox::domain::accounts::Caller::operator();
            let created = app.accounts.register(Some(&admin), request)?;
            out!("{}", created.internal_payto_uri);
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn challenger(config: Config, args: ChallengerArgs) -> anyhow::Result<ExitCode> {
    let app = App::open(config)?;
    // `--instance phone` and `--instance challenger-phone` both name [challenger-phone].
    let name = args
        .instance
        .as_deref()
        .map(|n| n.strip_prefix("challenger-").unwrap_or(n))
        .filter(|n| *n != "challenger");
    let instance = app.challenger(name)?;
    let service = &instance.service;
    match args.command {
        ChallengerCommand::Client(ClientCommand::Add {
            secret_stdin,
            secret_unsafe,
            redirect_uri,
        }) => {
            let source = SecretSource {
                stdin: secret_stdin,
                value: secret_unsafe,
            };
            let secret = cli::secret::read("client secret", "--secret-stdin", source)?;
            let client = service.add_client(&secret, &redirect_uri)?;
            out!("{}", client.id);
        }
        ChallengerCommand::Client(ClientCommand::List) => {
            for client in service.clients()? {
                out!(
                    "{}\t{}\t{}",
                    client.id,
                    client.redirect_uri,
                    client.validation_counter
                );
            }
        }
        ChallengerCommand::Client(ClientCommand::Delete { id }) => {
            if !service.delete_client(id)? {
                eprintln!("talerbox: no client {id} in [{}]", instance.config.section);
                return Ok(ExitCode::FAILURE);
            }
            out!("client {id} deleted");
        }
        ChallengerCommand::Outbox { address } => {
            let messages = talerbox::adapters::delivery::OutboxSender::list(&instance.outbox)
                .with_context(|| format!("reading {}", instance.outbox.display()))?;
            // A long address is cut in the file name: it matches by its beginning.
            let wanted = |m: &talerbox::adapters::delivery::OutboxMessage| {
                address.as_deref().is_none_or(|a| {
                    m.address == a || (m.truncated && a.starts_with(m.address.as_str()))
                })
            };
            for message in messages.into_iter().rev().filter(wanted) {
                let seconds = message.time.as_seconds().unwrap_or_default();
                let time = std::time::UNIX_EPOCH + std::time::Duration::from_secs(seconds);
                let cut = if message.truncated { "…" } else { "" };
                out!("== {}", message.file.display());
                out!("Date: {}", httpdate::fmt_http_date(time));
                out!("To: {}{cut}", message.address);
                out!();
                out!("{}", message.message.trim_end());
                out!();
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn officer_key(text: &str) -> anyhow::Result<EddsaPublicKey> {
    base32::decode_array(text.trim())
        .map(EddsaPublicKey)
        .map_err(|_| anyhow::anyhow!("not an officer public key (52 base32 characters): {text}"))
}

fn officer_line(officer: &Officer) -> String {
    format!(
        "{}\t{}\t{}\t{}\t{}",
        officer.officer_pub,
        officer.name,
        if officer.is_active {
            "active"
        } else {
            "disabled"
        },
        if officer.read_only {
            "read-only"
        } else {
            "read-write"
        },
        iso8601_utc(officer.last_change),
    )
}

fn officer(config: Config, command: OfficerCommand) -> anyhow::Result<ExitCode> {
    if let OfficerCommand::SignQuery { private_key } = &command {
        let key: EddsaPrivateKey = private_key
            .trim()
            .parse()
            .map_err(|_| anyhow::anyhow!("not a private key (52 base32 characters)"))?;
        out!("{}", sign_purpose(&key, purpose::AML_QUERY, &[]));
        return Ok(ExitCode::SUCCESS);
    }
    let app = App::open(config)?;
    let aml = &app.aml;
    match command {
        OfficerCommand::Add {
            officer_pub,
            name,
            read_only,
        } => {
            let officer = aml.enable_officer(&officer_key(&officer_pub)?, &name, read_only)?;
            out!("{}", officer_line(&officer));
        }
        OfficerCommand::Disable { key } => match aml.disable_officer(&officer_key(&key)?)? {
            Some(officer) => out!("{}", officer_line(&officer)),
            None => {
                eprintln!("talerbox: no AML officer {key}");
                return Ok(ExitCode::FAILURE);
            }
        },
        OfficerCommand::List => {
            for officer in aml.list_officers()? {
                out!("{}", officer_line(&officer));
            }
        }
        OfficerCommand::New { name } => {
            let created = aml.new_officer(&name)?;
            out!("{}", created.officer.officer_pub);
            out!("{}", created.private_key.to_base32_secret());
        }
        OfficerCommand::SignQuery { .. } => {}
    }
    Ok(ExitCode::SUCCESS)
}

/// A refusal as the decision commands print it: `error <code> <NAME>: <detail>`.
fn refused(error: &talerbox::domain::primitives::TalerError) -> ExitCode {
    eprintln!(
        "error {} {}: {}",
        error.code.number(),
        error.code.short_name(),
        error.detail.as_deref().unwrap_or(&error.hint)
    );
    ExitCode::FAILURE
}

fn decide(config: Config, args: DecideArgs) -> anyhow::Result<ExitCode> {
    // Standard error carries the refusal alone.
    let (app, exchange) = cli::kyc::open_with_exchange_url(config, false)?;
    let fallback = app.urls(app.config.server.listen).exchange;
    let kyc = app.kyc_trigger_service(exchange.as_deref().unwrap_or(&fallback));
    let request = talerbox::app::DecideRequest {
        account: args.account,
        officer_key: args.officer_key,
        justification: args.justification,
        rules: args.rules,
        expiration: args.expiration,
        successor: args.successor,
        properties: args.properties,
        measures: args.measures,
        investigate: args.investigate,
        events: args.events,
        decision_time: args.decision_time,
        attributes: args.attributes,
        attributes_expiration: args.attributes_expiration,
    };
    match app.decide(&kyc, &request, args.print_request)? {
        Ok(talerbox::app::DecideOutput::Request(text)) => out!("{text}"),
        Ok(talerbox::app::DecideOutput::Replayed) => out!("replayed: nothing changed"),
        Ok(talerbox::app::DecideOutput::Applied {
            outcome_serial,
            opened,
        }) => {
            out!("{outcome_serial}");
            if let Some((token, url)) = opened {
                out!("{token}");
                out!("{url}");
            }
        }
        Err(error) => return Ok(refused(&error)),
    }
    Ok(ExitCode::SUCCESS)
}

fn aml_accounts(
    config: Config,
    investigation: Option<String>,
    limit: String,
) -> anyhow::Result<ExitCode> {
    let app = App::open(config)?;
    let mut query = vec![("limit".to_owned(), limit)];
    query.extend(investigation.map(|v| ("investigation".to_owned(), v)));
    let accounts = app
        .aml
        .account_list(&query)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let flag = |set: bool, name: &'static str| if set { name } else { "-" };
    for account in accounts.unwrap_or_default() {
        out!(
            "{} {} {} {} {}",
            account.h_payto,
            flag(account.open, "rules"),
            flag(account.to_investigate, "investigate"),
            flag(account.high_risk, "high-risk"),
            account.full_payto.as_deref().unwrap_or("-")
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn kyc_list(config: Config, limit: String) -> anyhow::Result<ExitCode> {
    let app = App::open(config)?;
    let query = [
        ("limit".to_owned(), limit),
        ("active".to_owned(), "yes".to_owned()),
    ];
    let sets = app
        .aml
        .measure_sets(&query)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    for set in sets.unwrap_or_default() {
        let checks: Vec<&str> = set
            .measures
            .measures
            .iter()
            .map(|m| m.check_name.as_str())
            .collect();
        let started = iso8601_utc(set.start_time);
        out!(
            "{} {} {started} {}",
            set.h_payto,
            set.rowid,
            checks.join(",")
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn kyc_token(config: Config, account: &str) -> anyhow::Result<ExitCode> {
    let (app, exchange) = cli::kyc::open_with_exchange_url(config, true)?;
    let fallback = app.urls(app.config.server.listen).exchange;
    let kyc = app.kyc_trigger_service(exchange.as_deref().unwrap_or(&fallback));
    let (h_payto, _) = App::named_account(account)?;
    let Some(token) = kyc.account_token(&h_payto)? else {
        eprintln!("no KYC account {h_payto}");
        return Ok(ExitCode::FAILURE);
    };
    out!("{token}");
    match exchange {
        Some(exchange) => out!(
            "{}",
            talerbox::domain::kyc::customer_page_url(&exchange, &token.to_string())
        ),
        None => eprintln!(
            "talerbox: the exchange's public URL is unknown: the page is EXCHANGE-BASE-URL/kyc-spa/{token}"
        ),
    }
    Ok(ExitCode::SUCCESS)
}

fn program(config: Config, command: ProgramCommand) -> anyhow::Result<ExitCode> {
    let listen = config.server.listen;
    let app = App::open(config)?;
    let kyc = app.kyc_trigger_service(&app.urls(listen).exchange);
    let name = match &command {
        ProgramCommand::Info { name } | ProgramCommand::Test { name, .. } => {
            name.to_ascii_lowercase()
        }
    };
    let Some(program) = kyc.rules().programs.get(&name) else {
        eprintln!("no [aml-program-{name}] is configured");
        return Ok(ExitCode::from(2));
    };
    match command {
        ProgramCommand::Info { .. } => {
            let inputs: Vec<String> = program
                .required_inputs
                .iter()
                .map(ToString::to_string)
                .collect();
            out!("context: {}", program.required_context.join(" "));
            out!("attributes: {}", program.required_attributes.join(" "));
            out!("inputs: {}", inputs.join(" "));
            Ok(ExitCode::SUCCESS)
        }
        ProgramCommand::Test { input, .. } => {
            let text = match input {
                Some(file) => std::fs::read_to_string(&file)
                    .with_context(|| format!("reading {}", file.display()))?,
                None => {
                    std::io::read_to_string(std::io::stdin()).context("reading standard input")?
                }
            };
            let input: serde_json::Value =
                serde_json::from_str(&text).context("the input is not JSON")?;
            match kyc.test_program(&name, &input) {
                Ok(outcome) => {
                    let value = serde_json::to_value(&outcome)?;
                    out!(
                        "{}",
                        talerbox::domain::primitives::canonical_json::canonical_text_of(&value)
                    );
                    Ok(ExitCode::SUCCESS)
                }
                Err(error) => Ok(refused(&error)),
            }
        }
    }
}

fn serve(config: Config, options: StartOptions) -> anyhow::Result<ExitCode> {
    let listen = config.server.listen;
    let mut lock = app::lock_data_dir(&config.server.data_dir)?;
    // Opened before the runtime starts: the stores block, and PostgreSQL's client runs a
    // runtime of its own.
    let app = App::open_with(config, options)?;
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("binding {listen}"))?;
        let exchange = app.urls(listener.local_addr()?).exchange;
        lock.record_exchange_url(&exchange)
            .context("writing the lock file")?;
        let shutdown = app::shutdown_signal().context("installing signal handlers")?;
        app::serve(&app, listener, shutdown).await?;
        Ok(ExitCode::SUCCESS)
    })
}
