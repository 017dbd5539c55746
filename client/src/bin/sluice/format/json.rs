//! JSON output without a JSON crate: a small value tree that prints itself, and the one
//! rule for bytes (a UTF-8 string when they are UTF-8, else base64 with a flag beside it).
//!
//! Objects keep their fields in the order they were built, so output is stable and can be
//! compared line by line.

use std::fmt::{self, Write as _};

/// A JSON value.
#[derive(Debug, Clone, PartialEq)]
pub enum Json {
    /// `null`.
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A string.
    Str(String),
    /// An array.
    Arr(Vec<Json>),
    /// An object, fields in order.
    Obj(Vec<(&'static str, Json)>),
}

impl Json {
    /// A string value.
    pub fn str(s: impl Into<String>) -> Json {
        Json::Str(s.into())
    }

    /// `null` for `None`, else what `f` makes of the value.
    pub fn opt<T>(v: Option<T>, f: impl FnOnce(T) -> Json) -> Json {
        v.map_or(Json::Null, f)
    }
}

impl From<i64> for Json {
    fn from(v: i64) -> Json {
        Json::Int(v)
    }
}

impl From<i32> for Json {
    fn from(v: i32) -> Json {
        Json::Int(i64::from(v))
    }
}

impl fmt::Display for Json {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Json::Null => f.write_str("null"),
            Json::Bool(b) => write!(f, "{b}"),
            Json::Int(i) => write!(f, "{i}"),
            Json::Str(s) => write_str(f, s),
            Json::Arr(items) => {
                f.write_char('[')?;
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_char(',')?;
                    }
                    write!(f, "{item}")?;
                }
                f.write_char(']')
            }
            Json::Obj(fields) => {
                f.write_char('{')?;
                for (i, (name, value)) in fields.iter().enumerate() {
                    if i > 0 {
                        f.write_char(',')?;
                    }
                    write_str(f, name)?;
                    write!(f, ":{value}")?;
                }
                f.write_char('}')
            }
        }
    }
}

/// `s` as a JSON string literal (RFC 8259 escapes; everything else as is).
fn write_str(f: &mut impl fmt::Write, s: &str) -> fmt::Result {
    f.write_char('"')?;
    for c in s.chars() {
        match c {
            '"' => f.write_str("\\\"")?,
            '\\' => f.write_str("\\\\")?,
            '\n' => f.write_str("\\n")?,
            '\r' => f.write_str("\\r")?,
            '\t' => f.write_str("\\t")?,
            c if u32::from(c) < 0x20 => write!(f, "\\u{:04x}", u32::from(c))?,
            c => f.write_char(c)?,
        }
    }
    f.write_char('"')
}

/// Pushes the fields for `bytes` named `name` onto `fields`: `null` when absent, the
/// text when it is UTF-8, else base64 and `<name>_base64: true`. Empty stays `""`, so
/// null and empty differ.
pub fn bytes_field(
    fields: &mut Vec<(&'static str, Json)>,
    name: &'static str,
    flag: &'static str,
    bytes: Option<&[u8]>,
) {
    match bytes {
        None => fields.push((name, Json::Null)),
        Some(b) => match std::str::from_utf8(b) {
            Ok(text) => fields.push((name, Json::str(text))),
            Err(_) => {
                fields.push((name, Json::Str(base64(b))));
                fields.push((flag, Json::Bool(true)));
            }
        },
    }
}

/// Standard base64 (RFC 4648 section 4) with padding.
pub fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], chunk.get(1).copied().unwrap_or(0), chunk.get(2).copied().unwrap_or(0)];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc_4648_test_vectors() {
        let vectors = [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ];
        for (plain, encoded) in vectors {
            assert_eq!(base64(plain.as_bytes()), encoded, "{plain:?}");
        }
        assert_eq!(base64(&[0xff, 0xfe, 0x00]), "//4A");
    }

    #[test]
    fn values_print_as_compact_json_with_escapes() {
        let v = Json::Obj(vec![
            ("s", Json::str("a\"b\\c\n\u{1}é")),
            ("n", Json::Null),
            ("i", Json::from(-3i64)),
            ("a", Json::Arr(vec![Json::Bool(true), Json::Arr(vec![])])),
        ]);
        assert_eq!(v.to_string(), r#"{"s":"a\"b\\c\n\u0001é","n":null,"i":-3,"a":[true,[]]}"#);
    }

    #[test]
    fn bytes_are_text_or_flagged_base64_and_null_differs_from_empty() {
        let mut fields = Vec::new();
        bytes_field(&mut fields, "key", "key_base64", None);
        bytes_field(&mut fields, "value", "value_base64", Some(b""));
        bytes_field(&mut fields, "raw", "raw_base64", Some(&[0xc3, 0x28]));
        assert_eq!(
            Json::Obj(fields).to_string(),
            r#"{"key":null,"value":"","raw":"wyg=","raw_base64":true}"#
        );
    }
}
