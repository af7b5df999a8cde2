//! The monthly report's charts, drawn server-side as SVG with plotters (its
//! SVG backend only, no fonts loaded: text stays text for the browser to
//! draw), so the HTML file needs nothing else to print. The same report
//! always gives the same bytes.

use super::kpi::DayCalls;
use super::monthly::{DivisionRow, TierCount};
use plotters::prelude::*;

const BAR: RGBColor = RGBColor(0x3b, 0x6e, 0xa8);
const LINE: RGBColor = RGBColor(0xc0, 0x39, 0x2b);
const PALETTE: [RGBColor; 3] = [
    RGBColor(0x3b, 0x6e, 0xa8),
    RGBColor(0x2e, 0x8b, 0x57),
    RGBColor(0xe0, 0x8e, 0x0b),
];
const FONT: &str = "sans-serif";

type Failure = Box<dyn std::error::Error>;

/// Labels a count axis at whole numbers only (small counts would repeat).
fn whole(y: &f64) -> String {
    if (y - y.round()).abs() < 1e-6 {
        format!("{y:.0}")
    } else {
        String::new()
    }
}

/// Stands in for a chart plotters could not draw (never expected).
fn fallback(title: &str, e: &Failure) -> String {
    tracing::warn!("chart {title}: {e}");
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"720\" height=\"40\"><text x=\"10\" y=\"25\">{title}</text></svg>"
    )
}

/// Calls offered per day (bars) and the share answered within 15 s (line).
pub fn daily_calls(days: &[DayCalls]) -> String {
    let title = "每日来电量与15秒接通率";
    draw(title, (720, 280), |root| {
        let n = days.len().max(1) as f64;
        let max = days.iter().map(|d| d.offered).max().unwrap_or(0).max(1) as f64;
        let mut chart = ChartBuilder::on(root)
            .caption(title, (FONT, 16))
            .margin(10)
            .x_label_area_size(30)
            .y_label_area_size(50)
            .right_y_label_area_size(50)
            .build_cartesian_2d(0.5f64..n + 0.5, 0f64..max * 1.1)?
            .set_secondary_coord(0.5f64..n + 0.5, 0f64..100.0);
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(16)
            .x_label_formatter(&|x| format!("{x:.0}"))
            .y_label_formatter(&whole)
            .x_desc("日")
            .y_desc("来电量")
            .draw()?;
        chart
            .configure_secondary_axes()
            .y_label_formatter(&|y| format!("{y:.0}%"))
            .y_desc("15秒接通率")
            .draw()?;
        chart.draw_series(days.iter().map(|d| {
            let x = f64::from(d.day);
            Rectangle::new(
                [(x - 0.35, 0.0), (x + 0.35, d.offered as f64)],
                BAR.filled(),
            )
        }))?;
        chart.draw_secondary_series(LineSeries::new(
            days.iter().filter(|d| d.offered > 0).map(|d| {
                (
                    f64::from(d.day),
                    d.answered_within_15s as f64 * 100.0 / d.offered as f64,
                )
            }),
            LINE.stroke_width(2),
        ))?;
        Ok(())
    })
}

/// Response, resolution and satisfaction rates of each division.
pub fn division_rates(divisions: &[&DivisionRow]) -> String {
    let title = "各地区响应率、解决率、满意率";
    draw(title, (720, 300), |root| {
        let n = divisions.len().max(1) as f64;
        let mut chart = ChartBuilder::on(root)
            .caption(title, (FONT, 16))
            .margin(10)
            .x_label_area_size(40)
            .y_label_area_size(50)
            .build_cartesian_2d(-0.5f64..n - 0.5, 0f64..100.0)?;
        let names: Vec<String> = divisions.iter().map(|d| d.name.clone()).collect();
        let label = move |x: &f64| {
            let i = x.round();
            if (x - i).abs() < 1e-9 && i >= 0.0 {
                names.get(i as usize).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        };
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(divisions.len().max(1) * 2 + 1)
            .x_label_formatter(&label)
            .y_label_formatter(&|y| format!("{y:.0}%"))
            .draw()?;
        let series = ["响应率", "解决率", "满意率"];
        for (s, name) in series.iter().enumerate() {
            let color = PALETTE[s];
            chart
                .draw_series(divisions.iter().enumerate().map(|(i, d)| {
                    let rate = match s {
                        0 => d.kpis.response_rate.rate,
                        1 => d.kpis.resolution_rate.rate,
                        _ => d.kpis.satisfaction_rate.rate,
                    }
                    .unwrap_or(0.0);
                    let x = i as f64 - 0.3 + s as f64 * 0.2;
                    Rectangle::new([(x - 0.09, 0.0), (x + 0.09, rate * 100.0)], color.filled())
                }))?
                .label(*name)
                .legend(move |(x, y)| {
                    Rectangle::new([(x, y - 5), (x + 10, y + 5)], color.filled())
                });
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()?;
        Ok(())
    })
}

/// How many units fell in each tier.
pub fn tiers(tiers: &[TierCount]) -> String {
    let title = "承办单位考核等次分布";
    draw(title, (480, 260), |root| {
        let max = tiers.iter().map(|t| t.units).max().unwrap_or(0).max(1) as f64;
        let n = tiers.len().max(1) as f64;
        let labels: Vec<String> = tiers.iter().map(|t| t.label.clone()).collect();
        let label = move |x: &f64| {
            let i = x.round();
            if (x - i).abs() < 1e-9 && i >= 0.0 {
                labels.get(i as usize).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        };
        let mut chart = ChartBuilder::on(root)
            .caption(title, (FONT, 16))
            .margin(10)
            .x_label_area_size(30)
            .y_label_area_size(40)
            .build_cartesian_2d(-0.5f64..n - 0.5, 0f64..max * 1.2)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(tiers.len() * 2 + 1)
            .x_label_formatter(&label)
            .y_label_formatter(&whole)
            .y_desc("单位数")
            .draw()?;
        chart.draw_series(tiers.iter().enumerate().map(|(i, t)| {
            let x = i as f64;
            Rectangle::new([(x - 0.3, 0.0), (x + 0.3, t.units as f64)], BAR.filled())
        }))?;
        Ok(())
    })
}

fn draw(
    title: &str,
    size: (u32, u32),
    plot: impl FnOnce(&DrawingArea<SVGBackend, plotters::coord::Shift>) -> Result<(), Failure>,
) -> String {
    let mut svg = String::new();
    let result = {
        let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
        root.fill(&WHITE)
            .map_err(|e| Box::new(e) as Failure)
            .and_then(|_| plot(&root))
            .and_then(|_| root.present().map_err(|e| Box::new(e) as Failure))
    };
    match result {
        Ok(()) => svg,
        Err(e) => fallback(title, &e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charts_are_svg_and_deterministic() {
        let days: Vec<DayCalls> = (1..=31)
            .map(|day| DayCalls {
                day,
                offered: u64::from(day % 7) * 10,
                answered_within_15s: u64::from(day % 7) * 9,
            })
            .collect();
        let a = daily_calls(&days);
        assert!(a.starts_with("<svg"), "{a}");
        assert!(a.contains("每日来电量"));
        assert_eq!(a, daily_calls(&days));
        let t = tiers(&[TierCount {
            tier: crate::report::score::Tier::Good,
            label: "良好".into(),
            units: 3,
        }]);
        assert!(t.contains("良好"), "{t}");
    }
}
