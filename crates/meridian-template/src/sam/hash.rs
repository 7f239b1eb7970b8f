//! Logical ids that are content hashes, computed exactly as aws-sam-translator's
//! `LogicalIdGenerator` does: SHA-1 of Python's `json.dumps(data, separators=(",", ":"),
//! sort_keys=True)` (ASCII only, `\uXXXX` escapes), first 10 hex digits, appended to a prefix.

use serde_json::Value;
use sha1::{Digest, Sha1};

/// Length of the hash suffix; changing it would change every generated logical id.
pub(crate) const HASH_LENGTH: usize = 10;

/// `prefix` + hash of `data` (or the first 10 characters of `data_hash` when given).
/// An empty or missing `data` contributes no hash (as in SAM: `if data_obj:`).
pub(crate) fn logical_id(prefix: &str, data: Option<&Value>, data_hash: Option<&str>) -> String {
    if let Some(h) = data_hash.filter(|h| !h.is_empty()) {
        return format!("{prefix}{}", h.chars().take(HASH_LENGTH).collect::<String>());
    }
    let data_str = match data {
        Some(v) if super::truthy(v) => stringify(v),
        _ => String::new(),
    };
    if data_str.is_empty() {
        return prefix.to_string();
    }
    let digest = Sha1::digest(data_str.as_bytes());
    let hex = hex::encode(digest);
    format!("{prefix}{}", &hex[..HASH_LENGTH])
}

/// A string is hashed as itself; anything else as compact, key-sorted Python JSON.
pub(crate) fn stringify(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => python_json(other),
    }
}

/// Python's `json.dumps(v, separators=(",", ":"), sort_keys=True)`.
pub(crate) fn python_json(v: &Value) -> String {
    let mut out = String::new();
    write_value(v, &mut out, Style::COMPACT_SORTED);
    out
}

/// Python's plain `json.dumps(v)`: `", "` and `": "` separators, keys in their order.
pub(crate) fn python_json_dumps(v: &Value) -> String {
    let mut out = String::new();
    write_value(v, &mut out, Style::DEFAULT);
    out
}

/// Python's `json.dumps(v, sort_keys=True, indent=4, separators=(",", ": "))`.
pub(crate) fn python_json_indented(v: &Value) -> String {
    let mut out = String::new();
    write_value(v, &mut out, Style::INDENTED_SORTED);
    out
}

/// `json.dumps`' options that change its text.
#[derive(Clone, Copy)]
struct Style {
    sort_keys: bool,
    item_separator: &'static str,
    key_separator: &'static str,
    /// Spaces per level; with an indent every item starts a new line.
    indent: Option<usize>,
}

impl Style {
    const COMPACT_SORTED: Style = Style {
        sort_keys: true,
        item_separator: ",",
        key_separator: ":",
        indent: None,
    };
    const DEFAULT: Style = Style {
        sort_keys: false,
        item_separator: ", ",
        key_separator: ": ",
        indent: None,
    };
    const INDENTED_SORTED: Style = Style {
        sort_keys: true,
        item_separator: ",",
        key_separator: ": ",
        indent: Some(4),
    };

    /// What goes before an item at `depth` (after the separator, if any).
    fn newline(self, out: &mut String, depth: usize) {
        if let Some(n) = self.indent {
            out.push('\n');
            out.push_str(&" ".repeat(n * depth));
        }
    }
}

fn write_value(v: &Value, out: &mut String, style: Style) {
    write_nested(v, out, style, 0)
}

fn write_nested(v: &Value, out: &mut String, style: Style, depth: usize) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => {
            if n.is_f64() {
                out.push_str(&python_float(n.as_f64().unwrap_or(0.0)));
            } else {
                out.push_str(&n.to_string());
            }
        }
        Value::String(s) => write_string(s, out),
        Value::Array(items) if items.is_empty() => out.push_str("[]"),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(style.item_separator);
                }
                style.newline(out, depth + 1);
                write_nested(item, out, style, depth + 1);
            }
            style.newline(out, depth);
            out.push(']');
        }
        Value::Object(map) if map.is_empty() => out.push_str("{}"),
        Value::Object(map) => {
            // Python sorts str keys by code point; Rust's str ordering (UTF-8 bytes) is the same.
            let mut keys: Vec<&String> = map.keys().collect();
            if style.sort_keys {
                keys.sort();
            }
            out.push('{');
            for (i, k) in keys.iter().enumerate() {
                if i > 0 {
                    out.push_str(style.item_separator);
                }
                style.newline(out, depth + 1);
                write_string(k, out);
                out.push_str(style.key_separator);
                write_nested(&map[k.as_str()], out, style, depth + 1);
            }
            style.newline(out, depth);
            out.push('}');
        }
    }
}

fn write_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 || (c as u32) > 0x7e => {
                let mut buf = [0u16; 2];
                for unit in c.encode_utf16(&mut buf) {
                    out.push_str(&format!("\\u{:04x}", unit));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Python's `repr(float)`: the shortest round-trip digits, in positional notation when the
/// decimal exponent is in -4..16, otherwise as `d.ddde+XX`.
pub(crate) fn python_float(f: f64) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "Infinity".into() } else { "-Infinity".into() };
    }
    if f == 0.0 {
        return if f.is_sign_negative() {
            "-0.0".into()
        } else {
            "0.0".into()
        };
    }
    // Rust's `{:e}` gives the shortest round-trip digits: "1.2345e3", "-5e-7".
    let sci = format!("{:e}", f);
    let (mantissa, exp) = sci.split_once('e').unwrap_or((sci.as_str(), "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let negative = mantissa.starts_with('-');
    let digits: String = mantissa.chars().filter(|c| c.is_ascii_digit()).collect();
    let sign = if negative { "-" } else { "" };
    if (-4..16).contains(&exp) {
        let n = digits.len() as i32;
        let body = if exp >= 0 {
            if n > exp + 1 {
                format!("{}.{}", &digits[..(exp + 1) as usize], &digits[(exp + 1) as usize..])
            } else {
                format!("{}{}.0", digits, "0".repeat((exp + 1 - n) as usize))
            }
        } else {
            format!("0.{}{}", "0".repeat((-exp - 1) as usize), digits)
        };
        format!("{sign}{body}")
    } else {
        let m = if digits.len() > 1 {
            format!("{}.{}", &digits[..1], &digits[1..])
        } else {
            digits.clone()
        };
        let esign = if exp < 0 { "-" } else { "+" };
        format!("{sign}{m}e{esign}{:02}", exp.abs())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sorts_keys_compactly_and_escapes_like_python() {
        let v = json!({"b": [1, 2.5, true, null], "a": "é\"\n", "Z": {"y": 1, "x": "😀"}});
        assert_eq!(
            python_json(&v),
            r#"{"Z":{"x":"\ud83d\ude00","y":1},"a":"\u00e9\"\n","b":[1,2.5,true,null]}"#
        );
    }

    #[test]
    fn plain_dumps_keeps_key_order_with_spaced_separators() {
        let v = json!({"b": [1, "é"], "a": {"y": null}});
        assert_eq!(python_json_dumps(&v), r#"{"b": [1, "\u00e9"], "a": {"y": null}}"#);
    }

    #[test]
    fn indented_dumps_puts_each_item_on_its_line() {
        let v = json!({"b": [1, {}], "a": []});
        assert_eq!(
            python_json_indented(&v),
            "{\n    \"a\": [],\n    \"b\": [\n        1,\n        {}\n    ]\n}"
        );
    }

    #[test]
    fn floats_print_as_python_repr() {
        assert_eq!(python_float(1.0), "1.0");
        assert_eq!(python_float(0.5), "0.5");
        assert_eq!(python_float(123.456), "123.456");
        assert_eq!(python_float(1e16), "1e+16");
        assert_eq!(python_float(1.5e-5), "1.5e-05");
        assert_eq!(python_float(0.0001), "0.0001");
        assert_eq!(python_float(1e15), "1000000000000000.0");
    }

    #[test]
    fn version_hash_of_a_plain_s3_code_location_matches_the_golden() {
        // function_with_deployment_preference.json: MinimalFunctionVersion640128d35d
        let code = json!({"S3Bucket": "sam-demo-bucket", "S3Key": "hello.zip"});
        assert_eq!(
            logical_id("MinimalFunctionVersion", Some(&code), None),
            "MinimalFunctionVersion640128d35d"
        );
    }

    #[test]
    fn a_given_code_sha256_is_the_hash() {
        assert_eq!(
            logical_id("FVersion", None, Some("0123456789abcdef")),
            "FVersion0123456789"
        );
        assert_eq!(logical_id("FVersion", Some(&json!({})), None), "FVersion");
    }
}
