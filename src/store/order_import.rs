//! Bulk import of work orders: orders kept by an older system, or a large
//! seed for benchmarks. Each call writes its orders in one transaction as
//! multi-row INSERTs: the row with the projections the API filters on
//! (as [`Store::change_order`] writes them, at version 1), each unit's
//! newest part, each step's newest clock with its next alert, one `import`
//! audit entry and one outbox event per order. The day sequences in
//! `order_numbers` move past the imported numbers, so orders made later
//! never collide with them.
//!
//! An order number already in the store fails the whole call; nothing of
//! it is written.

use super::insert_rows;
use super::orders::{name_of, to_doc};
use super::{Store, StoreError};
use crate::auth::Principal;
use crate::orders::lifecycle::WorkOrder;
use std::collections::BTreeMap;

/// The version an imported order starts at, as if just created.
const VERSION: i64 = 1;

impl Store {
    /// Writes `orders` as they are (numbers, times and history included) in
    /// one transaction; `now` is the import time (`updated_at`, the audit
    /// entry) and `percents` the warnings the clocks' alerts count against.
    pub async fn import_orders(
        &self,
        orders: &[WorkOrder],
        percents: &[u8],
        now: i64,
    ) -> Result<(), StoreError> {
        if orders.is_empty() {
            return Ok(());
        }
        let mut tx = self.pool.begin().await?;
        insert_rows(
            &mut tx,
            self.dialect,
            "INSERT INTO work_orders (order_no, caller, status, created_at, updated_at, \
             channel, appeal_type, category, urgency, division, lead_unit, escalated, \
             closed_at, version, doc) VALUES ",
            15,
            "",
            orders,
            |q, order| {
                let i = &order.intake;
                q.bind(order.order_no.clone())
                    .bind(i.citizen.phone.as_str().to_owned())
                    .bind(order.status.as_str())
                    .bind(order.created_at)
                    .bind(now)
                    .bind(name_of(&i.channel))
                    .bind(name_of(&i.appeal_type))
                    .bind(i.category.clone())
                    .bind(name_of(&i.urgency))
                    .bind(i.division.clone())
                    .bind(order.lead().map(|a| a.unit.clone()))
                    .bind(i32::from(order.escalated.is_some()))
                    .bind(order.closed_at)
                    .bind(VERSION)
                    .bind(to_doc(order))
            },
        )
        .await?;

        super::orders::insert_parts(&mut tx, self.dialect, orders).await?;
        super::orders::insert_calls_of(&mut tx, self.dialect, orders).await?;
        super::orders::insert_clocks(&mut tx, self.dialect, orders, percents).await?;

        let who = Principal::system("import");
        insert_rows(
            &mut tx,
            self.dialect,
            "INSERT INTO order_audit (order_no, at, actor, role, action, changes) VALUES ",
            6,
            "",
            orders,
            |q, order| {
                let changes = serde_json::json!({"imported": {
                    "status": order.status.as_str(),
                    "created_at": order.created_at,
                }});
                q.bind(order.order_no.clone())
                    .bind(now)
                    .bind(who.name.clone())
                    .bind(who.role.as_str())
                    .bind("import")
                    .bind(changes.to_string())
            },
        )
        .await?;

        // Numbers are `YYYYMMDD` + a 6-digit sequence: each day's counter
        // moves to at least the highest imported sequence.
        let mut last: BTreeMap<&str, i64> = BTreeMap::new();
        for order in orders {
            if let Some((day, seq)) = day_and_seq(&order.order_no) {
                let top = last.entry(day).or_insert(seq);
                *top = (*top).max(seq);
            }
        }
        let days: Vec<(&str, i64)> = last.into_iter().collect();
        insert_rows(
            &mut tx,
            self.dialect,
            "INSERT INTO order_numbers (day, last) VALUES ",
            2,
            " ON CONFLICT (day) DO UPDATE SET last = CASE WHEN excluded.last > order_numbers.last \
             THEN excluded.last ELSE order_numbers.last END",
            &days,
            |q, (day, seq)| q.bind((*day).to_owned()).bind(*seq),
        )
        .await?;

        let events: Vec<_> = orders
            .iter()
            .map(|o| super::outbox::order_event(o, VERSION, "order.imported", &[], now))
            .collect();
        super::outbox::write(&mut tx, self.dialect, &events).await?;

        tx.commit().await?;
        Ok(())
    }
}

/// The day and sequence of a number made by `create_order`.
fn day_and_seq(order_no: &str) -> Option<(&str, i64)> {
    if order_no.len() != 14 || !order_no.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (day, seq) = order_no.split_at(8);
    Some((day, seq.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Role;
    use crate::calendar::Calendar;
    use crate::orders::deadline::{Limits, WorkTime};
    use crate::orders::lifecycle::{Citizen, Command, Intake, PhoneNumber, Plan, Policy};
    use crate::orders::model::{
        AppealType, Channel, ClockKind, OrderStatus, Satisfaction, Urgency,
    };
    use crate::store::orders::OrderFilter;

    const PERCENTS: &[u8] = &[50, 80];
    const HOUR: i64 = 3_600_000;
    /// Monday 2026-11-30 09:00 +08:00.
    const MONDAY_9: i64 = 1_796_000_400_000;

    fn person(name: &str, role: Role, unit: Option<&str>) -> Principal {
        Principal {
            name: name.into(),
            role,
            unit: unit.map(str::to_owned),
        }
    }

    fn intake(phone: &str, category: &str) -> Intake {
        Intake {
            channel: Channel::Phone,
            citizen: Citizen {
                name: Some("张三".into()),
                phone: PhoneNumber::parse(phone).unwrap(),
                confidential: false,
            },
            appeal_type: AppealType::Complaint,
            category: category.into(),
            urgency: Urgency::Normal,
            life_at_risk: false,
            division: "150102".into(),
            location: None,
            content: "暖气不热".into(),
            attachments: vec![],
            calls: vec![],
        }
    }

    struct Driver {
        time: WorkTime,
        limits: Limits,
    }

    impl Driver {
        fn run(&self, order: &mut WorkOrder, steps: Vec<(Principal, Command)>, at: &mut i64) {
            let policy = Policy {
                time: &self.time,
                limits: &self.limits,
            };
            for (who, command) in steps {
                *at += HOUR;
                order.apply(&who, command, *at, &policy).unwrap();
            }
        }
    }

    /// A draft, an accepted order, one dispatched to two units, and one
    /// followed up unsatisfied and reworked (two clocks of a step and unit).
    fn orders() -> Vec<WorkOrder> {
        let d = Driver {
            time: WorkTime::new(
                Calendar::from_dates(&[], &[]),
                time::UtcOffset::from_hms(8, 0, 0).unwrap(),
            ),
            limits: Limits::default(),
        };
        let agent = person("agent-1", Role::Agent, None);
        let disp = person("disp-1", Role::Dispatcher, None);
        let lead = person("h-lead", Role::UnitHandler, Some("hhht-housing"));
        let co = person("h-co", Role::UnitHandler, Some("hhht-heating"));
        let dispatch = || Command::Dispatch {
            plan: Plan {
                lead: "hhht-housing".into(),
                co_handlers: vec!["hhht-heating".into()],
            },
            default: None,
            override_reason: None,
        };
        let new = |n: i64, phone: &str, category: &str| {
            WorkOrder::new(
                format!("20261130{n:06}"),
                intake(phone, category),
                &agent,
                MONDAY_9 + n * 60_000,
            )
        };
        let mut out = Vec::new();
        out.push(new(1, "13800000001", "010101"));

        let mut at = MONDAY_9;
        let mut o = new(2, "13800000002", "010102");
        d.run(&mut o, vec![(agent.clone(), Command::Submit)], &mut at);
        out.push(o);

        let mut at = MONDAY_9;
        let mut o = new(3, "13800000003", "0201");
        d.run(
            &mut o,
            vec![(agent.clone(), Command::Submit), (disp.clone(), dispatch())],
            &mut at,
        );
        out.push(o);

        let mut at = MONDAY_9;
        let mut o = new(7, "13800000002", "010102");
        let contact = |who: &Principal, unit: &str| {
            (
                who.clone(),
                Command::Contact {
                    unit: unit.into(),
                    note: None,
                },
            )
        };
        let reply = || {
            (
                lead.clone(),
                Command::Reply {
                    unit: "hhht-housing".into(),
                    text: "已处理".into(),
                },
            )
        };
        let review = || {
            (
                disp.clone(),
                Command::Review {
                    accept: true,
                    note: None,
                },
            )
        };
        let follow_up = |s: Satisfaction| {
            (
                agent.clone(),
                Command::FollowUp {
                    reached: true,
                    resolved: Some(s.is_satisfied()),
                    satisfaction: Some(s),
                    note: None,
                },
            )
        };
        d.run(
            &mut o,
            vec![
                (agent.clone(), Command::Submit),
                (disp.clone(), dispatch()),
                (
                    lead.clone(),
                    Command::Sign {
                        unit: "hhht-housing".into(),
                    },
                ),
                (
                    co.clone(),
                    Command::Sign {
                        unit: "hhht-heating".into(),
                    },
                ),
                (
                    co.clone(),
                    Command::Report {
                        unit: "hhht-heating".into(),
                        text: "已检修".into(),
                    },
                ),
                contact(&lead, "hhht-housing"),
                reply(),
                review(),
                follow_up(Satisfaction::Unsatisfied),
            ],
            &mut at,
        );
        assert_eq!(o.status, OrderStatus::Handling);
        out.push(o);
        out
    }

    async fn temp_store() -> (Store, std::path::PathBuf) {
        let dir = std::env::temp_dir().join(format!(
            "hotline-order-import-{}-{}",
            std::process::id(),
            crate::call::record::now_ms()
        ));
        let url = format!("sqlite://{}/orders.db", dir.display());
        (Store::connect(&url).await.unwrap(), dir)
    }

    #[tokio::test]
    async fn imported_orders_read_back_list_and_fall_due() {
        let (store, dir) = temp_store().await;
        let orders = orders();
        let now = MONDAY_9 + 20 * HOUR;
        store.import_orders(&orders, PERCENTS, now).await.unwrap();
        store.import_orders(&[], PERCENTS, now).await.unwrap();

        for o in &orders {
            let (read, version) = store.order(&o.order_no).await.unwrap().unwrap();
            assert_eq!(&read, o);
            assert_eq!(version, 1);
            let audit = store.order_audit(&o.order_no).await.unwrap();
            assert_eq!(audit.len(), 1);
            assert_eq!((audit[0].action.as_str(), audit[0].at), ("import", now));
        }

        // Newest first, every order; then the projections' filters.
        let all = OrderFilter {
            limit: 50,
            ..OrderFilter::default()
        };
        let page = store.list_orders(&all, now).await.unwrap();
        let numbers: Vec<&str> = page.orders.iter().map(|o| o.order_no.as_str()).collect();
        assert_eq!(
            numbers,
            [
                "20261130000007",
                "20261130000003",
                "20261130000002",
                "20261130000001"
            ]
        );
        let listed = |filter: OrderFilter| {
            let store = store.clone();
            async move {
                let page = store.list_orders(&filter, now).await.unwrap();
                page.orders
                    .into_iter()
                    .map(|o| o.order_no)
                    .collect::<Vec<_>>()
            }
        };
        let unit = listed(OrderFilter {
            unit: Some("hhht-heating".into()),
            ..all.clone()
        })
        .await;
        assert_eq!(unit, ["20261130000007", "20261130000003"]);
        let dispatched = listed(OrderFilter {
            status: Some(OrderStatus::Dispatched),
            ..all.clone()
        })
        .await;
        assert_eq!(dispatched, ["20261130000003"]);
        let phone = listed(OrderFilter {
            phone: Some("13800000002".into()),
            ..all.clone()
        })
        .await;
        assert_eq!(phone, ["20261130000007", "20261130000002"]);
        let category = listed(OrderFilter {
            category: Some("0101".into()),
            ..all.clone()
        })
        .await;
        assert_eq!(
            category,
            ["20261130000007", "20261130000002", "20261130000001"]
        );

        // The reworked order keeps one row per step and unit: the running
        // contact clock, not the stopped one before it.
        let (unit, stopped): (String, Option<i64>) = sqlx::query_as(
            "SELECT unit, stopped_at FROM order_clocks \
             WHERE order_no = '20261130000007' AND kind = 'contact' AND unit = 'hhht-housing'",
        )
        .fetch_one(&store.pool)
        .await
        .unwrap();
        assert_eq!((unit.as_str(), stopped), ("hhht-housing", None));
        let rows: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM order_assignments WHERE order_no = '20261130000007'",
        )
        .fetch_one(&store.pool)
        .await
        .unwrap();
        assert_eq!(rows, 2);

        // Nothing is due at import; the dispatch clock of the accepted
        // order, then the dispatched order's sign clocks, come due later.
        assert!(
            store
                .clocks_due(now - 19 * HOUR, 100)
                .await
                .unwrap()
                .is_empty()
        );
        let due = store.clocks_due(now + 30 * 24 * HOUR, 100).await.unwrap();
        let of = |no: &str| {
            due.iter()
                .filter(|c| c.order_no == no)
                .map(|c| (c.unit.clone(), c.kind))
                .collect::<Vec<_>>()
        };
        assert_eq!(of("20261130000002"), [(None, ClockKind::Dispatch)]);
        let three = of("20261130000003");
        assert_eq!(three.len(), 6);
        for unit in ["hhht-housing", "hhht-heating"] {
            for kind in [ClockKind::Sign, ClockKind::Contact, ClockKind::Handle] {
                assert!(
                    three.contains(&(Some(unit.into()), kind)),
                    "{unit} {kind:?}"
                );
            }
        }
        assert!(of("20261130000001").is_empty());

        // A new order that day takes the number after the highest imported.
        let agent = person("agent-1", Role::Agent, None);
        let written = store
            .create_order("20261130", &agent, now, PERCENTS, None, |no| {
                Ok((
                    WorkOrder::new(no, intake("13900000000", "0201"), &agent, now),
                    Vec::new(),
                ))
            })
            .await
            .unwrap();
        assert_eq!(written.order.order_no, "20261130000008");

        // Importing a number already there writes nothing of that call.
        let mut again = orders[0].clone();
        again.order_no = "20261130000009".into();
        let dup = orders[1].clone();
        assert!(
            store
                .import_orders(&[again, dup], PERCENTS, now)
                .await
                .is_err()
        );
        assert!(store.order("20261130000009").await.unwrap().is_none());

        store.close().await;
        std::fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn numbers_split_into_day_and_sequence() {
        assert_eq!(day_and_seq("20261130000042"), Some(("20261130", 42)));
        assert_eq!(day_and_seq("LEGACY-0001"), None);
        assert_eq!(day_and_seq("2026113000004"), None);
    }
}
