//! A private PostgreSQL database per test, on the machine's server
//! (`HOTLINE_TEST_POSTGRES`, default `postgres://postgres@127.0.0.1:5432/test`):
//! a role and a database of the same name, dropped on drop, and an outage
//! made by forbidding the role to log in and ending its sessions.

use sqlx::Connection;

/// The admin connection the helper creates and drops databases with.
pub fn admin_url() -> String {
    std::env::var("HOTLINE_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// A private database owned by a private role, dropped on drop.
pub struct TempDb {
    pub name: String,
    pub rt: tokio::runtime::Runtime,
}

impl TempDb {
    /// `hotline_<tag>_<pid>`, made afresh (an old one of that name is
    /// dropped first).
    pub fn new(tag: &str) -> TempDb {
        TempDb::with_options(tag, "")
    }

    /// As [`TempDb::new`], with `options` at the end of `CREATE DATABASE`
    /// (a locale, a template).
    pub fn with_options(tag: &str, options: &str) -> TempDb {
        let name = format!("hotline_{tag}_{}", std::process::id());
        assert!(name.len() <= 63, "{name} is too long a database name");
        let rt = tokio::runtime::Runtime::new().unwrap();
        let db = TempDb { name, rt };
        db.admin(&format!(
            "DROP DATABASE IF EXISTS {0} WITH (FORCE)",
            db.name
        ));
        db.admin(&format!("DROP ROLE IF EXISTS {0}", db.name));
        db.admin(&format!("CREATE ROLE {0} LOGIN", db.name));
        db.admin(&format!("CREATE DATABASE {0} OWNER {0} {options}", db.name));
        db
    }

    /// The database's URL, connecting as its role.
    pub fn url(&self) -> String {
        let admin = admin_url();
        let host = admin
            .split('@')
            .nth(1)
            .and_then(|h| h.split('/').next())
            .unwrap_or("127.0.0.1:5432")
            .to_string();
        format!("postgres://{0}@{host}/{0}", self.name)
    }

    /// Runs one statement as the admin.
    pub fn admin(&self, sql: &str) {
        let url = admin_url();
        self.rt.block_on(async {
            let mut conn = sqlx::PgConnection::connect(&url).await.unwrap_or_else(|e| {
                panic!(
                    "PostgreSQL at {url} is required for this test (scripts/test starts it): {e}"
                )
            });
            sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
                .execute(&mut conn)
                .await
                .unwrap_or_else(|e| panic!("{sql}: {e}"));
        });
    }

    /// Cuts the server off: its role may not log in and its sessions die.
    pub fn outage(&self) {
        self.admin(&format!("ALTER ROLE {0} NOLOGIN", self.name));
        self.admin(&format!(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '{0}'",
            self.name
        ));
    }

    /// Lets the role log in again.
    pub fn restore(&self) {
        self.admin(&format!("ALTER ROLE {0} LOGIN", self.name));
    }
}

impl Drop for TempDb {
    fn drop(&mut self) {
        let url = admin_url();
        let name = self.name.clone();
        self.rt.block_on(async {
            if let Ok(mut conn) = sqlx::PgConnection::connect(&url).await {
                let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                    "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                )))
                .execute(&mut conn)
                .await;
                let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP ROLE IF EXISTS {name}")))
                    .execute(&mut conn)
                    .await;
            }
        });
    }
}
