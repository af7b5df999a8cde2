//! `say` nodes: turn a value into a list of digit prompts.
//!
//! Numbers are read the Chinese way (万, 千, 百, 十 with 零 for gaps), which
//! also suits Mongolian recordings closely enough for digits, times and queue
//! positions; a language that needs other rules gets its own function here.

use super::model::SayKind;

/// Prompt names for a value, or `None` when the value does not fit the kind.
pub fn prompts(kind: SayKind, value: &str) -> Option<Vec<String>> {
    let value = value.trim();
    match kind {
        SayKind::Digits => {
            if value.is_empty() || !value.chars().all(|c| c.is_ascii_digit()) {
                return None;
            }
            Some(value.chars().map(digit).collect())
        }
        SayKind::Number => number(value.parse().ok()?),
        SayKind::Time => {
            let (h, m) = value.split_once(':')?;
            let (h, m): (u64, u64) = (h.parse().ok()?, m.parse().ok()?);
            if h > 23 || m > 59 {
                return None;
            }
            let mut out = number(h)?;
            out.push("hour".into());
            if m > 0 {
                if m < 10 {
                    out.push(digit('0'));
                }
                out.extend(number(m)?);
                out.push("minute".into());
            }
            Some(out)
        }
        SayKind::QueuePosition => {
            let n: u64 = value.parse().ok()?;
            let mut out = vec!["queue_position_before".to_string()];
            out.extend(number(n)?);
            out.push("queue_position_after".into());
            Some(out)
        }
    }
}

fn digit(c: char) -> String {
    format!("digit_{c}")
}

/// Reads 0..=99_999_999 the Chinese way: 105 → 一百零五, 12 → 十二.
fn number(n: u64) -> Option<Vec<String>> {
    if n >= 100_000_000 {
        return None;
    }
    if n == 0 {
        return Some(vec![digit('0')]);
    }
    let mut out = Vec::new();
    let high = n / 10_000;
    let low = n % 10_000;
    if high > 0 {
        below_10000(high, &mut out, true);
        out.push("ten_thousand".into());
        if low > 0 && low < 1000 {
            out.push(digit('0'));
        }
    }
    if low > 0 {
        below_10000(low, &mut out, high == 0);
    }
    Some(out)
}

fn below_10000(n: u64, out: &mut Vec<String>, leading: bool) {
    let places = [(1000, "thousand"), (100, "hundred"), (10, "ten")];
    let mut started = false;
    let mut pending_zero = false;
    for (unit, name) in places {
        let d = (n / unit) % 10;
        if d == 0 {
            if started {
                pending_zero = true;
            }
            continue;
        }
        if pending_zero {
            out.push(digit('0'));
            pending_zero = false;
        }
        // 十二, not 一十二, at the start of a number.
        if !(unit == 10 && d == 1 && !started && leading) {
            out.push(digit(char::from(b'0' + d as u8)));
        }
        out.push(name.into());
        started = true;
    }
    let ones = n % 10;
    if ones > 0 {
        if pending_zero {
            out.push(digit('0'));
        }
        out.push(digit(char::from(b'0' + ones as u8)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn say(kind: SayKind, v: &str) -> String {
        prompts(kind, v)
            .unwrap()
            .iter()
            .map(|p| match p.strip_prefix("digit_") {
                Some(d) => "零一二三四五六七八九"
                    .chars()
                    .nth(d.parse().unwrap())
                    .unwrap()
                    .to_string(),
                None => match p.as_str() {
                    "ten" => "十".into(),
                    "hundred" => "百".into(),
                    "thousand" => "千".into(),
                    "ten_thousand" => "万".into(),
                    "hour" => "点".into(),
                    "minute" => "分".into(),
                    "queue_position_before" => "前".into(),
                    "queue_position_after" => "位".into(),
                    other => other.into(),
                },
            })
            .collect()
    }

    #[test]
    fn chinese_numbers() {
        let cases = [
            ("0", "零"),
            ("7", "七"),
            ("10", "十"),
            ("12", "十二"),
            ("20", "二十"),
            ("105", "一百零五"),
            ("110", "一百一十"),
            ("1001", "一千零一"),
            ("1010", "一千零一十"),
            ("12345", "一万二千三百四十五"),
            ("10005", "一万零五"),
            ("100000", "十万"),
            ("20300", "二万零三百"),
        ];
        for (n, want) in cases {
            assert_eq!(say(SayKind::Number, n), want, "{n}");
        }
        assert!(prompts(SayKind::Number, "100000000").is_none());
        assert!(prompts(SayKind::Number, "-1").is_none());
    }

    #[test]
    fn digits_times_positions() {
        assert_eq!(say(SayKind::Digits, "12345"), "一二三四五");
        assert_eq!(say(SayKind::Time, "08:05"), "八点零五分");
        assert_eq!(say(SayKind::Time, "20:00"), "二十点");
        assert_eq!(say(SayKind::Time, "14:30"), "十四点三十分");
        assert_eq!(say(SayKind::QueuePosition, "3"), "前三位");
        assert!(prompts(SayKind::Time, "25:00").is_none());
        assert!(prompts(SayKind::Digits, "12a").is_none());
    }
}
