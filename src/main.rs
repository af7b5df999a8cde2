//! The `hotline` command: `serve` (the default), `config check`,
//! `flows check|schema|simulate`, `migrate`, `agents add|list|disable|enable`,
//! `users add|list|disable|enable`, `report monthly`.

use clap::{Parser, Subcommand};
use hotline::auth::Role;
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
    /// Check IVR flows, or print their JSON Schema.
    Flows {
        #[command(subcommand)]
        action: FlowsAction,
    },
    /// Create or update the database schema and exit.
    Migrate {
        /// sqlite://path or postgres://...; defaults to the config's store.database_url.
        #[arg(long, env = "DATABASE_URL")]
        database_url: Option<String>,
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Manage seats kept in the database (next to the config's [[seat]]).
    ///
    /// A running server picks changes up on reload (SIGHUP or
    /// POST /api/v1/admin/reload).
    Agents {
        #[command(subcommand)]
        action: AgentsAction,
    },
    /// Manage users of the HTTP API and their bearer tokens.
    ///
    /// A change applies from the next request on; no reload is needed.
    Users {
        #[command(subcommand)]
        action: UsersAction,
    },
    /// Monthly KPIs, unit assessment and the published report (art. 18-20).
    Report {
        #[command(subcommand)]
        action: ReportAction,
    },
    /// Push the outbox to the region platform (the config's `[push]`)
    /// until SIGTERM, apart from the SIP nodes.
    Push {
        #[command(flatten)]
        store: StoreArgs,
        /// Serve the pusher's figures at http://ADDR/metrics.
        #[arg(long)]
        metrics_listen: Option<SocketAddr>,
    },
}

#[derive(Subcommand, Debug)]
enum ReportAction {
    /// A month's report: the published one if there is one (byte for byte),
    /// else a draft counted from the database now.
    Monthly {
        /// The month, YYYY-MM, in the local time of [orders] utc_offset.
        #[arg(long, value_parser = parse_month)]
        month: hotline::report::month::Month,
        #[arg(long, value_enum, default_value = "json")]
        format: ReportFormat,
        /// Write the report to this file instead of stdout.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Store the report for good; the month must have ended and may be
        /// published once.
        #[arg(long)]
        publish: bool,
        #[command(flatten)]
        store: StoreArgs,
    },
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum ReportFormat {
    Html,
    Json,
    Csv,
}

fn parse_month(s: &str) -> Result<hotline::report::month::Month, String> {
    hotline::report::month::Month::parse(s)
}

/// Where `agents` finds the database: as `migrate` does.
#[derive(clap::Args, Debug)]
struct StoreArgs {
    /// sqlite://path or postgres://...; defaults to the config's store.database_url.
    #[arg(long, env = "DATABASE_URL")]
    database_url: Option<String>,
    #[arg(long)]
    config: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
enum AgentsAction {
    /// Add a seat to the database, or update a stored one.
    Add {
        /// The seat's SIP user, letters and digits, e.g. 2001.
        id: String,
        /// Digest password, 8 characters or more; required for a new seat,
        /// kept when left out on an update.
        #[arg(long, env = "HOTLINE_SEAT_PASSWORD", hide_env_values = true)]
        password: Option<String>,
        /// The agent's name, shown on the board.
        #[arg(long)]
        name: Option<String>,
        /// A skill and its level 1-10, e.g. general=5; repeat for more.
        #[arg(long = "skill", value_name = "SKILL=LEVEL", value_parser = parse_skill)]
        skills: Vec<(String, u8)>,
        /// A language the agent speaks, e.g. cmn; repeat for more (default cmn).
        #[arg(long = "language", value_name = "CODE")]
        languages: Vec<String>,
        /// Store the seat disabled (it cannot register); `agents enable` undoes it.
        #[arg(long)]
        disabled: bool,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// List config and stored seats.
    List {
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Disable a stored seat: it can no longer register or take calls.
    Disable {
        id: String,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Enable a stored seat again.
    Enable {
        id: String,
        #[command(flatten)]
        store: StoreArgs,
    },
}

#[derive(Subcommand, Debug)]
enum UsersAction {
    /// Add a user and print its new API token, once, on stdout.
    Add {
        /// The user's login name, e.g. wang.fang: letters, digits, '.', '_',
        /// '-' or '@'.
        #[arg(long)]
        name: String,
        /// agent, dispatcher, unit_handler, supervisor or admin.
        #[arg(long, value_parser = parse_role)]
        role: Role,
        /// The unit a unit_handler works for (required for that role only).
        #[arg(long)]
        unit: Option<String>,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// List users: name, role, unit, enabled (never tokens).
    List {
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Disable a user: its token is refused from the next request on.
    Disable {
        name: String,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Enable a user again, with the token it had.
    Enable {
        name: String,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Give a user a new API token (printed once); the old one stops
    /// working. For a lost or leaked token.
    Token {
        name: String,
        #[command(flatten)]
        store: StoreArgs,
    },
}

fn parse_role(s: &str) -> Result<Role, String> {
    Role::parse(s).ok_or_else(|| {
        let names: Vec<&str> = Role::ALL.iter().map(|r| r.as_str()).collect();
        format!("unknown role {s:?}; the roles are {}", names.join(", "))
    })
}

fn parse_skill(s: &str) -> Result<(String, u8), String> {
    let (name, level) = s
        .split_once('=')
        .ok_or_else(|| format!("{s:?}: expected SKILL=LEVEL, e.g. general=5"))?;
    let level = level
        .trim()
        .parse::<u8>()
        .ok()
        .filter(|l| (1..=10).contains(l))
        .ok_or_else(|| format!("{s:?}: the level must be a whole number from 1 to 10"))?;
    Ok((name.trim().to_owned(), level))
}

#[derive(Subcommand, Debug)]
enum ConfigAction {
    /// Parse and validate; print the first error as `file: key: message`.
    Check { path: Option<PathBuf> },
}

#[derive(Subcommand, Debug)]
enum FlowsAction {
    /// Check a flows folder (default: the config's ivr.flows_dir) or one flow
    /// file; print each problem as `file:line:col: message` and exit 1, or a
    /// one-line summary.
    Check {
        /// A flows folder or a single `.yaml` flow (its folder's prompts and
        /// other flows are used; only its own problems are reported).
        path: Option<PathBuf>,
        /// Configuration file with the queues and trunks flows may name;
        /// without it, sip-config/hotline.toml if present, else the defaults.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Print the JSON Schema of the flow format (ivr-flows/flow.schema.json).
    Schema,
    /// Run a flow with scripted keys on a virtual clock and print each step.
    Simulate {
        /// The flow to run, e.g. `main`.
        flow: String,
        /// Keys, comma-separated: `1,2`, `123#`; `T` lets a wait time out.
        #[arg(long, default_value = "")]
        digits: String,
        /// Local time of the call, e.g. 2026-10-01T20:00+08:00 (default: now).
        #[arg(long)]
        at: Option<String>,
        /// The caller's number.
        #[arg(long, default_value = "13800000000")]
        caller: String,
        /// Answer "yes" to repeat-caller checks (an open order in the window).
        #[arg(long)]
        open_order: bool,
        /// Answer "yes" to blocked-number checks.
        #[arg(long)]
        blocked: bool,
        /// Status code every order lookup finds (default: not found).
        #[arg(long)]
        order_status: Option<String>,
        /// Flows folder (default: the config's ivr.flows_dir).
        #[arg(long)]
        flows: Option<PathBuf>,
        #[arg(long)]
        config: Option<PathBuf>,
    },
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
        // The WebRTC stack logs every connection's steps at info, and a
        // warning for each TLS extension Chrome offers that DTLS ignores.
        .unwrap_or_else(|_| {
            EnvFilter::new(
                "info,rsipstack=warn,sqlx=warn,webrtc=warn,webrtc_ice=error,dtls=error,interceptor=warn",
            )
        });
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
            Some(Command::Flows { action }) => flows(action),
            Some(Command::Migrate {
                database_url,
                config,
            }) => migrate(database_url, config).await,
            Some(Command::Agents { action }) => agents(action).await,
            Some(Command::Users { action }) => users(action).await,
            Some(Command::Report { action }) => report(action).await,
            Some(Command::Push {
                store,
                metrics_listen,
            }) => push(store, metrics_listen).await,
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
    let ctx = hotline::ivr::load::CheckContext::from_config(&config);
    if let Err(problems) = hotline::ivr::load::load_dir(&config.ivr.flows_dir, &ctx) {
        for p in &problems {
            println!("{p}");
        }
        anyhow::bail!("{} problem(s) in the flows", problems.len());
    }
    println!("{}: ok", path.display());
    Ok(())
}

fn flows(action: FlowsAction) -> anyhow::Result<()> {
    match action {
        FlowsAction::Check { path, config } => flows_check(path, config),
        FlowsAction::Schema => {
            print!("{}", hotline::ivr::model::Flow::json_schema());
            Ok(())
        }
        FlowsAction::Simulate {
            flow,
            digits,
            at,
            caller,
            open_order,
            blocked,
            order_status,
            flows,
            config,
        } => {
            use hotline::ivr::simulate::{Answers, parse_at, parse_keys, run_cli};
            let mut config = server::load_config(
                default_config_path(config).as_deref(),
                &Overrides::default(),
            )?;
            if let Some(dir) = flows {
                config.ivr.flows_dir = dir;
            }
            let keys = parse_keys(&digits).map_err(|e| anyhow::anyhow!("--digits: {e}"))?;
            let at = at
                .map(|t| parse_at(&t))
                .transpose()
                .map_err(|e| anyhow::anyhow!("--at: {e}"))?;
            let answers = Answers {
                open_order,
                blocked,
                order_status,
            };
            let lines = run_cli(&config, &flow, &keys, at, &caller, &answers)
                .map_err(|e| anyhow::anyhow!(e))?;
            for line in lines {
                println!("{line}");
            }
            Ok(())
        }
    }
}

/// `flows check`: diagnostics on stdout, a count on stderr and exit 1; or a
/// summary line.
fn flows_check(path: Option<PathBuf>, config: Option<PathBuf>) -> anyhow::Result<()> {
    use hotline::ivr::load::{CheckContext, check_dir};
    let config = server::load_config(
        default_config_path(config).as_deref(),
        &Overrides::default(),
    )?;
    let ctx = CheckContext::from_config(&config);
    // The configured folder gets exactly the server's check, including the
    // flows the config names; another folder, the checks of its own files.
    let configured = path.is_none();
    let path = path.unwrap_or_else(|| config.ivr.flows_dir.clone());
    // One file: check its folder (for subflows and prompts), report its own.
    let single = path.is_file();
    let dir = match path.parent() {
        Some(parent) if single && !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ if single => PathBuf::from("."),
        _ => path.clone(),
    };
    if single && path.extension().and_then(|e| e.to_str()) != Some("yaml") {
        anyhow::bail!("{}: not a flow file (flows end in .yaml)", path.display());
    }
    let (set, mut diagnostics) = check_dir(&dir, &ctx);
    if configured {
        let missing = hotline::ivr::load::missing_required(&dir, &set, &diagnostics, &ctx);
        diagnostics.extend(missing);
    }
    if single {
        let own = dir.join(path.file_name().unwrap_or_default());
        diagnostics.retain(|d| d.file == own);
        for d in &mut diagnostics {
            d.file = path.clone();
        }
    }
    if !diagnostics.is_empty() {
        for d in &diagnostics {
            println!("{d}");
        }
        let n = diagnostics.len();
        anyhow::bail!(
            "{}: {n} problem{}",
            path.display(),
            if n == 1 { "" } else { "s" }
        );
    }
    let (flows, nodes) = if single {
        let nodes = path
            .file_stem()
            .and_then(|s| set.flow(&s.to_string_lossy()))
            .map_or(0, |f| f.nodes.len());
        (1, nodes)
    } else {
        (set.flows.len(), set.node_count())
    };
    let plural = |n: usize, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
    println!(
        "{}: {}, {}, {} ({}): ok",
        path.display(),
        plural(flows, "flow"),
        plural(nodes, "node"),
        plural(set.prompts.len(), "prompt"),
        set.prompts.languages().join(", ")
    );
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

/// Runs the outbox pusher alone until SIGTERM or SIGINT.
async fn push(args: StoreArgs, metrics_listen: Option<SocketAddr>) -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let (config, store) = open_store(args).await?;
    let push = config
        .push
        .ok_or_else(|| anyhow::anyhow!("push: the config has no [push] section"))?;
    let stats = hotline::push::stats_for(&push);
    let stop = tokio_util::sync::CancellationToken::new();
    let mut tasks = hotline::push::spawn(store.clone(), push, stats.clone(), stop.clone())?;
    if let Some(addr) = metrics_listen {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| anyhow::anyhow!("--metrics-listen {addr}: {e}"))?;
        let bound = listener.local_addr()?;
        let app = axum::Router::new().route(
            "/metrics",
            axum::routing::get(move || {
                let stats = stats.clone();
                async move { hotline::push::render(&stats) }
            }),
        );
        let done = stop.clone();
        tasks.push(tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move { done.cancelled().await })
                .await
                .ok();
        }));
        tracing::info!(metrics = %bound, "push metrics served");
    }
    tracing::info!("hotline push ready");
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    stop.cancel();
    for task in tasks {
        // The pruner sleeps in a select on `stop` too: all end promptly.
        task.await.ok();
    }
    store.close().await;
    Ok(())
}

/// The config and the store `agents` works on.
async fn open_store(
    args: StoreArgs,
) -> anyhow::Result<(hotline::config::Config, hotline::store::Store)> {
    let config = server::load_config(
        default_config_path(args.config).as_deref(),
        &Overrides::default(),
    )?;
    let url = args
        .database_url
        .unwrap_or_else(|| config.store.database_url.clone());
    let store = hotline::store::Store::connect(&url).await?;
    Ok((config, store))
}

async fn report(action: ReportAction) -> anyhow::Result<()> {
    use hotline::report::{generate, render_csv, render_html};
    let ReportAction::Monthly {
        month,
        format,
        out,
        publish,
        store,
    } = action;
    let (config, store) = open_store(store).await?;
    let units = hotline::orders::units::Units::load(&config.orders.units)?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default();
    let report = if publish {
        generate::publish(&store, &config, &units, month, now).await?
    } else {
        generate::monthly(&store, &config, &units, month, now).await?
    };
    let text = match format {
        ReportFormat::Json => report.json(),
        ReportFormat::Html => render_html::render(report.model()),
        ReportFormat::Csv => render_csv::render(report.model()),
    };
    match out {
        Some(path) => std::fs::write(&path, text)
            .map_err(|e| anyhow::anyhow!("--out {}: {e}", path.display()))?,
        None => print!("{text}"),
    }
    Ok(())
}

async fn agents(action: AgentsAction) -> anyhow::Result<()> {
    use hotline::store::seats::{SeatInput, merge, validate_id};
    match action {
        AgentsAction::Add {
            id,
            password,
            name,
            skills,
            languages,
            disabled,
            store,
        } => {
            validate_id(&id).map_err(seat_error)?;
            let mut skill_map = std::collections::BTreeMap::new();
            for (skill, level) in skills {
                if skill_map.insert(skill.clone(), level).is_some() {
                    anyhow::bail!("--skill: {skill:?} is given twice");
                }
            }
            let (config, store) = open_store(store).await?;
            let result = async {
                refuse_config_seat(&config, &id)?;
                let old = store.stored_seat(&id).await.map_err(seat_error)?;
                let Some(password) = password.or_else(|| old.as_ref().map(|o| o.password.clone()))
                else {
                    anyhow::bail!("--password: required for a new seat");
                };
                // Options left out on an update keep the stored values.
                let input = SeatInput {
                    id: id.clone(),
                    password,
                    name: name
                        .or_else(|| old.as_ref().map(|o| o.name.clone()))
                        .unwrap_or_default(),
                    enabled: !disabled && old.as_ref().is_none_or(|o| o.enabled),
                    skills: match (&old, skill_map.is_empty()) {
                        (Some(o), true) => o.skills.clone(),
                        _ => skill_map,
                    },
                    languages: match (&old, languages.is_empty()) {
                        (Some(o), true) => o.languages.clone(),
                        // The same default as a [[seat]] without `languages`.
                        (None, true) => vec!["cmn".to_string()],
                        _ => languages,
                    },
                };
                store.upsert_seat(&input).await.map_err(seat_error)
            }
            .await;
            store.close().await;
            let (seat, created) = result?;
            println!(
                "seat {} {} ({}); a running server picks it up on reload",
                seat.id,
                if created { "added" } else { "updated" },
                if seat.enabled { "enabled" } else { "disabled" },
            );
            Ok(())
        }
        AgentsAction::List { store } => {
            let (config, store) = open_store(store).await?;
            let stored = store.stored_seats().await;
            store.close().await;
            let merged = merge(&config.seats, &stored.map_err(seat_error)?);
            for id in &merged.shadowed {
                eprintln!(
                    "hotline: stored seat {id:?} is ignored: [[seat]] in the config file has the same id"
                );
            }
            let header =
                ["ID", "NAME", "ENABLED", "SOURCE", "SKILLS", "LANGUAGES"].map(String::from);
            let rows: Vec<[String; 6]> = merged
                .seats
                .iter()
                .map(|(s, source)| {
                    [
                        s.id.clone(),
                        s.name.clone(),
                        if s.enabled { "yes" } else { "no" }.to_string(),
                        source.as_str().to_string(),
                        s.skills
                            .iter()
                            .map(|(k, v)| format!("{k}={v}"))
                            .collect::<Vec<_>>()
                            .join(","),
                        s.languages.join(","),
                    ]
                })
                .collect();
            print_table(&header, &rows);
            Ok(())
        }
        AgentsAction::Disable { id, store } => set_enabled(id, store, false).await,
        AgentsAction::Enable { id, store } => set_enabled(id, store, true).await,
    }
}

/// Why a stored seat could not be saved, in the CLI's terms: the option is
/// named, not the API field.
fn seat_error(e: hotline::store::seats::SeatError) -> anyhow::Error {
    use hotline::store::seats::SeatError;
    match e {
        SeatError::Invalid { field, message } => {
            let option = match field {
                "password" => "--password",
                "name" => "--name",
                "skills" => "--skill",
                "languages" => "--language",
                other => other,
            };
            anyhow::anyhow!("{option}: {message}")
        }
        SeatError::NotFound(id) => {
            anyhow::anyhow!("no stored seat {id:?} (see `hotline agents list`)")
        }
        other => anyhow::anyhow!(other),
    }
}

/// Refuses an id that `[[seat]]` already has: the stored seat would never
/// be used.
fn refuse_config_seat(config: &hotline::config::Config, id: &str) -> anyhow::Result<()> {
    if config.seats.iter().any(|s| s.id == id) {
        anyhow::bail!(
            "seat {id:?} is defined in [[seat]] of the config file, which wins over the store; change it there"
        );
    }
    Ok(())
}

async fn set_enabled(id: String, args: StoreArgs, enabled: bool) -> anyhow::Result<()> {
    hotline::store::seats::validate_id(&id).map_err(seat_error)?;
    let (config, store) = open_store(args).await?;
    let result = match refuse_config_seat(&config, &id) {
        Ok(()) => store
            .set_seat_enabled(&id, enabled)
            .await
            .map_err(seat_error),
        Err(e) => Err(e),
    };
    store.close().await;
    let seat = result?;
    println!(
        "seat {} {}; a running server picks it up on reload",
        seat.id,
        if seat.enabled { "enabled" } else { "disabled" }
    );
    Ok(())
}

async fn users(action: UsersAction) -> anyhow::Result<()> {
    use hotline::auth::token::{generate_token, hash_token};
    match action {
        UsersAction::Add {
            name,
            role,
            unit,
            store,
        } => {
            // Refuse bad input before touching (or creating) the database.
            hotline::store::users::validate_user(&name, role, unit.as_deref())
                .map_err(user_error)?;
            let (config, store) = open_store(store).await?;
            if let Some(unit) = &unit {
                // A unit handler's unit must be one orders can be sent to.
                let units = hotline::orders::units::Units::load(&config.orders.units)?;
                if units.unit(unit).is_none() {
                    store.close().await;
                    anyhow::bail!(
                        "unit: {unit:?} is not in {} (the units orders are dispatched to)",
                        config.orders.units.display()
                    );
                }
            }
            let token = generate_token();
            let result = store
                .add_user(
                    &name,
                    role,
                    unit.as_deref(),
                    &hash_token(&token),
                    hotline::call::record::now_ms(),
                )
                .await;
            store.close().await;
            let user = result.map_err(user_error)?;
            // Only the token on stdout, so `TOKEN=$(hotline users add ...)`
            // works; the explanation goes to stderr.
            println!("{token}");
            eprintln!(
                "hotline: user {} added as {}{}. The line above is its API token, shown this once: \
                 send it as `Authorization: Bearer <token>`. Only a hash of it is stored.",
                user.name,
                user.role.as_str(),
                user.unit
                    .as_deref()
                    .map(|u| format!(" of {u}"))
                    .unwrap_or_default(),
            );
            Ok(())
        }
        UsersAction::List { store } => {
            let (_, store) = open_store(store).await?;
            let result = store.list_users().await;
            store.close().await;
            let users = result.map_err(user_error)?;
            if users.is_empty() {
                eprintln!("hotline: no API users yet; add one with `hotline users add`");
            }
            let header = ["NAME", "ROLE", "UNIT", "ENABLED"].map(String::from);
            let rows: Vec<[String; 4]> = users
                .iter()
                .map(|u| {
                    [
                        u.name.clone(),
                        u.role.as_str().to_string(),
                        u.unit.clone().unwrap_or_else(|| "-".into()),
                        if u.enabled() { "yes" } else { "no" }.to_string(),
                    ]
                })
                .collect();
            print_table(&header, &rows);
            Ok(())
        }
        UsersAction::Disable { name, store } => set_user_enabled(name, store, false).await,
        UsersAction::Enable { name, store } => set_user_enabled(name, store, true).await,
        UsersAction::Token { name, store } => {
            let (_, store) = open_store(store).await?;
            let token = generate_token();
            let result = store.replace_token(&name, &hash_token(&token)).await;
            store.close().await;
            let user = result.map_err(user_error)?;
            println!("{token}");
            eprintln!(
                "hotline: user {} has a new API token (the line above, shown this once); \
                 the old one no longer works.",
                user.name
            );
            Ok(())
        }
    }
}

async fn set_user_enabled(name: String, args: StoreArgs, enabled: bool) -> anyhow::Result<()> {
    let (_, store) = open_store(args).await?;
    let result = if enabled {
        store.enable_user(&name).await
    } else {
        store.disable_user(&name).await
    };
    store.close().await;
    let user = result.map_err(user_error)?;
    println!(
        "user {} {}",
        user.name,
        if user.enabled() {
            "enabled"
        } else {
            "disabled"
        }
    );
    Ok(())
}

/// Why a user could not be saved, in the CLI's terms.
fn user_error(e: hotline::store::users::UserError) -> anyhow::Error {
    use hotline::store::users::UserError;
    match e {
        UserError::Invalid { field, message } => {
            let option = match field {
                "name" => "--name",
                "unit" => "--unit",
                other => other,
            };
            anyhow::anyhow!("{option}: {message}")
        }
        UserError::Duplicate(name) => {
            anyhow::anyhow!("a user named {name:?} already exists (see `hotline users list`)")
        }
        UserError::NotFound(name) => {
            anyhow::anyhow!("no user {name:?} (see `hotline users list`)")
        }
        other => anyhow::anyhow!(other),
    }
}

/// Prints rows under a header, columns padded to their widest cell.
fn print_table<const N: usize>(header: &[String; N], rows: &[[String; N]]) {
    let mut widths = header.each_ref().map(|h| columns(h));
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(columns(cell));
        }
    }
    let line = |cells: &[String; N]| {
        let padded: Vec<String> = cells
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c}{}", " ".repeat(w - columns(c))))
            .collect();
        println!("{}", padded.join("  ").trim_end());
    };
    line(header);
    for row in rows {
        line(row);
    }
}

/// Terminal columns a cell takes: Chinese characters (unit and agent names)
/// take two, so the table stays aligned in a terminal.
fn columns(text: &str) -> usize {
    text.chars()
        .map(|c| {
            let wide = matches!(
                u32::from(c),
                0x1100..=0x115F
                    | 0x2E80..=0x303E
                    | 0x3041..=0xA4CF
                    | 0xAC00..=0xD7A3
                    | 0xF900..=0xFAFF
                    | 0xFE30..=0xFE4F
                    | 0xFF00..=0xFF60
                    | 0xFFE0..=0xFFE6
                    | 0x20000..=0x3FFFD
            );
            if wide { 2 } else { 1 }
        })
        .sum()
}
