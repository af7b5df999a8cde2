//! API users kept in the database, managed by `hotline users`.
//!
//! A user is a name, a [`Role`], the unit of a unit handler, and the SHA-256
//! of its bearer token (see `auth::token`); the token itself is never stored.
//! The API turns a request's token into a [`Principal`] with
//! [`Store::user_by_token_hash`]; what a principal may do is decided by the
//! lifecycle and the API, not here. This room validates and stores.

use super::{Store, StoreError};
use crate::auth::token::is_token_hash;
use crate::auth::{Principal, Role};
use sqlx::Row;
use sqlx::any::AnyRow;

/// Longest user name and unit accepted, in characters.
const MAX_NAME: usize = 64;
const MAX_UNIT: usize = 100;

/// Why a user was refused or could not be read.
#[derive(Debug, thiserror::Error)]
pub enum UserError {
    /// A field is wrong; `field` is its name in the API and the CLI.
    #[error("{field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    #[error("a user named {0:?} already exists")]
    Duplicate(String),
    /// Two users may not share a token (a freshly generated one never clashes).
    #[error("another user already has this token")]
    TokenInUse,
    #[error("no user {0:?}")]
    NotFound(String),
    /// A row edited by hand into something the code does not know.
    #[error("stored user {name:?}: {message}")]
    BadRow { name: String, message: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for UserError {
    fn from(e: sqlx::Error) -> Self {
        UserError::Store(StoreError::Query(e))
    }
}

fn invalid(field: &'static str, message: impl Into<String>) -> UserError {
    UserError::Invalid {
        field,
        message: message.into(),
    }
}

/// A row of `api_users`, without its token hash (so it can be listed and
/// serialised without leaking anything).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ApiUser {
    pub name: String,
    pub role: Role,
    /// The unit of a unit handler; `None` for every other role.
    pub unit: Option<String>,
    /// Unix ms.
    pub created_at: i64,
    /// Unix ms; set while the user is disabled.
    pub disabled_at: Option<i64>,
}

impl ApiUser {
    /// Whether the user's token is accepted.
    pub fn enabled(&self) -> bool {
        self.disabled_at.is_none()
    }

    /// The principal the user's requests act as.
    pub fn principal(&self) -> Principal {
        Principal {
            name: self.name.clone(),
            role: self.role,
            unit: self.unit.clone(),
        }
    }
}

/// Checks a user name: 1 to 64 letters (any script), digits, `.`, `_`,
/// `-` or `@`, starting with a letter or digit.
pub fn validate_name(name: &str) -> Result<(), UserError> {
    let good = name.chars().count() <= MAX_NAME
        && name.chars().next().is_some_and(char::is_alphanumeric)
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'));
    if good {
        Ok(())
    } else {
        Err(invalid(
            "name",
            format!(
                "{name:?} must be 1 to {MAX_NAME} letters, digits, '.', '_', '-' or '@', starting with a letter or digit"
            ),
        ))
    }
}

/// Checks a user before it is stored: a valid name, and a unit exactly when
/// the role is unit handler (a unit handler sees only its unit's orders; a
/// hotline user with a unit would be a contradiction).
pub fn validate_user(name: &str, role: Role, unit: Option<&str>) -> Result<(), UserError> {
    validate_name(name)?;
    match (role, unit) {
        (Role::UnitHandler, None) => Err(invalid(
            "unit",
            "a unit handler needs the unit it works for",
        )),
        (Role::UnitHandler, Some(unit)) => {
            let good = !unit.trim().is_empty()
                && unit.trim() == unit
                && unit.chars().count() <= MAX_UNIT
                && !unit.chars().any(char::is_control);
            if good {
                Ok(())
            } else {
                Err(invalid(
                    "unit",
                    format!(
                        "{unit:?} must be 1 to {MAX_UNIT} characters, without control characters or surrounding spaces"
                    ),
                ))
            }
        }
        (role, Some(_)) => Err(invalid(
            "unit",
            format!(
                "only a unit handler has a unit; a {} works for the hotline",
                role.as_str()
            ),
        )),
        (_, None) => Ok(()),
    }
}

const COLUMNS: &str = "name, role, unit, created_at, disabled_at";

impl Store {
    /// Adds an enabled user; refuses a name or token hash already stored.
    pub async fn add_user(
        &self,
        name: &str,
        role: Role,
        unit: Option<&str>,
        token_hash: &str,
        now_ms: i64,
    ) -> Result<ApiUser, UserError> {
        validate_user(name, role, unit)?;
        if !is_token_hash(token_hash) {
            // Guards against storing a token itself by mistake.
            return Err(invalid(
                "token_hash",
                "must be a SHA-256 in lower-case hex (auth::token::hash_token)",
            ));
        }
        let inserted = sqlx::query(
            "INSERT INTO api_users (name, role, unit, token_hash, created_at, disabled_at) \
             VALUES ($1, $2, $3, $4, $5, NULL)",
        )
        .bind(name.to_owned())
        .bind(role.as_str())
        .bind(unit.map(str::to_owned))
        .bind(token_hash.to_owned())
        .bind(now_ms)
        .execute(&self.pool)
        .await;
        match inserted {
            Ok(_) => {}
            // The database's unique constraints decide, so two concurrent
            // adds cannot both win; then find out which one was hit.
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                return Err(if self.user(name).await?.is_some() {
                    UserError::Duplicate(name.to_owned())
                } else {
                    UserError::TokenInUse
                });
            }
            Err(e) => return Err(e.into()),
        }
        Ok(ApiUser {
            name: name.to_owned(),
            role,
            unit: unit.map(str::to_owned),
            created_at: now_ms,
            disabled_at: None,
        })
    }

    /// The enabled user whose token has this hash, as a principal; `None`
    /// for an unknown hash or a disabled user.
    pub async fn user_by_token_hash(
        &self,
        token_hash: &str,
    ) -> Result<Option<Principal>, UserError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM api_users WHERE token_hash = $1 AND disabled_at IS NULL"
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(token_hash.to_owned())
            .fetch_optional(&self.pool)
            .await?;
        Ok(row
            .as_ref()
            .map(row_to_user)
            .transpose()?
            .map(|u| u.principal()))
    }

    /// One user, enabled or not.
    pub async fn user(&self, name: &str) -> Result<Option<ApiUser>, UserError> {
        let sql = format!("SELECT {COLUMNS} FROM api_users WHERE name = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(name.to_owned())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(row_to_user).transpose()
    }

    /// Every user, enabled or not, in name order.
    pub async fn list_users(&self) -> Result<Vec<ApiUser>, UserError> {
        let sql = format!("SELECT {COLUMNS} FROM api_users ORDER BY name");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(row_to_user).collect()
    }

    /// Disables a user: its token is refused from the next request on.
    /// Disabling a disabled user keeps the time it was first disabled.
    pub async fn disable_user(&self, name: &str) -> Result<ApiUser, UserError> {
        let now = crate::call::record::now_ms();
        self.set_disabled(
            "UPDATE api_users SET disabled_at = COALESCE(disabled_at, $1) WHERE name = $2",
            Some(now),
            name,
        )
        .await
    }

    /// Enables a user again, with the token it had.
    pub async fn enable_user(&self, name: &str) -> Result<ApiUser, UserError> {
        self.set_disabled(
            "UPDATE api_users SET disabled_at = $1 WHERE name = $2",
            None,
            name,
        )
        .await
    }

    /// Gives a user a new token (by its hash): the old one stops working
    /// from the next request on. For a lost or leaked token.
    pub async fn replace_token(&self, name: &str, token_hash: &str) -> Result<ApiUser, UserError> {
        if !crate::auth::token::is_token_hash(token_hash) {
            return Err(UserError::Invalid {
                field: "token_hash",
                message: "must be a SHA-256 in lower-case hex, never a raw token".into(),
            });
        }
        let done = sqlx::query("UPDATE api_users SET token_hash = $1 WHERE name = $2")
            .bind(token_hash.to_owned())
            .bind(name.to_owned())
            .execute(&self.pool)
            .await?;
        if done.rows_affected() == 0 {
            return Err(UserError::NotFound(name.to_owned()));
        }
        self.user(name)
            .await?
            .ok_or_else(|| UserError::NotFound(name.to_owned()))
    }

    async fn set_disabled(
        &self,
        sql: &'static str,
        at: Option<i64>,
        name: &str,
    ) -> Result<ApiUser, UserError> {
        let done = sqlx::query(sql)
            .bind(at)
            .bind(name.to_owned())
            .execute(&self.pool)
            .await?;
        if done.rows_affected() == 0 {
            return Err(UserError::NotFound(name.to_owned()));
        }
        self.user(name)
            .await?
            .ok_or_else(|| UserError::NotFound(name.to_owned()))
    }
}

fn row_to_user(row: &AnyRow) -> Result<ApiUser, UserError> {
    let name: String = row.try_get("name")?;
    let role: String = row.try_get("role")?;
    // A hand-edited row must not let anyone in with a role we do not know,
    // nor take the server down: say which user, and let the caller decide.
    let Some(role) = Role::parse(&role) else {
        return Err(UserError::BadRow {
            name,
            message: format!("unknown role {role:?}"),
        });
    };
    Ok(ApiUser {
        role,
        unit: row.try_get("unit")?,
        created_at: row.try_get("created_at")?,
        disabled_at: row.try_get("disabled_at")?,
        name,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::token::{generate_token, hash_token};

    /// A store on a fresh SQLite file, removed on drop.
    struct TempStore {
        store: Store,
        dir: std::path::PathBuf,
    }

    impl TempStore {
        async fn new(tag: &str) -> TempStore {
            let dir = std::env::temp_dir().join(format!(
                "hotline-users-{tag}-{}-{}",
                std::process::id(),
                crate::call::record::now_ms()
            ));
            let url = format!("sqlite://{}/users.db", dir.display());
            let store = Store::connect(&url).await.unwrap();
            TempStore { store, dir }
        }

        async fn close(self) {
            self.store.close().await;
            std::fs::remove_dir_all(&self.dir).ok();
        }
    }

    fn field_of(e: UserError) -> &'static str {
        match e {
            UserError::Invalid { field, .. } => field,
            other => panic!("not a field error: {other:?}"),
        }
    }

    #[test]
    fn units_go_with_unit_handlers_only() {
        assert!(validate_user("wang.fang", Role::Agent, None).is_ok());
        assert!(validate_user("gaj-01", Role::UnitHandler, Some("市公安局")).is_ok());
        assert!(validate_user("张三", Role::Supervisor, None).is_ok());
        let refused = [
            ("x", Role::UnitHandler, None, "unit"),
            ("x", Role::UnitHandler, Some(""), "unit"),
            ("x", Role::UnitHandler, Some("   "), "unit"),
            ("x", Role::UnitHandler, Some(" 市公安局"), "unit"),
            ("x", Role::UnitHandler, Some("a\nb"), "unit"),
            ("x", Role::Agent, Some("市公安局"), "unit"),
            ("x", Role::Admin, Some(""), "unit"),
            ("", Role::Agent, None, "name"),
            ("wang fang", Role::Agent, None, "name"),
            ("-admin", Role::Admin, None, "name"),
            ("a:b", Role::Admin, None, "name"),
        ];
        for (name, role, unit, field) in refused {
            let e = validate_user(name, role, unit).unwrap_err();
            assert_eq!(field_of(e), field, "{name:?} {role:?} {unit:?}");
        }
        assert!(validate_name(&"a".repeat(64)).is_ok());
        assert!(validate_name(&"a".repeat(65)).is_err());
        let e = validate_user("x", Role::Agent, Some("u")).unwrap_err();
        assert!(e.to_string().contains("only a unit handler"), "{e}");
    }

    #[tokio::test]
    async fn users_round_trip_and_tokens_find_them() {
        let t = TempStore::new("round-trip").await;
        let store = &t.store;
        let token = generate_token();
        let hash = hash_token(&token);
        let added = store
            .add_user("gaj-01", Role::UnitHandler, Some("市公安局"), &hash, 1_000)
            .await
            .unwrap();
        assert!(added.enabled());
        assert_eq!(added.created_at, 1_000);
        store
            .add_user(
                "admin",
                Role::Admin,
                None,
                &hash_token(&generate_token()),
                2_000,
            )
            .await
            .unwrap();

        let who = store.user_by_token_hash(&hash).await.unwrap().unwrap();
        assert_eq!(
            who,
            Principal {
                name: "gaj-01".into(),
                role: Role::UnitHandler,
                unit: Some("市公安局".into())
            }
        );
        assert_eq!(
            store
                .user_by_token_hash(&hash_token("hl_other"))
                .await
                .unwrap(),
            None
        );
        // The token itself is not the key.
        assert_eq!(store.user_by_token_hash(&token).await.unwrap(), None);

        let all = store.list_users().await.unwrap();
        let names: Vec<_> = all.iter().map(|u| u.name.as_str()).collect();
        assert_eq!(names, ["admin", "gaj-01"]);
        assert_eq!(all[1], added);

        // Disabled: the token no longer finds anyone, the user is still listed.
        let off = store.disable_user("gaj-01").await.unwrap();
        let first = off.disabled_at.expect("disabled_at set");
        assert!(!off.enabled());
        assert_eq!(store.user_by_token_hash(&hash).await.unwrap(), None);
        let again = store.disable_user("gaj-01").await.unwrap();
        assert_eq!(again.disabled_at, Some(first), "first disable time kept");
        assert!(!store.list_users().await.unwrap()[1].enabled());

        let on = store.enable_user("gaj-01").await.unwrap();
        assert!(on.enabled());
        assert_eq!(store.user_by_token_hash(&hash).await.unwrap(), Some(who));

        for result in [
            store.disable_user("nobody").await,
            store.enable_user("nobody").await,
        ] {
            assert!(
                matches!(&result, Err(UserError::NotFound(n)) if n == "nobody"),
                "{result:?}"
            );
        }
        t.close().await;
    }

    #[tokio::test]
    async fn duplicates_and_bad_input_are_refused_and_nothing_is_stored() {
        let t = TempStore::new("refused").await;
        let store = &t.store;
        let hash = hash_token(&generate_token());
        store
            .add_user("wang.fang", Role::Agent, None, &hash, 1)
            .await
            .unwrap();
        let other = hash_token(&generate_token());
        let dup = store
            .add_user("wang.fang", Role::Dispatcher, None, &other, 2)
            .await
            .unwrap_err();
        assert!(
            matches!(&dup, UserError::Duplicate(n) if n == "wang.fang"),
            "{dup:?}"
        );
        assert_eq!(dup.to_string(), "a user named \"wang.fang\" already exists");
        let clash = store
            .add_user("li.lei", Role::Agent, None, &hash, 2)
            .await
            .unwrap_err();
        assert!(matches!(clash, UserError::TokenInUse), "{clash:?}");

        let e = store
            .add_user("li.lei", Role::UnitHandler, None, &other, 2)
            .await
            .unwrap_err();
        assert_eq!(field_of(e), "unit");
        let e = store
            .add_user("li.lei", Role::Agent, Some("市公安局"), &other, 2)
            .await
            .unwrap_err();
        assert_eq!(field_of(e), "unit");
        let raw = generate_token();
        let e = store
            .add_user("li.lei", Role::Agent, None, &raw, 2)
            .await
            .unwrap_err();
        assert_eq!(field_of(e), "token_hash");

        let users = store.list_users().await.unwrap();
        assert_eq!(users.len(), 1, "{users:?}");
        assert_eq!(users[0].role, Role::Agent);
        t.close().await;
    }

    #[tokio::test]
    async fn a_hand_edited_role_is_reported_not_trusted() {
        let t = TempStore::new("bad-row").await;
        let hash = hash_token(&generate_token());
        t.store
            .add_user("root", Role::Admin, None, &hash, 1)
            .await
            .unwrap();
        sqlx::query("UPDATE api_users SET role = 'superuser'")
            .execute(&t.store.pool)
            .await
            .unwrap();
        let e = t.store.user_by_token_hash(&hash).await.unwrap_err();
        assert!(
            matches!(&e, UserError::BadRow { name, .. } if name == "root"),
            "{e:?}"
        );
        assert!(e.to_string().contains("superuser"), "{e}");
        t.close().await;
    }
}
