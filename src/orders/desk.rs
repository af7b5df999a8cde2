//! The order desk: the thin async shell around the lifecycle. It checks
//! intake against the catalogue and the units, fills in the dispatch
//! catalogue's defaults, runs commands through the store's one-transaction
//! writes, and shapes what each role may see ([`view`]): numbers masked
//! unless the role may see them, a report's (举报) identity hidden from
//! units, and each unmasked read audited.
//!
//! The API (`api::orders`) calls this; the spool and the deadline sweeper
//! in [`super::spool`] and [`super::sweeper`] do too.

use super::catalogue::{Catalogue, CatalogueError};
use super::deadline::{Limits, WorkTime};
use super::lifecycle::{Command, Event, Intake, Plan, Policy, Refusal, WorkOrder};
use super::model::{AppealType, Urgency};
use super::units::{Units, UnitsError};
use crate::auth::mask::{mask_name, mask_phone};
use crate::auth::{Principal, Role};
use crate::calendar::Calendar;
use crate::call::record::now_ms;
use crate::config::Config;
use crate::server::Shared;
use crate::store::orders::{Idempotency, OrderFilter, OrderStoreError, Page, Written};
use crate::store::{Store, StoreError};
use serde_json::Value;

/// Everything the desk decides with: calendar, limits, catalogue, units.
pub struct Rules {
    pub time: WorkTime,
    pub limits: Limits,
    pub percents: Vec<u8>,
    pub catalogue: Catalogue,
    pub units: Units,
}

/// Why the rules could not be loaded (the catalogue's or the units' error,
/// which names the file and the entry).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct RulesError(String);

impl From<CatalogueError> for RulesError {
    fn from(e: CatalogueError) -> Self {
        RulesError(e.to_string())
    }
}

impl From<UnitsError> for RulesError {
    fn from(e: UnitsError) -> Self {
        RulesError(e.to_string())
    }
}

impl Rules {
    /// Loads the catalogue and units the config names.
    pub fn load(config: &Config, calendar: Calendar) -> Result<Rules, RulesError> {
        let catalogue = Catalogue::load(&config.orders.catalogue)?;
        let units = Units::load(&config.orders.units)?;
        units.check_against(&catalogue)?;
        Ok(Rules {
            time: WorkTime::new(calendar, config.orders.offset()),
            limits: config.orders.limits.clone(),
            percents: config.orders.warn_percents.clone(),
            catalogue,
            units,
        })
    }

    pub fn policy(&self) -> Policy<'_> {
        Policy {
            time: &self.time,
            limits: &self.limits,
        }
    }

    /// `YYYYMMDD` of `now` in local time: the order number's prefix.
    pub fn day(&self, now: i64) -> String {
        let date = self.time.local_date(now).unwrap_or(time::Date::MIN);
        format!(
            "{:04}{:02}{:02}",
            date.year(),
            u8::from(date.month()),
            date.day()
        )
    }
}

/// Why a desk request failed; the API maps each to a status.
#[derive(Debug, thiserror::Error)]
pub enum DeskError {
    /// 404: no such order, or not one the caller may see.
    #[error("no order {0}")]
    NotFound(String),
    /// 403, 409 or 400.
    #[error(transparent)]
    Refused(Refusal),
    /// 422: an Idempotency-Key reused for a different request.
    #[error("{0}")]
    KeyReused(String),
    /// 503: the database is away.
    #[error("the order store is unavailable: {0}")]
    Unavailable(StoreError),
}

impl From<OrderStoreError> for DeskError {
    fn from(e: OrderStoreError) -> Self {
        match e {
            OrderStoreError::NotFound(n) => DeskError::NotFound(n),
            OrderStoreError::Refused(r) => DeskError::Refused(r),
            OrderStoreError::KeyReused(_) => DeskError::KeyReused(e.to_string()),
            OrderStoreError::Store(s) => DeskError::Unavailable(s),
        }
    }
}

impl From<StoreError> for DeskError {
    fn from(e: StoreError) -> Self {
        DeskError::Unavailable(e)
    }
}

fn invalid(field: &'static str, message: impl Into<String>) -> DeskError {
    DeskError::Refused(Refusal::Invalid {
        field,
        message: message.into(),
    })
}

/// Checks an intake against the catalogue and the division list; an
/// emergency category makes an emergency order (art. 10).
pub fn check_intake(rules: &Rules, intake: &mut Intake) -> Result<(), DeskError> {
    if rules.catalogue.get(&intake.category).is_none() {
        return Err(invalid(
            "category",
            format!("{:?} is not in the matter catalogue", intake.category),
        ));
    }
    if rules.units.division(&intake.division).is_none() {
        return Err(invalid(
            "division",
            format!("{:?} is not a known division code", intake.division),
        ));
    }
    if intake.content.trim().is_empty() {
        return Err(invalid("content", "say what the citizen wants"));
    }
    if rules.catalogue.is_emergency(&intake.category) {
        intake.urgency = Urgency::Emergency;
    }
    Ok(())
}

/// Fills in and checks the units of a dispatch.
fn check_dispatch(rules: &Rules, order: &WorkOrder, command: &mut Command) -> Result<(), Refusal> {
    let Command::Dispatch { plan, default, .. } = command else {
        return Ok(());
    };
    for (field, unit) in std::iter::once(("lead", &plan.lead))
        .chain(plan.co_handlers.iter().map(|c| ("co_handlers", c)))
    {
        if rules.units.unit(unit).is_none() {
            return Err(Refusal::Invalid {
                field,
                message: format!("{unit:?} is not a known unit"),
            });
        }
    }
    if default.is_none() {
        *default = rules
            .units
            .dispatch_default(&order.intake.category, &order.intake.division)
            .map(Plan::from);
    }
    Ok(())
}

/// Makes an order from an intake (draft, or accepted with `submit`). An
/// emergency order is dispatched at once to the catalogue's default units
/// in the same transaction.
pub async fn create(
    store: &Store,
    rules: &Rules,
    who: &Principal,
    mut intake: Intake,
    submit: bool,
    idempotency: Option<Idempotency<'_>>,
    now: i64,
) -> Result<Written, DeskError> {
    if !matches!(who.role, Role::Agent | Role::Dispatcher | Role::Admin) {
        return Err(DeskError::Refused(Refusal::Forbidden(format!(
            "a {} may not take appeals",
            who.role.as_str()
        ))));
    }
    check_intake(rules, &mut intake)?;
    let policy = rules.policy();
    let default = rules
        .units
        .dispatch_default(&intake.category, &intake.division);
    let written = store
        .create_order(
            &rules.day(now),
            who,
            now,
            &rules.percents,
            idempotency,
            |order_no| {
                let mut order = WorkOrder::new(order_no, intake, who, now);
                let mut events = Vec::new();
                if submit {
                    events.extend(order.apply(who, Command::Submit, now, &policy)?);
                    if order.is_emergency()
                        && let Some(plan) = default
                    {
                        let system = Principal::system("emergency-dispatch");
                        let plan = Plan::from(plan);
                        events.extend(order.apply(
                            &system,
                            Command::Dispatch {
                                default: Some(plan.clone()),
                                plan,
                                override_reason: None,
                            },
                            now,
                            &policy,
                        )?);
                    }
                }
                Ok((order, events))
            },
        )
        .await?;
    Ok(written)
}

/// Runs a command on an order for `who`. A unit handler can only touch
/// orders its unit has a part in; others are "not found" to it.
pub async fn act(
    store: &Store,
    rules: &Rules,
    who: &Principal,
    order_no: &str,
    mut command: Command,
    now: i64,
) -> Result<Written, DeskError> {
    let policy = rules.policy();
    let action = command.name();
    // A direct answer with a knowledge-base entry is a hit on it, recorded
    // with the closing (the store refuses an entry that is not published).
    let hit = match &command {
        Command::DirectAnswer {
            kb_entry: Some(entry),
            ..
        } => Some(entry.clone()),
        _ => None,
    };
    let change = |order: &mut WorkOrder| {
        if !may_see(who, order) {
            return Err(Refusal::Forbidden(String::new()));
        }
        check_dispatch(rules, order, &mut command)?;
        order.apply(who, command, now, &policy)
    };
    let written = match &hit {
        Some(entry) => {
            store
                .change_order_with_hit(order_no, entry, who, now, &rules.percents, action, change)
                .await
        }
        None => {
            store
                .change_order(order_no, who, now, &rules.percents, action, change)
                .await
        }
    };
    let written = written.map_err(|e| match e {
        OrderStoreError::Refused(Refusal::Forbidden(m)) if m.is_empty() => {
            DeskError::NotFound(order_no.to_owned())
        }
        e => e.into(),
    })?;
    Ok(written)
}

/// Applies `command` as `who` (a system principal, not checked against
/// what it may see) to each of `orders` in turn, one change under `action`
/// each, and publishes what each change did. Returns each order's result:
/// whether it changed anything, or why it was not changed.
pub async fn apply_to_each(
    shared: &Shared,
    orders: &[String],
    who: &Principal,
    action: &str,
    command: impl Fn() -> Command,
) -> Vec<(String, Result<bool, OrderStoreError>)> {
    let rules = shared.order_rules.load();
    let mut out = Vec::with_capacity(orders.len());
    for order_no in orders {
        let now = now_ms();
        let policy: Policy = rules.policy();
        let result = shared
            .store
            .change_order(order_no, who, now, &rules.percents, action, |order| {
                order.apply(who, command(), now, &policy)
            })
            .await
            .map(|w| {
                shared.order_events.publish(&w.order, &w.events, now);
                !w.events.is_empty()
            });
        out.push((order_no.clone(), result));
    }
    out
}

/// Whether `who` may see the order at all.
pub fn may_see(who: &Principal, order: &WorkOrder) -> bool {
    match who.role {
        Role::UnitHandler => who.unit.as_deref().is_some_and(|u| order.involves(u)),
        _ => true,
    }
}

/// One order as `who` may see it; `personal` asks for unmasked personal
/// data where the role allows (the read is audited).
pub async fn get(
    store: &Store,
    who: &Principal,
    order_no: &str,
    personal: bool,
    now: i64,
) -> Result<(Value, i64), DeskError> {
    let (order, version) = store
        .order(order_no)
        .await?
        .filter(|(o, _)| may_see(who, o))
        .ok_or_else(|| DeskError::NotFound(order_no.to_owned()))?;
    let unmask = personal && who.role.sees_personal_data();
    if unmask {
        store
            .audit_personal_read(order_no, who, now, &["citizen.name", "citizen.phone"])
            .await?;
    }
    Ok((view(&order, who, unmask), version))
}

/// A page of orders as `who` may see them: a unit handler only its unit's;
/// personal data always masked (open one order to read it).
pub async fn list(
    store: &Store,
    who: &Principal,
    mut filter: OrderFilter,
    now: i64,
) -> Result<(Vec<Value>, Page), DeskError> {
    if filter.phone.is_some() && !who.role.sees_personal_data() {
        // Searching by number would let a unit confirm a guessed number,
        // or a reporter's identity (art. 15).
        return Err(DeskError::Refused(Refusal::Forbidden(format!(
            "a {} may not search by the citizen's number",
            who.role.as_str()
        ))));
    }
    if who.role == Role::UnitHandler {
        let own = who.unit.clone().unwrap_or_default();
        if filter.unit.as_ref().is_some_and(|u| *u != own) {
            return Err(DeskError::Refused(Refusal::Forbidden(format!(
                "{} sees only unit {own}'s orders",
                who.name
            ))));
        }
        filter.unit = Some(own);
    }
    let page = store.list_orders(&filter, now).await?;
    let views = page.orders.iter().map(|o| view(o, who, false)).collect();
    Ok((views, page))
}

/// The order as JSON for `who`: the document with personal data masked
/// (or, with `unmask`, shown) and a report's identity removed for units.
pub fn view(order: &WorkOrder, who: &Principal, unmask: bool) -> Value {
    let mut value = serde_json::to_value(order).unwrap_or_default();
    let hide_identity = who.role == Role::UnitHandler
        && (order.intake.appeal_type == AppealType::Report || order.intake.citizen.confidential);
    if let Some(citizen) = value.pointer_mut("/intake/citizen") {
        if hide_identity {
            citizen["name"] = Value::Null;
            citizen["phone"] = Value::Null;
            citizen["identity_hidden"] = Value::Bool(true);
        } else if !unmask {
            mask_citizen(citizen);
        }
    }
    value
}

/// An audit log as `who` may read it: the citizen's name and number in
/// each entry masked unless `unmask` (hotline roles; the read is audited by
/// the caller).
pub fn audit_view(entries: &[crate::store::orders::AuditEntry], unmask: bool) -> Value {
    let mut value = serde_json::to_value(entries).unwrap_or_default();
    if !unmask && let Some(list) = value.as_array_mut() {
        for entry in list {
            let changes = &mut entry["changes"];
            if let Some(citizen) = changes.pointer_mut("/created/intake/citizen") {
                mask_citizen(citizen);
            }
            if let Some(map) = changes.as_object_mut() {
                for (path, change) in map.iter_mut() {
                    if path.starts_with("intake.citizen") {
                        *change = Value::String("(masked)".into());
                    }
                }
            }
        }
    }
    value
}

fn mask_citizen(citizen: &mut Value) {
    if let Some(phone) = citizen.get("phone").and_then(Value::as_str) {
        citizen["phone"] = Value::String(mask_phone(phone));
    }
    if let Some(name) = citizen.get("name").and_then(Value::as_str) {
        citizen["name"] = Value::String(mask_name(name));
    }
}

/// Events of a write as JSON lines for the event stream.
pub fn events_json(order_no: &str, events: &[Event]) -> Vec<Value> {
    events
        .iter()
        .map(|e| serde_json::json!({"order_no": order_no, "kind": e.kind, "unit": e.unit, "detail": e.detail}))
        .collect()
}

/// 并单: `order_no` repeats `into`; it closes there and `into` takes in
/// its calls, in one transaction.
pub async fn merge(
    store: &Store,
    rules: &Rules,
    who: &Principal,
    order_no: &str,
    into: &str,
    now: i64,
) -> Result<(Written, Written), DeskError> {
    let policy = rules.policy();
    let (from, to) = store
        .change_two_orders(
            (order_no, "merge"),
            (into, "absorb"),
            who,
            now,
            &rules.percents,
            |order| {
                order.apply(
                    who,
                    Command::MergeInto {
                        into: into.to_owned(),
                    },
                    now,
                    &policy,
                )
            },
            |merged, order| {
                order.apply(
                    who,
                    Command::Absorb {
                        order_no: merged.order_no.clone(),
                        calls: merged.intake.calls.clone(),
                    },
                    now,
                    &policy,
                )
            },
        )
        .await?;
    Ok((from, to))
}
