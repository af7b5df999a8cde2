//! The monthly report as CSV: one table per section, in this layout
//!
//! ```text
//! # <section>
//! <header row>
//! <rows...>
//! <empty line>
//! ```
//!
//! Sections, in order: `calls` (one row per queue, first row `*` = the
//! hotline), `daily_calls`, `hotline`, `divisions`, `units`, `notices`,
//! `overdue`, `typical_cases`, `hot_topics`, `repeat_complaints`,
//! `late_events`. A rate is three columns, `<name>` (a fraction, empty when
//! nothing was counted), `<name>_numerator` and `<name>_denominator`; times
//! are Unix ms; lists of orders are joined by `;`. Fields are quoted as
//! RFC 4180 says when they hold a comma, quote or line break.

use super::kpi::{CallKpis, Mean, OrderKpis, Rate};
use super::monthly::MonthlyReport;
use std::fmt::Write;

fn field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_owned()
    }
}

fn row(out: &mut String, cells: &[String]) {
    let line: Vec<String> = cells.iter().map(|c| field(c)).collect();
    out.push_str(&line.join(","));
    out.push('\n');
}

fn section(out: &mut String, name: &str, header: &[String]) {
    if !out.is_empty() {
        out.push('\n');
    }
    let _ = writeln!(out, "# {name}");
    row(out, header);
}

fn rate_header(name: &str) -> [String; 3] {
    [
        name.to_owned(),
        format!("{name}_numerator"),
        format!("{name}_denominator"),
    ]
}

fn rate_cells(r: &Rate) -> [String; 3] {
    [
        r.rate.map(|v| v.to_string()).unwrap_or_default(),
        r.numerator.to_string(),
        r.denominator.to_string(),
    ]
}

fn mean_cell(m: &Mean) -> String {
    m.seconds.map(|s| s.to_string()).unwrap_or_default()
}

const CALL_RATES: [&str; 3] = [
    "connection_rate",
    "answered_within_15s_rate",
    "abandonment_rate",
];

fn call_cells(k: &CallKpis) -> Vec<String> {
    let mut v = vec![k.offered.to_string()];
    for r in [
        &k.connection_rate,
        &k.answered_within_15s_rate,
        &k.abandonment_rate,
    ] {
        v.extend(rate_cells(r));
    }
    v.push(mean_cell(&k.average_speed_of_answer));
    v.push(mean_cell(&k.average_handling_time));
    v
}

const ORDER_RATES: [&str; 10] = [
    "on_time_sign_rate",
    "response_rate",
    "on_time_closing_rate",
    "on_time_closing_original_rate",
    "return_rate",
    "extension_rate",
    "rework_rate",
    "follow_up_rate",
    "resolution_rate",
    "satisfaction_rate",
];

fn order_header() -> Vec<String> {
    let mut v = vec!["dispatched".to_owned(), "dispatched_as_lead".to_owned()];
    for r in ORDER_RATES {
        v.extend(rate_header(r));
    }
    v.extend(
        [
            "overdue_orders",
            "returns_rejected",
            "replies_sent_back",
            "late_co_handler_reports",
            "praise_orders",
        ]
        .map(String::from),
    );
    v
}

fn order_cells(k: &OrderKpis) -> Vec<String> {
    let mut v = vec![k.dispatched.to_string(), k.dispatched_as_lead.to_string()];
    for r in [
        &k.on_time_sign_rate,
        &k.response_rate,
        &k.on_time_closing_rate,
        &k.on_time_closing_original_rate,
        &k.return_rate,
        &k.extension_rate,
        &k.rework_rate,
        &k.follow_up_rate,
        &k.resolution_rate,
        &k.satisfaction_rate,
    ] {
        v.extend(rate_cells(r));
    }
    v.extend(
        [
            k.overdue_orders,
            k.returns_rejected,
            k.replies_sent_back,
            k.late_co_handler_reports,
            k.praise_orders,
        ]
        .map(|n| n.to_string()),
    );
    v
}

fn s<T: ToString>(x: T) -> String {
    x.to_string()
}

fn opt<T: ToString>(x: Option<T>) -> String {
    x.map(|v| v.to_string()).unwrap_or_default()
}

/// Renders every section.
pub fn render(r: &MonthlyReport) -> String {
    let mut out = String::new();
    let mut h = vec![s("queue"), s("offered")];
    for name in CALL_RATES {
        h.extend(rate_header(name));
    }
    h.extend([
        s("average_speed_of_answer_secs"),
        s("average_handling_time_secs"),
    ]);
    section(&mut out, "calls", &h);
    let mut first = vec![s("*")];
    first.extend(call_cells(&r.calls));
    row(&mut out, &first);
    for q in &r.queues {
        let mut v = vec![q.queue.clone()];
        v.extend(call_cells(&q.kpis));
        row(&mut out, &v);
    }

    section(
        &mut out,
        "daily_calls",
        &[s("day"), s("offered"), s("answered_within_15s")],
    );
    for d in &r.daily_calls {
        row(
            &mut out,
            &[s(d.day), s(d.offered), s(d.answered_within_15s)],
        );
    }

    let mut h = vec![s("month"), s("valid_appeals")];
    h.extend(rate_header("direct_answer_rate"));
    h.push(s("average_wrap_up_time_secs"));
    h.extend(order_header());
    h.extend([
        s("very_satisfied"),
        s("satisfied"),
        s("basically_satisfied"),
        s("unsatisfied"),
    ]);
    section(&mut out, "hotline", &h);
    let o = &r.hotline;
    let mut v = vec![r.month.clone(), s(o.valid_appeals)];
    v.extend(rate_cells(&o.direct_answer_rate));
    v.push(mean_cell(&r.average_wrap_up_time));
    v.extend(order_cells(&o.orders));
    let sat = &o.orders.satisfaction;
    v.extend([
        s(sat.very_satisfied),
        s(sat.satisfied),
        s(sat.basically_satisfied),
        s(sat.unsatisfied),
    ]);
    row(&mut out, &v);

    let mut h = vec![s("code"), s("name")];
    h.extend(order_header());
    section(&mut out, "divisions", &h);
    for d in &r.divisions {
        let mut v = vec![d.code.clone(), d.name.clone()];
        v.extend(order_cells(&d.kpis));
        row(&mut out, &v);
    }

    let mut h = [
        "unit",
        "name",
        "division",
        "rank",
        "score_base",
        "score_bonus",
        "score_deduction",
        "score_total",
        "tier",
    ]
    .map(String::from)
    .to_vec();
    h.extend(order_header());
    section(&mut out, "units", &h);
    for u in &r.units {
        let plus: f64 = u
            .score
            .bonuses
            .iter()
            .map(|a| a.points)
            .fold(0.0, |a, b| a + b);
        let minus: f64 = u
            .score
            .deductions
            .iter()
            .map(|a| a.points)
            .fold(0.0, |a, b| a + b);
        let tier = u
            .score
            .tier
            .map(|t| {
                serde_json::to_value(t)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default()
            })
            .unwrap_or_default();
        let mut v = vec![
            u.unit.clone(),
            u.name.clone(),
            u.division.clone(),
            opt(u.rank),
            opt(u.score.base),
            s(plus),
            s(minus),
            opt(u.score.total),
            tier,
        ];
        v.extend(order_cells(&u.kpis));
        row(&mut out, &v);
    }

    section(
        &mut out,
        "notices",
        &[s("unit"), s("rule"), s("month"), s("orders")],
    );
    for n in &r.notices {
        let rule = serde_json::to_value(n.rule)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        row(
            &mut out,
            &[n.unit.clone(), rule, n.month.clone(), n.orders.join(";")],
        );
    }

    section(
        &mut out,
        "overdue",
        &[
            s("order_no"),
            s("unit"),
            s("step"),
            s("due_at"),
            s("done_at"),
            s("hours_late"),
        ],
    );
    for x in &r.overdue {
        row(
            &mut out,
            &[
                x.order_no.clone(),
                x.unit.clone(),
                x.step.clone(),
                s(x.due_at),
                opt(x.done_at),
                s(x.hours_late),
            ],
        );
    }

    section(
        &mut out,
        "typical_cases",
        &[
            s("order_no"),
            s("kind"),
            s("appeal_type"),
            s("category"),
            s("division"),
            s("lead_unit"),
            s("summary"),
        ],
    );
    for t in &r.typical_cases {
        let appeal = serde_json::to_value(t.appeal_type)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        row(
            &mut out,
            &[
                t.order_no.clone(),
                t.kind.clone(),
                appeal,
                t.category.clone(),
                t.division.clone(),
                t.lead_unit.clone().unwrap_or_default(),
                t.summary.clone(),
            ],
        );
    }

    section(
        &mut out,
        "hot_topics",
        &[s("entry_id"), s("title"), s("category"), s("hits")],
    );
    for t in &r.hot_topics {
        row(
            &mut out,
            &[
                t.entry_id.clone(),
                t.title.clone(),
                t.category.clone(),
                s(t.hits),
            ],
        );
    }

    section(
        &mut out,
        "repeat_complaints",
        &[s("by"), s("key"), s("category"), s("count"), s("orders")],
    );
    for x in &r.repeat_complaints {
        row(
            &mut out,
            &[
                x.by.clone(),
                x.key.clone(),
                x.category.clone().unwrap_or_default(),
                s(x.orders.len()),
                x.orders.join(";"),
            ],
        );
    }

    section(
        &mut out,
        "late_events",
        &[s("from_month"), s("count"), s("note")],
    );
    for n in &r.late_events {
        row(
            &mut out,
            &[n.from_month.clone(), s(n.count), n.note.clone()],
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_only_when_needed() {
        assert_eq!(field("plain"), "plain");
        assert_eq!(field("a,b"), "\"a,b\"");
        assert_eq!(field("say \"hi\""), "\"say \"\"hi\"\"\"");
    }
}
