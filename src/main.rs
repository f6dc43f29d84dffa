//! The `talerbox` command line: `serve` and the admin commands.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};

use talerbox::app::{self, App, StartOptions};
use talerbox::config::{Config, Overrides};
use talerbox::domain::aml::{Officer, iso8601_utc};
use talerbox::domain::primitives::{
    EddsaPrivateKey, EddsaPublicKey, base32, purpose, sign_purpose,
};

#[derive(Parser)]
#[command(
    name = "talerbox",
    version,
    about = "GNU Taler compliance services on embedded SQLite"
)]
struct Cli {
    /// Configuration file (GNU Taler INI format) on top of the embedded defaults.
    #[arg(short = 'c', long = "config", global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Data directory (database, key files); overrides [talerbox] DATA_DIR.
    #[arg(long, global = true, value_name = "DIR")]
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
    /// The exchange's KYC process (like taler-exchange-kyc-trigger).
    #[command(subcommand)]
    Kyc(KycCommand),
}

#[derive(Subcommand)]
enum KycCommand {
    /// Open KYC measures for an account; prints its access token, then its kyc-info URL.
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
    /// List the messages (with their PINs) that the outbox sender has written.
    Outbox,
}

#[derive(Subcommand)]
enum ClientCommand {
    /// Register a client; prints its id (the client_id) alone on the first line.
    Add {
        /// The client secret (any non-empty string; `secret-token:…` recommended).
        #[arg(long)]
        secret: String,
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
    /// Set the password of an account (also `admin`).
    Passwd { username: String, password: String },
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
    /// Write a consistent copy of the database to FILE (safe while the server runs).
    Backup { file: PathBuf },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(&cli.log);
    match run(cli) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("talerbox: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(level: &str) {
    let filter = talerbox::adapters::logging::filter(level);
    // A closed standard error must not bring the server down: by default the subscriber
    // reports its own write errors with eprintln!, which panics when stderr is gone.
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .log_internal_errors(false)
        .init();
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
    for warning in &config.warnings {
        tracing::warn!("{warning}");
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
        Command::Config(ConfigCommand::Get { section, option }) => {
            match config.ini.get_string(&section, &option)? {
                Some(value) => {
                    println!("{value}");
                    Ok(ExitCode::SUCCESS)
                }
                None => {
                    eprintln!("talerbox: option [{section}] {option} is not set");
                    Ok(ExitCode::FAILURE)
                }
            }
        }
        Command::Config(ConfigCommand::Dump) => {
            print!("{}", config.ini.dump());
            Ok(ExitCode::SUCCESS)
        }
        Command::Db(DbCommand::Check) => {
            let problems = talerbox::adapters::sqlite::check(&app::database_path(&config))?;
            if problems.is_empty() {
                println!("ok");
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
        }) => kyc_trigger(config, &payto, &measures, all),
        Command::Challenger(args) => challenger(config, args),
        Command::Aml(AmlCommand::Officer(command)) => officer(config, command),
        Command::Exchange(ExchangeCommand::MasterPub) => {
            let app = App::open(config)?;
            println!("{}", app.master_key.public);
            Ok(ExitCode::SUCCESS)
        }
        Command::Db(DbCommand::Backup { file }) => {
            talerbox::adapters::sqlite::backup(&app::database_path(&config), &file)?;
            println!("{}", file.display());
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn bank(config: Config, command: BankCommand) -> anyhow::Result<ExitCode> {
    let app = App::open(config)?;
    match command {
        BankCommand::Passwd { username, password } => {
            app.accounts.set_password(&username, &password)?;
            println!("password of {username} changed");
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
            println!("{}", created.internal_payto_uri);
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
            secret,
            redirect_uri,
        }) => {
            let client = service.add_client(&secret, &redirect_uri)?;
            println!("{}", client.id);
        }
        ChallengerCommand::Client(ClientCommand::List) => {
            for client in service.clients()? {
                println!(
                    "{}\t{}\t{}",
                    client.id, client.redirect_uri, client.validation_counter
                );
            }
        }
        ChallengerCommand::Client(ClientCommand::Delete { id }) => {
            if !service.delete_client(id)? {
                eprintln!("talerbox: no client {id} in [{}]", instance.config.section);
                return Ok(ExitCode::FAILURE);
            }
            println!("client {id} deleted");
        }
        ChallengerCommand::Outbox => {
            let messages = talerbox::adapters::delivery::OutboxSender::list(&instance.outbox)
                .with_context(|| format!("reading {}", instance.outbox.display()))?;
            for message in messages {
                let seconds = message.time.as_seconds().unwrap_or_default();
                let time = std::time::UNIX_EPOCH + std::time::Duration::from_secs(seconds);
                let cut = if message.truncated { "…" } else { "" };
                println!("== {}", message.file.display());
                println!("Date: {}", httpdate::fmt_http_date(time));
                println!("To: {}{cut}", message.address);
                println!();
                println!("{}", message.message.trim_end());
                println!();
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
        println!("{}", sign_purpose(&key, purpose::AML_QUERY, &[]));
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
            println!("{}", officer_line(&officer));
        }
        OfficerCommand::Disable { key } => match aml.disable_officer(&officer_key(&key)?)? {
            Some(officer) => println!("{}", officer_line(&officer)),
            None => {
                eprintln!("talerbox: no AML officer {key}");
                return Ok(ExitCode::FAILURE);
            }
        },
        OfficerCommand::List => {
            for officer in aml.list_officers()? {
                println!("{}", officer_line(&officer));
            }
        }
        OfficerCommand::New { name } => {
            let created = aml.new_officer(&name)?;
            println!("{}", created.officer.officer_pub);
            println!("{}", created.private_key.to_base32_secret());
        }
        OfficerCommand::SignQuery { .. } => {}
    }
    Ok(ExitCode::SUCCESS)
}

fn kyc_trigger(
    config: Config,
    payto: &str,
    measures: &[String],
    all: bool,
) -> anyhow::Result<ExitCode> {
    let listen = config.server.listen;
    let app = App::open(config)?;
    let urls = app.urls(listen);
    let kyc = app.kyc_trigger_service(&urls.exchange);
    let spec = format!("{}{}", if all { "+ " } else { "" }, measures.join(" "));
    let triggered = kyc.trigger(payto, &talerbox::domain::kyc::MeasureSpec::parse(&spec))?;
    println!("{}", triggered.access_token);
    println!("{}kyc-info/{}", urls.exchange, triggered.access_token);
    Ok(ExitCode::SUCCESS)
}

fn serve(config: Config, options: StartOptions) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(async move {
        let listen = config.server.listen;
        let app = App::open_with(config, options)?;
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("binding {listen}"))?;
        let shutdown = app::shutdown_signal().context("installing signal handlers")?;
        app::serve(&app, listener, shutdown).await?;
        Ok(ExitCode::SUCCESS)
    })
}
