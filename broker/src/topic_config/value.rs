//! The vocabulary of a config's value: Kafka's types (ConfigType), the rules a value must
//! meet (`Valid`), a parsed [`Value`] and why one is refused ([`Invalid`]), and a key's
//! parse and check ([`ConfigKey`]), list configs included.

use super::*;

/// Kafka's ConfigType, as DescribeConfigs v3+ reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i8)]
pub enum ConfigType {
    /// `true` or `false`, any case.
    Boolean = 1,
    /// A string.
    String = 2,
    /// A 32-bit signed integer.
    Int = 3,
    /// A 64-bit signed integer.
    Long = 5,
    /// A 64-bit float.
    Double = 6,
    /// Comma-separated strings.
    List = 7,
    /// A Java class name.
    Class = 8,
    /// A secret string, never shown.
    Password = 9,
}

impl ConfigType {
    /// The wire value (DescribeConfigs `config_type`).
    pub fn code(self) -> i8 {
        self as i8
    }

    /// Kafka's name of the type, as its error messages spell it.
    pub fn name(self) -> &'static str {
        match self {
            ConfigType::Boolean => "BOOLEAN",
            ConfigType::String => "STRING",
            ConfigType::Int => "INT",
            ConfigType::Long => "LONG",
            ConfigType::Double => "DOUBLE",
            ConfigType::List => "LIST",
            ConfigType::Class => "CLASS",
            ConfigType::Password => "PASSWORD",
        }
    }
}

/// Kafka's validator of a config (`ConfigDef.Range`, `ValidString`, `ValidList`).
#[derive(Debug, Clone, Copy)]
pub enum Valid {
    /// Any value of the type.
    Any,
    /// A number at least this (`Range.atLeast`).
    AtLeast(i64),
    /// One of these strings (`ValidString.in`, case-sensitive).
    OneOf(&'static [&'static str]),
    /// A list whose every item is one of these (`ValidList.in`).
    ListOf(&'static [&'static str]),
    /// A DOUBLE from 0 to 1 (`Range.between(0, 1)`).
    Fraction,
    /// A number from the first to the second, both included (`Range.between`).
    Between(i64, i64),
    /// A gzip level: 1 to 9, or -1 for the codec's default (Kafka's gzip level validator).
    GzipLevel,
    /// A throttled replica list: `*`, or items `partition:broker`
    /// (`ThrottledReplicaListValidator`).
    ThrottledReplicas,
}

/// What Sluice accepts of the values Kafka's rule allows.
#[derive(Debug, Clone, Copy)]
pub enum Support {
    /// Every value Kafka accepts.
    All,
    /// Only these values (as rendered), for this reason.
    Only(&'static [&'static str], &'static str),
    /// A list with at least one item, for this reason.
    NonEmpty(&'static str),
}

/// A parsed config value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// BOOLEAN.
    Bool(bool),
    /// INT or LONG (an INT is known to fit in an i32).
    Number(i64),
    /// STRING.
    Str(String),
    /// LIST: its distinct items, trimmed, in order.
    List(Vec<String>),
}

impl Value {
    /// The value as DescribeConfigs shows it.
    pub fn render(&self) -> String {
        match self {
            Value::Bool(b) => b.to_string(),
            Value::Number(n) => n.to_string(),
            Value::Str(s) => s.clone(),
            Value::List(items) => items.join(","),
        }
    }

    // A row's `apply` gets only values its own `parse` returned, so the variant is the
    // row's type: the fallbacks are never taken.
    pub(super) fn number(&self) -> i64 {
        match self {
            Value::Number(n) => *n,
            _ => 0,
        }
    }

    pub(super) fn text(&self) -> &str {
        match self {
            Value::Str(s) => s,
            _ => "",
        }
    }

    /// A DOUBLE's value (checked by its row's `parse`).
    pub fn double(&self) -> f64 {
        self.text().parse().unwrap_or(0.0)
    }

    pub(super) fn has_item(&self, item: &str) -> bool {
        matches!(self, Value::List(items) if items.iter().any(|i| i == item))
    }
}

/// Why a value is refused; the reason of an INVALID_CONFIG (or of a refused start).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum Invalid {
    /// Not parseable as the config's type (an INT past i32, say).
    #[error("not a number of type {}", .0.name())]
    NotNumber(ConfigType),
    /// Not `true` or `false`.
    #[error("expected a boolean (true or false)")]
    NotBoolean,
    /// Below Kafka's minimum.
    #[error("value must be at least {0}")]
    Below(i64),
    /// Above Kafka's maximum.
    #[error("value must be no more than {0}")]
    Above(i64),
    /// Not a gzip level.
    #[error("value must be between 1 and 9, or -1 for the default")]
    NotGzipLevel,
    /// Not a throttled replica list.
    #[error("must be the literal '*' or a list of replicas in the form partitionId:brokerId,partitionId:brokerId,...")]
    NotThrottledReplicas,
    /// A DOUBLE outside [0, 1].
    #[error("value must be between 0 and 1")]
    NotFraction,
    /// Not one of Kafka's allowed values.
    #[error("string must be one of: {}", .0.join(", "))]
    NotOneOf(&'static [&'static str]),
    /// Kafka allows it, Sluice does not.
    #[error("{0}")]
    Unsupported(&'static str),
    /// No such topic config.
    #[error("unknown topic config")]
    Unknown,
}

/// A config's definition: Kafka's name, type, rule, default and documentation line.
#[derive(Debug, Clone, Copy)]
pub struct ConfigKey {
    /// Kafka's name.
    pub name: &'static str,
    /// Kafka's type.
    pub config_type: ConfigType,
    /// Kafka's validator.
    pub valid: Valid,
    /// Kafka's default, as DescribeConfigs renders it (empty: none).
    pub default: &'static str,
    /// One line of documentation (DescribeConfigs v3+ `documentation`).
    pub doc: &'static str,
}

impl ConfigKey {
    /// Whether the config is a LIST (the only type APPEND and SUBTRACT apply to).
    pub fn is_list(&self) -> bool {
        self.config_type == ConfigType::List
    }

    /// Parses `value` as Kafka's `ConfigDef` does (trimmed; numbers in the type's range)
    /// and checks it against the validator.
    ///
    /// # Errors
    /// [`Invalid`] saying what is wrong.
    pub fn parse(&self, value: &str) -> Result<Value, Invalid> {
        let trimmed = value.trim();
        let parsed = match self.config_type {
            ConfigType::Int => trimmed
                .parse::<i32>()
                .map(|n| Value::Number(n.into()))
                .map_err(|_| Invalid::NotNumber(ConfigType::Int))?,
            ConfigType::Long => trimmed
                .parse::<i64>()
                .map(Value::Number)
                .map_err(|_| Invalid::NotNumber(ConfigType::Long))?,
            ConfigType::Boolean => match trimmed.to_ascii_lowercase().as_str() {
                "true" => Value::Bool(true),
                "false" => Value::Bool(false),
                _ => return Err(Invalid::NotBoolean),
            },
            ConfigType::List => Value::List(
                distinct_items(trimmed, self.valid)?.into_iter().map(str::to_owned).collect(),
            ),
            ConfigType::Double => match trimmed.parse::<f64>() {
                Ok(d) if d.is_nan() => return Err(Invalid::NotNumber(ConfigType::Double)),
                Ok(d) if matches!(self.valid, Valid::Fraction) && !(0.0..=1.0).contains(&d) => {
                    return Err(Invalid::NotFraction)
                }
                Ok(_) => Value::Str(trimmed.to_owned()),
                Err(_) => return Err(Invalid::NotNumber(ConfigType::Double)),
            },
            ConfigType::String | ConfigType::Class | ConfigType::Password => {
                Value::Str(trimmed.to_owned())
            }
        };
        match (self.valid, &parsed) {
            (Valid::AtLeast(min), Value::Number(n)) if *n < min => Err(Invalid::Below(min)),
            (Valid::Between(min, _), Value::Number(n)) if *n < min => Err(Invalid::Below(min)),
            (Valid::Between(_, max), Value::Number(n)) if *n > max => Err(Invalid::Above(max)),
            (Valid::GzipLevel, Value::Number(n)) if *n != -1 && !(1..=9).contains(n) => {
                Err(Invalid::NotGzipLevel)
            }
            (Valid::OneOf(allowed), Value::Str(s)) if !allowed.contains(&s.as_str()) => {
                Err(Invalid::NotOneOf(allowed))
            }
            _ => Ok(parsed),
        }
    }
}

/// Items of a LIST value, as Kafka splits it: on commas, each trimmed; an empty value is
/// the empty list. Borrowed from the value: nothing is allocated per item.
pub fn list_items(value: &str) -> impl Iterator<Item = &str> {
    let value = value.trim();
    value.split(',').map(str::trim).filter(move |_| !value.is_empty())
}

/// The distinct items of a LIST value, in order, each checked against `valid` as it is
/// met: memory grows with the distinct items, which a `ListOf` rule keeps to its few
/// values, not with the length of the value (a client may repeat an item millions of
/// times). Repeats are dropped; the list means the same set.
pub(super) fn distinct_items(value: &str, valid: Valid) -> Result<Vec<&str>, Invalid> {
    let mut items: Vec<&str> = Vec::new();
    let mut seen = HashSet::new();
    for item in list_items(value) {
        match valid {
            Valid::ListOf(allowed) if !allowed.contains(&item) => {
                return Err(Invalid::NotOneOf(allowed));
            }
            Valid::ThrottledReplicas if item != "*" && !is_replica(item) => {
                return Err(Invalid::NotThrottledReplicas);
            }
            _ => {}
        }
        if seen.insert(item) {
            items.push(item);
        }
    }
    if matches!(valid, Valid::ThrottledReplicas) && items.len() > 1 && items.contains(&"*") {
        return Err(Invalid::NotThrottledReplicas);
    }
    Ok(items)
}

/// `partition:broker`, both decimal (spaces inside are ignored, as Kafka strips them).
fn is_replica(item: &str) -> bool {
    let digits = |s: &str| {
        let mut any = false;
        s.chars().filter(|c| *c != ' ').all(|c| {
            any = true;
            c.is_ascii_digit()
        }) && any
    };
    item.split_once(':').is_some_and(|(p, b)| digits(p) && digits(b))
}
