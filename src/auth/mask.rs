//! Masking of citizens' personal data for users who may not see it
//! (measures art. 15: a caller's identity never leaks).
//!
//! Whoever renders an order or a call for a [`Role`](super::Role) without
//! [`sees_personal_data`](super::Role::sees_personal_data) passes the phone
//! number and name through here. The rules follow common Chinese practice
//! (`138****8000`, `张*`): enough is kept to recognise a caller on the phone,
//! not enough to call or find them. Anything these functions do not
//! understand is masked whole, never passed through.

/// Digits kept at the end of a number.
const TAIL: usize = 4;
/// Fewest digits a masked number hides; fewer and the tail goes too.
const MIN_HIDDEN: usize = 3;
/// Numbers with fewer digits (110, 12345, 95598, extensions) are masked whole.
const MIN_DIGITS: usize = 7;

/// A phone number with its middle digits replaced by `*`, one per digit,
/// separators kept: a mobile keeps its first 3 and last 4 digits
/// (`138****8000`), a landline its area code and last 4 (`0471-***1234`),
/// a country code `+86`/`86`/`0086` stays; short numbers become all `*`.
pub fn mask_phone(phone: &str) -> String {
    let phone = phone.trim();
    let plain = phone
        .chars()
        .all(|c| c.is_ascii_digit() || matches!(c, '+' | '-' | ' ' | '(' | ')'));
    if !plain {
        // A SIP URI, "anonymous", full-width digits...: no safe partial view.
        return "*".repeat(phone.chars().count());
    }
    let digits: Vec<u8> = phone.bytes().filter(u8::is_ascii_digit).collect();
    let n = digits.len();
    let (head, tail) = if n < MIN_DIGITS {
        (0, 0)
    } else {
        let head = kept_head(phone, &digits);
        if n.saturating_sub(head + TAIL) >= MIN_HIDDEN {
            (head, TAIL)
        } else if n.saturating_sub(head) >= MIN_HIDDEN {
            (head, 0)
        } else {
            (0, 0)
        }
    };
    let mut index = 0;
    phone
        .chars()
        .map(|c| {
            if !c.is_ascii_digit() {
                return c;
            }
            let keep = index < head || index >= n - tail;
            index += 1;
            if keep { c } else { '*' }
        })
        .collect()
}

/// How many leading digits a number keeps: country code, then a mobile's
/// first three or a landline's area code.
fn kept_head(phone: &str, digits: &[u8]) -> usize {
    let n = digits.len();
    let international = phone.starts_with('+');
    let country = if international {
        if digits.starts_with(b"86") { 2 } else { 0 }
    } else if n == 15 && digits.starts_with(b"0086") {
        4
    } else if n == 13 && digits.starts_with(b"861") {
        2
    } else {
        0
    };
    if international && country == 0 {
        // Another country's plan: only the last digits are safe to show.
        return 0;
    }
    let national = &digits[country..];
    if national.len() == 11 && national[0] == b'1' {
        return country + 3;
    }
    if country > 0 {
        // +86 landline, the trunk 0 dropped: 10 and 2x have two-digit area
        // codes, the rest three (+86 471 ...).
        return country
            + if matches!(national[0], b'1' | b'2') {
                2
            } else {
                3
            };
    }
    if national[0] == b'0' {
        // Written with a separator, the first group is the area code.
        let group = phone
            .split(|c: char| !c.is_ascii_digit())
            .find(|g| !g.is_empty())
            .map_or(0, str::len);
        if phone.len() > group && (3..=4).contains(&group) {
            return group;
        }
        // 010 and 02x are three digits, every other area code four (0471).
        return if matches!(national.get(1), Some(b'1' | b'2')) {
            3
        } else {
            4
        };
    }
    0
}

/// A person's name with all but its first character replaced by `*`, one
/// per character, spaces kept: `张三` → `张*`, `欧阳娜娜` → `欧***`,
/// `Wang Fang` → `W*** ****`; a one-character name becomes `*`.
pub fn mask_name(name: &str) -> String {
    let name = name.trim();
    let mut chars = name.chars();
    let Some(first) = chars.next() else {
        return String::new();
    };
    if name.chars().nth(1).is_none() {
        return "*".to_owned();
    }
    let mut out = String::with_capacity(name.len());
    out.push(first);
    out.extend(chars.map(|c| if c.is_whitespace() { ' ' } else { '*' }));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mobiles_keep_first_three_and_last_four() {
        let cases = [
            ("13800138000", "138****8000"),
            (" 13800138000 ", "138****8000"),
            ("138-0013-8000", "138-****-8000"),
            ("138 0013 8000", "138 **** 8000"),
            ("+8613800138000", "+86138****8000"),
            ("+86 138 0013 8000", "+86 138 **** 8000"),
            ("8613800138000", "86138****8000"),
            ("008613800138000", "0086138****8000"),
        ];
        for (phone, want) in cases {
            assert_eq!(mask_phone(phone), want, "{phone:?}");
        }
    }

    #[test]
    fn landlines_keep_area_code_and_last_four() {
        let cases = [
            ("0471-6601234", "0471-***1234"),
            ("04716601234", "0471***1234"),
            ("(0471) 6601234", "(0471) ***1234"),
            ("010-12345678", "010-****5678"),
            ("01012345678", "010****5678"),
            ("02112345678", "021****5678"),
            ("0755 12345678", "0755 ****5678"),
            ("+86 471 6601234", "+86 471 ***1234"),
            ("+86 10 12345678", "+86 10 ****5678"),
            // Local numbers without an area code: only the last four.
            ("6601234", "***1234"),
            ("66012345", "****2345"),
            // Too short to show the tail too: the area code alone.
            ("0471-1234", "0471-****"),
        ];
        for (phone, want) in cases {
            assert_eq!(mask_phone(phone), want, "{phone:?}");
        }
    }

    #[test]
    fn short_strange_and_foreign_numbers_are_masked_whole_or_nearly() {
        let cases = [
            ("", ""),
            ("110", "***"),
            ("12345", "*****"),
            ("95598", "*****"),
            ("1234-56", "****-**"),
            ("anonymous", "*********"),
            ("sip:13800138000@10.0.0.1", "************************"),
            ("１３８００１３８０００", "***********"),
            ("+1 415 555 0100", "+* *** *** 0100"),
            ("+44 20 7946 0958", "+** ** **** 0958"),
        ];
        for (phone, want) in cases {
            assert_eq!(mask_phone(phone), want, "{phone:?}");
        }
    }

    #[test]
    fn masked_numbers_never_show_more_than_they_hide_allows() {
        // Whatever the input, at least three digits are hidden, or all.
        for phone in [
            "1234567",
            "0471123",
            "+8612345",
            "86123456789",
            "0086123",
            "+86 0471 12",
        ] {
            let masked = mask_phone(phone);
            assert_eq!(masked.chars().count(), phone.chars().count(), "{phone}");
            let hidden = masked.chars().filter(|&c| c == '*').count();
            assert!(hidden >= MIN_HIDDEN, "{phone} -> {masked}");
        }
    }

    #[test]
    fn names_keep_their_first_character() {
        let cases = [
            ("张三", "张*"),
            ("欧阳娜娜", "欧***"),
            ("李", "*"),
            ("  王小明 ", "王**"),
            ("买买提·艾力", "买*****"),
            ("Wang Fang", "W*** ****"),
            ("Li", "L*"),
            ("J", "*"),
            ("", ""),
            ("   ", ""),
        ];
        for (name, want) in cases {
            assert_eq!(mask_name(name), want, "{name:?}");
        }
    }
}
