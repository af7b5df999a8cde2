//! What an audit entry says changed: the fields of the order document that
//! differ before and after a command, each with its old and new value.

use serde_json::{Map, Value, json};

/// `{"status": {"before": "dispatched", "after": "handling"}, ...}`, keyed by
/// the field's path (`assignments.0.state`). Lists that grew or shrank are
/// given whole, since element-by-element paths would mislead.
pub fn diff(before: &Value, after: &Value) -> Value {
    let mut out = Map::new();
    walk("", before, after, &mut out);
    Value::Object(out)
}

fn walk(path: &str, before: &Value, after: &Value, out: &mut Map<String, Value>) {
    if before == after {
        return;
    }
    let join = |key: &str| {
        if path.is_empty() {
            key.to_owned()
        } else {
            format!("{path}.{key}")
        }
    };
    match (before, after) {
        (Value::Object(a), Value::Object(b)) => {
            for (key, old) in a {
                walk(&join(key), old, b.get(key).unwrap_or(&Value::Null), out);
            }
            for (key, new) in b {
                if !a.contains_key(key) {
                    walk(&join(key), &Value::Null, new, out);
                }
            }
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => {
            for (i, (old, new)) in a.iter().zip(b).enumerate() {
                walk(&join(&i.to_string()), old, new, out);
            }
        }
        _ => {
            out.insert(path.to_owned(), json!({"before": before, "after": after}));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_changed_fields_are_listed() {
        let before = json!({"status": "dispatched", "n": 1, "list": [{"s": "a"}], "grow": [1]});
        let after = json!({"status": "handling", "n": 1, "list": [{"s": "b"}], "grow": [1, 2]});
        let d = diff(&before, &after);
        assert_eq!(
            d,
            json!({
                "status": {"before": "dispatched", "after": "handling"},
                "list.0.s": {"before": "a", "after": "b"},
                "grow": {"before": [1], "after": [1, 2]},
            })
        );
        assert_eq!(diff(&before, &before), json!({}));
        assert_eq!(
            diff(&Value::Null, &json!({"a": 1})),
            json!({"": {"before": null, "after": {"a": 1}}})
        );
    }
}
