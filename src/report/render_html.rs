//! The monthly report as one self-contained, printable HTML page with
//! Chinese headings: styles inline, charts as inline SVG ([`super::charts`]),
//! nothing fetched. It reads only the [`MonthlyReport`], so a published
//! month prints the same page whenever it is rendered.

use super::charts;
use super::kpi::{Mean, OrderKpis, Rate};
use super::month::local_time;
use super::monthly::{DivisionRow, MonthlyReport};
use std::fmt::Write;

const STYLE: &str = "body{font-family:'Noto Sans CJK SC','Microsoft YaHei',sans-serif;margin:2em;color:#222}\
h1{font-size:1.6em;border-bottom:3px solid #a00;padding-bottom:.3em}h2{font-size:1.25em;margin-top:1.6em;border-left:5px solid #a00;padding-left:.4em}\
table{border-collapse:collapse;margin:.6em 0;font-size:.9em}th,td{border:1px solid #999;padding:.25em .5em;text-align:right}\
th{background:#eee}td.t,th.t{text-align:left;white-space:nowrap}.note{color:#555;font-size:.85em}svg{max-width:100%;height:auto}\
@page{size:A4 landscape;margin:12mm}@media print{body{margin:0;font-size:10pt}h2{page-break-after:avoid}table,svg{page-break-inside:avoid}}";

/// Overdue steps listed on the page; the JSON and CSV list them all.
const OVERDUE_ROWS: usize = 200;

/// Escapes text for HTML.
fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// `75.00% (3/4)`, or `—` when nothing was counted.
fn rate(r: &Rate) -> String {
    match r.rate {
        Some(v) => format!("{:.2}% ({}/{})", v * 100.0, r.numerator, r.denominator),
        None => "—".into(),
    }
}

fn mean(m: &Mean) -> String {
    m.seconds
        .map(|s| format!("{s:.1} 秒"))
        .unwrap_or_else(|| "—".into())
}

fn opt(x: Option<f64>) -> String {
    x.map(|v| format!("{v:.2}")).unwrap_or_else(|| "—".into())
}

const ORDER_COLUMNS: [&str; 10] = [
    "按时签收率",
    "响应率",
    "按期办结率",
    "退回率",
    "延期率",
    "重办率",
    "回访率",
    "解决率",
    "满意率",
    "超期件",
];

fn order_cells(k: &OrderKpis) -> String {
    let mut s = String::new();
    for r in [
        &k.on_time_sign_rate,
        &k.response_rate,
        &k.on_time_closing_rate,
        &k.return_rate,
        &k.extension_rate,
        &k.rework_rate,
        &k.follow_up_rate,
        &k.resolution_rate,
        &k.satisfaction_rate,
    ] {
        let _ = write!(s, "<td>{}</td>", rate(r));
    }
    let _ = write!(s, "<td>{}</td>", k.overdue_orders);
    s
}

fn head(columns: &[&str]) -> String {
    let mut s = String::from("<tr>");
    for (i, c) in columns.iter().enumerate() {
        let class = if i < 2 { " class=\"t\"" } else { "" };
        let _ = write!(s, "<th{class}>{}</th>", esc(c));
    }
    s.push_str("</tr>\n");
    s
}

/// Renders the page.
pub fn render(r: &MonthlyReport) -> String {
    let offset =
        crate::ivr::clock::parse_offset(&r.utc_offset).unwrap_or(time::macros::offset!(+08:00));
    let mut h = String::with_capacity(64 * 1024);
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"zh-CN\">\n<head>\n<meta charset=\"utf-8\">\n\
         <title>12345热线月度报告 {m}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n\
         <h1>12345政务服务便民热线 {m} 月度运行报告</h1>\n",
        m = esc(&r.month)
    );
    let status = match r.published_at {
        Some(at) => format!(
            "已发布（{} UTC{}）",
            local_time(at, offset),
            esc(&r.utc_offset)
        ),
        None => "草稿（未发布，数据可能变化）".into(),
    };
    let _ = writeln!(
        h,
        "<p class=\"note\">统计期间：{} 至 {}（UTC{}）。状态：{status}。</p>",
        local_time(r.from_ms, offset),
        local_time(r.to_ms, offset),
        esc(&r.utc_offset)
    );
    for n in &r.late_events {
        let _ = writeln!(h, "<p class=\"note\">说明：{}</p>", esc(&n.note));
    }

    // 一、话务
    let c = &r.calls;
    let _ = write!(
        h,
        "<h2>一、话务服务</h2>\n<table>\n{}<tr><td class=\"t\">全部</td><td class=\"t\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
        head(&[
            "队列",
            "请求人工",
            "接通率",
            "15秒接通率",
            "放弃率",
            "平均应答时长",
            "平均通话时长",
            "平均话后处理时长",
        ]),
        c.offered,
        rate(&c.connection_rate),
        rate(&c.answered_within_15s_rate),
        rate(&c.abandonment_rate),
        mean(&c.average_speed_of_answer),
        mean(&c.average_handling_time),
        mean(&r.average_wrap_up_time)
    );
    for q in &r.queues {
        let k = &q.kpis;
        let _ = writeln!(
            h,
            "<tr><td class=\"t\">{}</td><td class=\"t\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td></td></tr>",
            esc(&q.queue),
            k.offered,
            rate(&k.connection_rate),
            rate(&k.answered_within_15s_rate),
            rate(&k.abandonment_rate),
            mean(&k.average_speed_of_answer),
            mean(&k.average_handling_time)
        );
    }
    h.push_str("</table>\n");
    h.push_str(&charts::daily_calls(&r.daily_calls));

    // 二、工单总体
    let o = &r.hotline;
    let _ = write!(
        h,
        "\n<h2>二、工单办理总体情况</h2>\n<table>\n<tr><th class=\"t\">有效诉求</th><th>直接答复率</th><th>派单数</th>{}</tr>\n\
         <tr><td class=\"t\">{}</td><td>{}</td><td>{}</td>{}</tr>\n</table>\n",
        ORDER_COLUMNS
            .iter()
            .map(|c| format!("<th>{c}</th>"))
            .collect::<String>(),
        o.valid_appeals,
        rate(&o.direct_answer_rate),
        o.orders.dispatched,
        order_cells(&o.orders)
    );
    let sat = &o.orders.satisfaction;
    let _ = writeln!(
        h,
        "<p class=\"note\">回访评价：非常满意 {}，满意 {}，基本满意 {}，不满意 {}。</p>",
        sat.very_satisfied, sat.satisfied, sat.basically_satisfied, sat.unsatisfied
    );

    // 三、地区
    let mut cols = vec!["地区代码", "地区", "派单数"];
    cols.extend(ORDER_COLUMNS);
    let _ = write!(h, "<h2>三、各地区指标</h2>\n<table>\n{}", head(&cols));
    for d in &r.divisions {
        let _ = writeln!(
            h,
            "<tr><td class=\"t\">{}</td><td class=\"t\">{}</td><td>{}</td>{}</tr>",
            esc(&d.code),
            esc(&d.name),
            d.kpis.dispatched,
            order_cells(&d.kpis)
        );
    }
    h.push_str("</table>\n");
    let charted: Vec<&DivisionRow> = r
        .divisions
        .iter()
        .filter(|d| d.kpis.dispatched > 0)
        .take(12)
        .collect();
    h.push_str(&charts::division_rates(&charted));

    // 四、单位考核
    let mut cols = vec![
        "单位",
        "名称",
        "排名",
        "基础分",
        "加分",
        "减分",
        "总分",
        "等次",
        "派单数",
    ];
    cols.extend(ORDER_COLUMNS);
    let _ = write!(h, "\n<h2>四、承办单位考核</h2>\n<table>\n{}", head(&cols));
    for u in &r.units {
        let s = &u.score;
        let plus: f64 = s.bonuses.iter().map(|a| a.points).fold(0.0, |a, b| a + b);
        let minus: f64 = s
            .deductions
            .iter()
            .map(|a| a.points)
            .fold(0.0, |a, b| a + b);
        let _ = writeln!(
            h,
            "<tr><td class=\"t\">{}</td><td class=\"t\">{}</td><td>{}</td><td>{}</td><td>{plus:.2}</td><td>{minus:.2}</td><td>{}</td><td>{}</td><td>{}</td>{}</tr>",
            esc(&u.unit),
            esc(&u.name),
            u.rank.map(|r| r.to_string()).unwrap_or_else(|| "—".into()),
            opt(s.base),
            opt(s.total),
            s.tier.map(|t| t.label()).unwrap_or("不参评"),
            u.kpis.dispatched,
            order_cells(&u.kpis)
        );
    }
    h.push_str("</table>\n");
    h.push_str(&charts::tiers(&r.tiers));

    // 五、通报
    h.push_str("\n<h2>五、通报</h2>\n");
    if r.notices.is_empty() {
        h.push_str("<p>本月无通报。</p>\n");
    } else {
        let _ = write!(h, "<table>\n{}", head(&["单位", "事由", "月份", "工单"]));
        for n in &r.notices {
            let _ = writeln!(
                h,
                "<tr><td class=\"t\">{}</td><td class=\"t\">{}</td><td>{}</td><td class=\"t\">{}</td></tr>",
                esc(&n.unit),
                n.rule.label(),
                esc(&n.month),
                esc(&n.orders.join("、"))
            );
        }
        h.push_str("</table>\n");
    }

    // 六、超期
    h.push_str("<h2>六、超期工单</h2>\n");
    if r.overdue.is_empty() {
        h.push_str("<p>本月无超期工单。</p>\n");
    } else {
        let _ = write!(
            h,
            "<table>\n{}",
            head(&["工单号", "单位", "环节", "期限", "完成时间", "超期（小时）"])
        );
        for x in r.overdue.iter().take(OVERDUE_ROWS) {
            let _ = writeln!(
                h,
                "<tr><td class=\"t\">{}</td><td class=\"t\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.2}</td></tr>",
                esc(&x.order_no),
                esc(&x.unit),
                if x.step == "handle" {
                    "答复"
                } else {
                    "协办反馈"
                },
                local_time(x.due_at, offset),
                x.done_at
                    .map(|t| local_time(t, offset))
                    .unwrap_or_else(|| "未完成".into()),
                x.hours_late
            );
        }
        h.push_str("</table>\n");
    }

    if r.overdue.len() > OVERDUE_ROWS {
        let _ = writeln!(
            h,
            "<p class=\"note\">共 {} 件超期，此处列出期限最早的 {OVERDUE_ROWS} 件；完整清单见 JSON 或 CSV 格式。</p>",
            r.overdue.len()
        );
    }

    // 七、典型案例
    h.push_str("<h2>七、典型案例</h2>\n");
    if r.typical_cases.is_empty() {
        h.push_str("<p>本月无典型案例。</p>\n");
    } else {
        let _ = write!(
            h,
            "<table>\n{}",
            head(&["工单号", "类型", "分类", "地区", "主办单位", "诉求摘要"])
        );
        for t in &r.typical_cases {
            let kind = match t.kind.as_str() {
                "escalated" => "提级督办",
                "reworked" => "重办",
                _ => "表扬",
            };
            let _ = writeln!(
                h,
                "<tr><td class=\"t\">{}</td><td class=\"t\">{kind}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"t\">{}</td></tr>",
                esc(&t.order_no),
                esc(&t.category),
                esc(&t.division),
                esc(t.lead_unit.as_deref().unwrap_or("—")),
                esc(&t.summary)
            );
        }
        h.push_str("</table>\n");
    }

    // 八、热点
    h.push_str("<h2>八、热点问题</h2>\n");
    if r.hot_topics.is_empty() {
        h.push_str("<p>本月无知识库热点。</p>\n");
    } else {
        let _ = write!(
            h,
            "<table>\n{}",
            head(&["知识条目", "标题", "分类", "使用次数"])
        );
        for t in &r.hot_topics {
            let _ = writeln!(
                h,
                "<tr><td class=\"t\">{}</td><td class=\"t\">{}</td><td>{}</td><td>{}</td></tr>",
                esc(&t.entry_id),
                esc(&t.title),
                esc(&t.category),
                t.hits
            );
        }
        h.push_str("</table>\n");
    }

    // 九、重复投诉
    h.push_str("<h2>九、重复投诉</h2>\n");
    if r.repeat_complaints.is_empty() {
        h.push_str("<p>本月无重复投诉。</p>\n");
    } else {
        let _ = write!(
            h,
            "<table>\n{}",
            head(&["依据", "诉求人或地点", "分类", "次数", "工单"])
        );
        for x in &r.repeat_complaints {
            let _ = writeln!(
                h,
                "<tr><td class=\"t\">{}</td><td class=\"t\">{}</td><td>{}</td><td>{}</td><td class=\"t\">{}</td></tr>",
                if x.by == "citizen" {
                    "同一诉求人"
                } else {
                    "同一地点同类问题"
                },
                esc(&x.key),
                esc(x.category.as_deref().unwrap_or("—")),
                x.orders.len(),
                esc(&x.orders.join("、"))
            );
        }
        h.push_str("</table>\n");
    }
    h.push_str(
        "<p class=\"note\">指标口径：每项指标计入其决定事件所在月份（本地时间）；比率注明分子/分母，分母为零时记为“—”。\
         电话号码、姓名均已脱敏（《管理办法》第十五条）。</p>\n</body>\n</html>\n",
    );
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_and_formats() {
        assert_eq!(esc("<a&'\">"), "&lt;a&amp;&#39;&quot;&gt;");
        let r = Rate {
            numerator: 3,
            denominator: 4,
            rate: Some(0.75),
        };
        assert_eq!(rate(&r), "75.00% (3/4)");
        assert_eq!(rate(&Rate::default()), "—");
    }
}
