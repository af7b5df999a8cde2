//! API users from the command line: `hotline users add|list|disable|enable`
//! on a temp SQLite database and on a private PostgreSQL database. The tokens
//! the CLI prints are checked against the store the way the API will check
//! them (hash, look up), and the database is checked to hold no token.
//!
//! The PostgreSQL test uses the machine's server (`HOTLINE_TEST_POSTGRES`,
//! default `postgres://postgres@127.0.0.1:5432/test`), like
//! `tests/store_postgres.rs`.

mod common;

use common::temp_db::TempDb;
use common::*;
use hotline::auth::token::hash_token;
use hotline::auth::{Principal, Role};
use hotline::store::Store;
use std::path::Path;
use std::process::Command;

/// Runs `hotline <args> --config <config>` with extra environment;
/// (success, stdout, stderr).
fn cli_env(config: &Path, args: &[&str], env: &[(&str, &str)]) -> (bool, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_hotline"));
    cmd.args(args)
        .arg("--config")
        .arg(config)
        .current_dir(config.parent().unwrap())
        .env("HOTLINE_LOG", "warn")
        .env_remove("DATABASE_URL");
    for (key, value) in env {
        cmd.env(key, value);
    }
    let out = cmd.output().expect("run hotline");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

fn cli(config: &Path, args: &[&str]) -> (bool, String, String) {
    cli_env(config, args, &[])
}

/// Adds a user and returns the token it printed, checking that stdout holds
/// the token alone.
fn add(config: &Path, env: &[(&str, &str)], name: &str, role: &str, unit: Option<&str>) -> String {
    let mut args = vec!["users", "add", "--name", name, "--role", role];
    if let Some(unit) = unit {
        args.extend(["--unit", unit]);
    }
    let (ok, out, err) = cli_env(config, &args, env);
    assert!(ok, "{args:?}: {out}{err}");
    let token = out.trim_end_matches('\n');
    assert!(
        !token.contains('\n') && token.len() == 67 && token.starts_with("hl_"),
        "stdout must be the token alone: {out:?}"
    );
    assert!(
        token[3..]
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
        "{token}"
    );
    assert!(err.contains("shown this once"), "{err}");
    assert!(!err.contains(token), "the note repeats the token: {err}");
    token.to_owned()
}

/// `users list` as rows of columns (header checked, then dropped).
fn list(config: &Path, env: &[(&str, &str)]) -> Vec<Vec<String>> {
    let (ok, out, err) = cli_env(config, &["users", "list"], env);
    assert!(ok, "{out}{err}");
    let mut lines = out.lines();
    let header: Vec<&str> = lines
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    assert_eq!(header, ["NAME", "ROLE", "UNIT", "ENABLED"], "{out}");
    // A listing never shows a token or its hash.
    for word in out.split_whitespace() {
        assert!(
            !word.starts_with("hl_") && word.len() < 64,
            "list leaks a secret: {out}"
        );
    }
    lines
        .map(|l| l.split_whitespace().map(String::from).collect())
        .collect()
}

/// Who the API would take a request with this token for.
fn principal(rt: &tokio::runtime::Runtime, url: &str, token: &str) -> Option<Principal> {
    rt.block_on(async {
        let store = Store::connect(url).await.expect("store");
        let who = store.user_by_token_hash(&hash_token(token)).await;
        store.close().await;
        who.expect("lookup")
    })
}

fn row(name: &str, role: &str, unit: &str, enabled: &str) -> Vec<String> {
    [name, role, unit, enabled].map(String::from).to_vec()
}

#[test]
fn cli_adds_lists_refuses_and_disables_users_on_sqlite() {
    let dir = scratch("users-cli");
    let config = dir.join("hotline.toml");
    std::fs::write(&config, config_text(&dir, &[])).unwrap();
    let url = format!("sqlite://{}/hotline.db", dir.display());
    let rt = tokio::runtime::Runtime::new().unwrap();

    // No users yet: the header alone, and a hint on stderr.
    assert!(list(&config, &[]).is_empty());
    let (_, _, err) = cli(&config, &["users", "list"]);
    assert!(err.contains("hotline users add"), "{err}");

    let agent = add(&config, &[], "wang.fang", "agent", None);
    let dispatcher = add(&config, &[], "li.lei", "dispatcher", None);
    let handler = add(&config, &[], "gaj-01", "unit_handler", Some("hhht-police"));
    let supervisor = add(&config, &[], "zhao.min", "supervisor", None);
    let admin = add(&config, &[], "admin", "admin", None);
    let tokens = [&agent, &dispatcher, &handler, &supervisor, &admin];
    for (i, a) in tokens.iter().enumerate() {
        for b in &tokens[i + 1..] {
            assert_ne!(a, b, "two users got the same token");
        }
    }

    assert_eq!(
        list(&config, &[]),
        [
            row("admin", "admin", "-", "yes"),
            row("gaj-01", "unit_handler", "hhht-police", "yes"),
            row("li.lei", "dispatcher", "-", "yes"),
            row("wang.fang", "agent", "-", "yes"),
            row("zhao.min", "supervisor", "-", "yes"),
        ]
    );

    // Each printed token is what the store knows the user by.
    let who = principal(&rt, &url, &handler).expect("the unit handler's token works");
    assert_eq!(
        who,
        Principal {
            name: "gaj-01".into(),
            role: Role::UnitHandler,
            unit: Some("hhht-police".into())
        }
    );
    for (token, name, role) in [
        (&agent, "wang.fang", Role::Agent),
        (&dispatcher, "li.lei", Role::Dispatcher),
        (&supervisor, "zhao.min", Role::Supervisor),
        (&admin, "admin", Role::Admin),
    ] {
        let who = principal(&rt, &url, token).unwrap_or_else(|| panic!("{name}'s token"));
        assert_eq!((who.name.as_str(), who.role, who.unit), (name, role, None));
    }
    // ...and no token is written anywhere in the database files.
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.to_string_lossy().contains("hotline.db") {
            let bytes = std::fs::read(&path).unwrap();
            for token in tokens {
                assert!(
                    !bytes.windows(token.len()).any(|w| w == token.as_bytes()),
                    "{} holds a token",
                    path.display()
                );
            }
        }
    }

    // Bad input: non-zero exit, a clear error, no token printed, nothing stored.
    let refused: [(&[&str], &[&str]); 9] = [
        (
            &[
                "users",
                "add",
                "--name",
                "wang.fang",
                "--role",
                "dispatcher",
            ],
            &["\"wang.fang\" already exists"],
        ),
        (
            &["users", "add", "--name", "gaj-02", "--role", "unit_handler"],
            &["--unit", "a unit handler needs"],
        ),
        (
            &[
                "users",
                "add",
                "--name",
                "sun.li",
                "--role",
                "agent",
                "--unit",
                "hhht-police",
            ],
            &["--unit", "only a unit handler has a unit"],
        ),
        (
            &[
                "users",
                "add",
                "--name",
                "gaj-09",
                "--role",
                "unit_handler",
                "--unit",
                "市公安局",
            ],
            &["unit: \"市公安局\" is not in", "units.toml"],
        ),
        (
            &["users", "add", "--name", "sun.li", "--role", "boss"],
            &[
                "unknown role \"boss\"",
                "agent, dispatcher, unit_handler, supervisor, admin",
            ],
        ),
        (
            &["users", "add", "--name", "sun li", "--role", "agent"],
            &["--name", "letters, digits"],
        ),
        (&["users", "add", "--role", "agent"], &["--name"]),
        (&["users", "disable", "nobody"], &["no user \"nobody\""]),
        (&["users", "enable", "nobody"], &["no user \"nobody\""]),
    ];
    for (args, expected) in refused {
        let (ok, out, err) = cli(&config, args);
        assert!(!ok, "{args:?} was accepted: {out}");
        assert!(out.is_empty(), "{args:?} printed {out:?}");
        for text in expected {
            assert!(err.contains(text), "{args:?}: wanted {text:?} in {err}");
        }
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
    assert_eq!(list(&config, &[]).len(), 5);

    // Disabled: listed as such, and its token no longer finds it.
    let (ok, out, err) = cli(&config, &["users", "disable", "gaj-01"]);
    assert!(ok, "{out}{err}");
    assert_eq!(out.trim(), "user gaj-01 disabled");
    assert_eq!(
        list(&config, &[])[1],
        row("gaj-01", "unit_handler", "hhht-police", "no")
    );
    assert_eq!(principal(&rt, &url, &handler), None);
    assert!(principal(&rt, &url, &agent).is_some(), "others unaffected");

    // Enabled again, with the same token.
    let (ok, out, err) = cli(&config, &["users", "enable", "gaj-01"]);
    assert!(ok, "{out}{err}");
    assert_eq!(out.trim(), "user gaj-01 enabled");
    assert_eq!(list(&config, &[])[1][3], "yes");
    assert_eq!(principal(&rt, &url, &handler), Some(who.clone()));

    // A lost token is replaced: the new one works, the old one no longer.
    let (ok, out, err) = cli(&config, &["users", "token", "gaj-01"]);
    assert!(ok, "{out}{err}");
    let fresh = out.trim().to_owned();
    assert!(fresh.starts_with("hl_") && fresh != handler, "{out}");
    assert!(err.contains("old one no longer works"), "{err}");
    assert_eq!(principal(&rt, &url, &fresh), Some(who));
    assert_eq!(principal(&rt, &url, &handler), None);
    let (ok, out, err) = cli(&config, &["users", "token", "nobody"]);
    assert!(!ok && out.is_empty(), "{out}{err}");
    assert!(err.contains("nobody"), "{err}");
}

#[test]
fn cli_adds_and_lists_users_on_postgres() {
    let db = TempDb::new("users");
    let url = db.url();
    let dir = scratch("users-pg");
    let config = dir.join("hotline.toml");
    // The config names a SQLite file; DATABASE_URL must win, as for `agents`.
    std::fs::write(&config, config_text(&dir, &[])).unwrap();
    let env = [("DATABASE_URL", url.as_str())];

    let handler = add(&config, &env, "gaj-01", "unit_handler", Some("hhht-police"));
    let admin = add(&config, &env, "admin", "admin", None);
    assert_eq!(
        list(&config, &env),
        [
            row("admin", "admin", "-", "yes"),
            row("gaj-01", "unit_handler", "hhht-police", "yes"),
        ]
    );
    assert!(
        !dir.join("hotline.db").exists(),
        "the config's SQLite file was used instead of DATABASE_URL"
    );

    // The database's unique constraint is what refuses a duplicate here.
    let (ok, out, err) = cli_env(
        &config,
        &["users", "add", "--name", "admin", "--role", "agent"],
        &env,
    );
    assert!(!ok && out.is_empty(), "{out}{err}");
    assert!(err.contains("\"admin\" already exists"), "{err}");

    let who = principal(&db.rt, &url, &handler).expect("token works on PostgreSQL");
    assert_eq!(
        (who.role, who.unit.as_deref()),
        (Role::UnitHandler, Some("hhht-police"))
    );
    let (ok, out, err) = cli_env(&config, &["users", "disable", "admin"], &env);
    assert!(ok, "{out}{err}");
    assert_eq!(principal(&db.rt, &url, &admin), None);
    assert_eq!(list(&config, &env)[0][3], "no");
}
