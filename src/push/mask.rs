//! Personal data in pushed payloads, masked per `[push] mask` (art. 15).
//!
//! The outbox keeps events as recorded, so a change of policy applies to
//! everything not yet pushed; masking happens here, on the way out, with
//! the same rules the API uses ([`crate::auth::mask`]). A citizen who asked
//! for confidentiality is masked whole unless the mode is `none`.

use super::config::MaskMode;
use crate::auth::mask::{mask_name, mask_phone};
use serde_json::Value;

/// Masks the personal fields of one event's payload in place.
pub fn mask_payload(payload: &mut Value, mode: MaskMode) {
    if mode == MaskMode::None {
        return;
    }
    if let Some(citizen) = payload.pointer_mut("/order/intake/citizen") {
        let whole = mode == MaskMode::Full
            || citizen.get("confidential").and_then(Value::as_bool) == Some(true);
        mask_field(citizen, "phone", whole, mask_phone);
        mask_field(citizen, "name", whole, mask_name);
    }
    if let Some(call) = payload.pointer_mut("/call") {
        mask_field(call, "caller", mode == MaskMode::Full, mask_phone);
    }
}

fn mask_field(object: &mut Value, key: &str, whole: bool, partial: fn(&str) -> String) {
    if let Some(text) = object.get(key).and_then(Value::as_str) {
        let masked = if whole {
            "*".repeat(text.trim().chars().count())
        } else {
            partial(text)
        };
        object[key] = Value::String(masked);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn order(confidential: bool) -> Value {
        json!({"order_no": "20261201000001", "order": {"intake": {"citizen": {
            "name": "张三", "phone": "13800138000", "confidential": confidential}}}})
    }

    #[test]
    fn partial_keeps_what_the_api_shows_units() {
        let mut v = order(false);
        mask_payload(&mut v, MaskMode::Partial);
        assert_eq!(v["order"]["intake"]["citizen"]["phone"], "138****8000");
        assert_eq!(v["order"]["intake"]["citizen"]["name"], "张*");
        let mut call = json!({"call": {"caller": "13800138000", "callee": "12345"}});
        mask_payload(&mut call, MaskMode::Partial);
        assert_eq!(call["call"]["caller"], "138****8000");
        assert_eq!(call["call"]["callee"], "12345");
    }

    #[test]
    fn full_and_confidential_hide_everything() {
        for (mode, confidential) in [(MaskMode::Full, false), (MaskMode::Partial, true)] {
            let mut v = order(confidential);
            mask_payload(&mut v, mode);
            assert_eq!(v["order"]["intake"]["citizen"]["phone"], "***********");
            assert_eq!(v["order"]["intake"]["citizen"]["name"], "**");
        }
        let mut call = json!({"call": {"caller": "13800138000"}});
        mask_payload(&mut call, MaskMode::Full);
        assert_eq!(call["call"]["caller"], "***********");
    }

    #[test]
    fn none_leaves_the_payload_as_recorded() {
        let mut v = order(true);
        mask_payload(&mut v, MaskMode::None);
        assert_eq!(v, order(true));
    }

    #[test]
    fn payloads_without_personal_data_are_untouched() {
        let seat = json!({"seat": {"seat": "1001", "status": "available"}});
        let mut v = seat.clone();
        mask_payload(&mut v, MaskMode::Full);
        assert_eq!(v, seat);
    }
}
