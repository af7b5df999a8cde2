//! The `hotline` command: `serve` (the default), `config check`, `migrate`.

use clap::{Parser, Subcommand};
use hotline::server::{self, Overrides};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

#[derive(Parser, Debug)]
#[command(
    name = "hotline",
    version,
    about = "12345 government service hotline: SIP/RTP contact centre"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Answer calls (the default when no command is given).
    Serve(ServeArgs),
    /// Check a configuration file and exit non-zero if it is invalid.
    Config {
        #[command(subcommand)]
        action: ConfigAction,
    },
    /// Create or update the database schema and exit.
    Migrate {
        /// sqlite://path or postgres://...; defaults to the config's store.database_url.
        #[arg(long, env = "DATABASE_URL")]
        database_url: Option<String>,
        #[arg(long)]
        config: Option<PathBuf>,
    },
}

#[derive(Subcommand, Debug)]
enum ConfigAction {
    /// Parse and validate; print the first error as `file: key: message`.
    Check { path: Option<PathBuf> },
}

#[derive(clap::Args, Debug, Clone, Default)]
struct ServeArgs {
    /// Configuration file; without it, sip-config/hotline.toml if present,
    /// else the embedded defaults.
    #[arg(long)]
    config: Option<PathBuf>,
    /// SIP UDP+TCP listen address (overrides sip.listen).
    #[arg(long)]
    sip_listen: Option<SocketAddr>,
    /// HTTP listen address (overrides http.listen).
    #[arg(long)]
    http_listen: Option<SocketAddr>,
    /// RTP port range MIN-MAX (overrides media.rtp_port_min/max).
    #[arg(long, value_parser = parse_ports)]
    rtp_ports: Option<(u16, u16)>,
    /// Address written into SDP (overrides media.advertise_ip).
    #[arg(long)]
    advertise_ip: Option<String>,
}

fn parse_ports(s: &str) -> Result<(u16, u16), String> {
    let (a, b) = s
        .split_once('-')
        .ok_or("expected MIN-MAX, e.g. 20000-29999")?;
    let a = a.trim().parse().map_err(|_| format!("bad port {a:?}"))?;
    let b = b.trim().parse().map_err(|_| format!("bad port {b:?}"))?;
    Ok((a, b))
}

fn default_config_path(explicit: Option<PathBuf>) -> Option<PathBuf> {
    explicit.or_else(|| {
        let shipped = PathBuf::from("sip-config/hotline.toml");
        shipped.is_file().then_some(shipped)
    })
}

fn init_tracing() {
    // rsipstack logs every datagram at INFO; keep it at warn unless asked.
    let filter = EnvFilter::try_from_env("HOTLINE_LOG")
        .or_else(|_| EnvFilter::try_from_default_env())
        .unwrap_or_else(|_| EnvFilter::new("info,rsipstack=warn,sqlx=warn"));
    tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
                .with_filter(filter),
        )
        .with(
            hotline::sip::listener::MalformedCounter
                .with_filter(hotline::sip::listener::MalformedFilter),
        )
        .init();
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("hotline: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            None => serve(cli.serve).await,
            Some(Command::Serve(args)) => serve(args).await,
            Some(Command::Config {
                action: ConfigAction::Check { path },
            }) => check(path),
            Some(Command::Migrate {
                database_url,
                config,
            }) => migrate(database_url, config).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hotline: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let overrides = Overrides {
        sip_listen: args.sip_listen,
        http_listen: args.http_listen,
        rtp_ports: args.rtp_ports,
        database_url: None,
        advertise_ip: args.advertise_ip,
    };
    server::serve(default_config_path(args.config), overrides).await
}

fn check(path: Option<PathBuf>) -> anyhow::Result<()> {
    let path = path.unwrap_or_else(|| PathBuf::from("sip-config/hotline.toml"));
    let config = hotline::config::Config::load(&path)?;
    hotline::media::prompt::Prompt::load(&config.prompt_path())?;
    println!("{}: ok", path.display());
    Ok(())
}

async fn migrate(database_url: Option<String>, config: Option<PathBuf>) -> anyhow::Result<()> {
    let config = server::load_config(
        default_config_path(config).as_deref(),
        &Overrides::default(),
    )?;
    let url = database_url.unwrap_or(config.store.database_url);
    let store = hotline::store::Store::connect(&url).await?;
    store.close().await;
    println!("database schema is up to date");
    Ok(())
}
