//! Parsers of one property's value: numbers with bounds, booleans, listeners and
//! addresses, socket settings, and the broker-only rows of the config table; each failure
//! a [`ConfigError::Invalid`] naming the key.

use super::*;

pub(super) fn invalid(key: &str, value: &str, reason: &str) -> ConfigError {
    ConfigError::Invalid { key: key.into(), value: value.into(), reason: reason.into() }
}

pub(super) fn number<T: std::str::FromStr + PartialOrd + Copy>(
    key: &str,
    value: &str,
    min: T,
) -> Result<T, ConfigError> {
    match value.trim().parse::<T>() {
        Ok(n) if n >= min => Ok(n),
        _ => Err(invalid(key, value, "expected a number in range")),
    }
}

/// A broker-only property with a row in the config table, as a number.
pub(super) fn broker_number(key: &str, value: &str) -> Result<i64, ConfigError> {
    let row = broker_config(key).ok_or_else(|| invalid(key, value, "unknown property"))?;
    match row.parse(value) {
        Ok(Value::Number(n)) => Ok(n),
        Ok(_) => Err(invalid(key, value, "not a number")),
        Err(why) => Err(invalid(key, value, &why.to_string())),
    }
}

/// A broker-only DOUBLE property with a row in the config table.
pub(super) fn broker_double(key: &str, value: &str) -> Result<f64, ConfigError> {
    let row = broker_config(key).ok_or_else(|| invalid(key, value, "unknown property"))?;
    match row.parse(value) {
        Ok(v) => Ok(v.double()),
        Err(why) => Err(invalid(key, value, &why.to_string())),
    }
}

/// A socket buffer size: -1 (the kernel's default) or a positive byte count.
pub(super) fn buffer_size(key: &str, value: &str) -> Result<i32, ConfigError> {
    match value.trim().parse::<i32>() {
        Ok(n) if n == -1 || n > 0 => Ok(n),
        _ => Err(invalid(key, value, "expected -1 or a positive number of bytes")),
    }
}

/// A congestion control algorithm's name as the kernel takes it (at most 15 bytes), or
/// empty for the system's. Whether the kernel has it is known only when it is set.
pub(super) fn congestion_control(key: &str, value: &str) -> Result<String, ConfigError> {
    let name = value.trim();
    if name.len() < 16 && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        Ok(name.to_string())
    } else {
        Err(invalid(
            key,
            value,
            "expected a congestion control name such as reno or cubic, or empty",
        ))
    }
}

pub(super) fn boolean(key: &str, value: &str) -> Result<bool, ConfigError> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(invalid(key, value, "expected true or false")),
    }
}

/// `PLAINTEXT://host:port[,...]` → the first PLAINTEXT (or unnamed) listener's host, port.
pub(super) fn listener(key: &str, value: &str) -> Result<(String, u16), ConfigError> {
    let first = value
        .split(',')
        .map(str::trim)
        .find(|l| !l.contains("://") || l.to_ascii_uppercase().starts_with("PLAINTEXT://"))
        .ok_or_else(|| invalid(key, value, "expected PLAINTEXT://host:port"))?;
    let hostport = first.split_once("://").map_or(first, |(_, hp)| hp);
    let (host, port) =
        hostport.rsplit_once(':').ok_or_else(|| invalid(key, value, "expected host:port"))?;
    let port = port.parse().map_err(|_| invalid(key, value, "port is not a number"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    Ok((host.to_string(), port))
}

/// Parses `host:port` (a flag value).
///
/// # Errors
/// When it is not `host:port`.
pub fn host_port(value: &str) -> Result<(String, u16), ConfigError> {
    listener("address", value)
}

pub(super) fn socket_addr(key: &str, host: &str, port: u16) -> Result<SocketAddr, ConfigError> {
    let host = if host.is_empty() || host == "0.0.0.0" { "0.0.0.0" } else { host };
    let host = if host == "localhost" { "127.0.0.1" } else { host };
    format!("{host}:{port}")
        .parse()
        .or_else(|_| format!("[{host}]:{port}").parse())
        .map_err(|_| invalid(key, &format!("{host}:{port}"), "expected an IP address and port"))
}
