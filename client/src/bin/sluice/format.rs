//! How `sluice` prints: records through kcat's format strings (here), records and admin
//! answers as JSON ([`json`]), tables for people or scripts ([`table`]), and times
//! ([`time`]).
//!
//! kcat's tokens: `%t` topic, `%p` partition, `%o` offset, `%k` key, `%K` key length,
//! `%s` value, `%S` value length, `%T` timestamp (ms), `%h` headers as `k=v,k=v`, `%%` a
//! percent sign; escapes `\n`, `\r`, `\t`, `\\`. A null key or value prints as nothing
//! and its length as -1, as kcat does.

pub mod json;
pub mod table;
pub mod time;

use sluice_client::consumer::ConsumerRecord;

use json::{bytes_field, Json};

/// One piece of a parsed format string.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(Vec<u8>),
    Topic,
    Partition,
    Offset,
    Key,
    KeyLen,
    Value,
    ValueLen,
    Timestamp,
    Headers,
}

/// A kcat-style `--format`, parsed once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordFormat {
    pieces: Vec<Piece>,
}

impl RecordFormat {
    /// Parses `spec`.
    ///
    /// # Errors
    /// A message naming an unknown `%` token or `\` escape.
    pub fn parse(spec: &str) -> Result<RecordFormat, String> {
        let mut pieces = Vec::new();
        let mut text = Vec::new();
        let mut chars = spec.chars();
        while let Some(c) = chars.next() {
            let piece = match c {
                '%' => match chars.next() {
                    Some('t') => Piece::Topic,
                    Some('p') => Piece::Partition,
                    Some('o') => Piece::Offset,
                    Some('k') => Piece::Key,
                    Some('K') => Piece::KeyLen,
                    Some('s') => Piece::Value,
                    Some('S') => Piece::ValueLen,
                    Some('T') => Piece::Timestamp,
                    Some('h') => Piece::Headers,
                    Some('%') => {
                        text.push(b'%');
                        continue;
                    }
                    other => {
                        let token = other.map_or(String::new(), String::from);
                        return Err(format!(
                            "unknown token '%{token}' in format '{spec}' (known: %t %p %o %k %K %s %S %T %h %%)"
                        ));
                    }
                },
                '\\' => {
                    let escaped = match chars.next() {
                        Some('n') => b'\n',
                        Some('r') => b'\r',
                        Some('t') => b'\t',
                        Some('\\') => b'\\',
                        other => {
                            let e = other.map_or(String::new(), String::from);
                            return Err(format!(
                                "unknown escape '\\{e}' in format '{spec}' (known: \\n \\r \\t \\\\)"
                            ));
                        }
                    };
                    text.push(escaped);
                    continue;
                }
                c => {
                    let mut buf = [0; 4];
                    text.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                    continue;
                }
            };
            if !text.is_empty() {
                pieces.push(Piece::Text(std::mem::take(&mut text)));
            }
            pieces.push(piece);
        }
        if !text.is_empty() {
            pieces.push(Piece::Text(text));
        }
        Ok(RecordFormat { pieces })
    }

    /// Appends `r` as this format prints it to `out`.
    pub fn write(&self, r: &ConsumerRecord, out: &mut Vec<u8>) {
        use std::io::Write as _;
        let len = |b: &Option<bytes::Bytes>| b.as_ref().map_or(-1, |b| b.len() as i64);
        for piece in &self.pieces {
            // Writes into a Vec cannot fail.
            let _ = match piece {
                Piece::Text(t) => out.write_all(t),
                Piece::Topic => out.write_all(r.topic.as_bytes()),
                Piece::Partition => write!(out, "{}", r.partition),
                Piece::Offset => write!(out, "{}", r.offset),
                Piece::Key => out.write_all(r.key.as_deref().unwrap_or_default()),
                Piece::KeyLen => write!(out, "{}", len(&r.key)),
                Piece::Value => out.write_all(r.value.as_deref().unwrap_or_default()),
                Piece::ValueLen => write!(out, "{}", len(&r.value)),
                Piece::Timestamp => write!(out, "{}", r.timestamp),
                Piece::Headers => {
                    for (i, (k, v)) in r.headers.iter().enumerate() {
                        if i > 0 {
                            out.push(b',');
                        }
                        out.extend_from_slice(k);
                        out.push(b'=');
                        out.extend_from_slice(v.as_deref().unwrap_or_default());
                    }
                    Ok(())
                }
            };
        }
    }
}

/// `r` as one JSON object: bytes as text when UTF-8, else base64 flagged `*_base64`;
/// null keys, values and header values are `null`, distinct from `""`.
pub fn record_json(r: &ConsumerRecord) -> Json {
    let mut fields = vec![
        ("topic", Json::str(&*r.topic)),
        ("partition", Json::from(r.partition)),
        ("offset", Json::from(r.offset)),
        ("timestamp", Json::from(r.timestamp)),
        (
            "timestamp_type",
            Json::str(if r.log_append_time { "LogAppendTime" } else { "CreateTime" }),
        ),
    ];
    bytes_field(&mut fields, "key", "key_base64", r.key.as_deref());
    bytes_field(&mut fields, "value", "value_base64", r.value.as_deref());
    let headers = r
        .headers
        .iter()
        .map(|(k, v)| {
            let mut h = Vec::new();
            bytes_field(&mut h, "key", "key_base64", Some(k));
            bytes_field(&mut h, "value", "value_base64", v.as_deref());
            Json::Obj(h)
        })
        .collect();
    fields.push(("headers", Json::Arr(headers)));
    Json::Obj(fields)
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    fn record(key: Option<&'static [u8]>, value: Option<&'static [u8]>) -> ConsumerRecord {
        ConsumerRecord {
            topic: "t".into(),
            partition: 2,
            offset: 41,
            timestamp: 1_700_000_000_000,
            log_append_time: false,
            key: key.map(Bytes::from_static),
            value: value.map(Bytes::from_static),
            headers: vec![
                (Bytes::from_static(b"a"), Some(Bytes::from_static(b"1"))),
                (Bytes::from_static(b"b"), None),
            ],
            leader_epoch: 0,
        }
    }

    fn render(spec: &str, r: &ConsumerRecord) -> String {
        let mut out = Vec::new();
        RecordFormat::parse(spec).unwrap().write(r, &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn every_kcat_token_and_escape() {
        let r = record(Some(b"k1"), Some(b"hello"));
        assert_eq!(
            render("%t|%p|%o|%k|%K|%s|%S|%T|%h|100%%\\t\\\\\\r\\n", &r),
            "t|2|41|k1|2|hello|5|1700000000000|a=1,b=|100%\t\\\r\n"
        );
        assert_eq!(render("%s\\n", &r), "hello\n", "the default format");
    }

    #[test]
    fn null_prints_nothing_with_length_minus_one_and_empty_is_zero() {
        assert_eq!(render("[%k][%K][%s][%S]", &record(None, None)), "[][-1][][-1]");
        assert_eq!(render("[%k][%K][%s][%S]", &record(Some(b""), Some(b""))), "[][0][][0]");
    }

    #[test]
    fn unknown_tokens_and_escapes_are_refused() {
        assert!(RecordFormat::parse("%x").unwrap_err().contains("'%x'"));
        assert!(RecordFormat::parse("100%").unwrap_err().contains("'%'"));
        assert!(RecordFormat::parse("\\q").unwrap_err().contains("'\\q'"));
    }

    #[test]
    fn json_records_keep_null_apart_from_empty_and_flag_base64() {
        let r = record(None, Some(&[0xff, 0x00]));
        assert_eq!(
            record_json(&r).to_string(),
            concat!(
                r#"{"topic":"t","partition":2,"offset":41,"timestamp":1700000000000,"#,
                r#""timestamp_type":"CreateTime","key":null,"value":"/wA=","value_base64":true,"#,
                r#""headers":[{"key":"a","value":"1"},{"key":"b","value":null}]}"#
            )
        );
    }
}
