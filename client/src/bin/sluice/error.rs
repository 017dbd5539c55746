//! The CLI's error, and how it becomes one line on stderr: `error: `, Kafka's error name
//! when the broker sent one, what the command was doing and the broker's message, e.g.
//! `error: TOPIC_ALREADY_EXISTS: create topic x: Topic 'x' already exists.`

use std::process::ExitCode;

use sluice_client::ClientError;
use sluice_protocol::error_code::ErrorCode;

/// What a command returns.
pub type Result<T, E = CliError> = std::result::Result<T, E>;

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// A client call failed while the command did `context` (none: the error says it all).
    #[error("{}", match context { Some(c) => format!("{c}: {source}"), None => source.to_string() })]
    Client {
        /// What the command was doing, e.g. `produce to orders`.
        context: Option<String>,
        /// The client's error.
        source: ClientError,
    },
    /// The command line or its input cannot be used: what, with the value.
    #[error("{0}")]
    Usage(String),
    /// The cluster's state does not allow what was asked (a group with members, a
    /// partition without a committed offset to shift): why.
    #[error("{0}")]
    Refused(String),
    /// What was asked needs support the broker or this client lacks: which.
    #[error("{0}")]
    Unsupported(String),
    /// Reading input or writing output failed.
    #[error("{context}: {source}")]
    Io {
        /// What was read or written, e.g. `--payload-file lines.txt`.
        context: String,
        /// The error.
        source: std::io::Error,
    },
    /// The failures were printed already, one line each (a call about several topics or
    /// groups reports each failure): exit non-zero without another line.
    #[error("{0} failed")]
    Reported(String),
}

impl From<ClientError> for CliError {
    fn from(source: ClientError) -> Self {
        CliError::Client { context: None, source }
    }
}

/// Says what the command was doing when a call failed.
pub trait Context<T> {
    /// The error, with `what` in front of it.
    ///
    /// # Errors
    /// The error, as a [`CliError`].
    fn context(self, what: impl Into<String>) -> Result<T>;

    /// As [`Context::context`], the text made only on failure.
    ///
    /// # Errors
    /// The error, as a [`CliError`].
    fn with_context(self, what: impl FnOnce() -> String) -> Result<T>;
}

impl<T> Context<T> for Result<T, ClientError> {
    fn context(self, what: impl Into<String>) -> Result<T> {
        self.map_err(|source| CliError::Client { context: Some(what.into()), source })
    }

    fn with_context(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|source| CliError::Client { context: Some(what()), source })
    }
}

impl<T> Context<T> for Result<T, std::io::Error> {
    fn context(self, what: impl Into<String>) -> Result<T> {
        self.map_err(|source| CliError::Io { context: what.into(), source })
    }

    fn with_context(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|source| CliError::Io { context: what(), source })
    }
}

/// The process exit for `outcome`, its error printed first.
pub fn exit(outcome: Result<()>) -> ExitCode {
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(CliError::Reported(_)) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("{}", one_line(&e));
            ExitCode::FAILURE
        }
    }
}

/// `error: ` and the error on one line, led by Kafka's error name when the broker sent
/// one: `error: TOPIC_ALREADY_EXISTS: create topic x: Topic 'x' already exists.`
pub fn one_line(e: &CliError) -> String {
    let (code, text) = match e {
        CliError::Client { context, source } => {
            let text = match context {
                Some(c) => format!("{c}: {}", client_error(source)),
                None => client_error(source),
            };
            (kafka_code(source), text)
        }
        other => (None, other.to_string()),
    };
    let text: Vec<&str> = text.split_whitespace().collect();
    match code {
        Some(code) => format!("error: {}: {}", code_name(code), text.join(" ")),
        None => format!("error: {}", text.join(" ")),
    }
}

/// [`one_line`] of a client error that has no context.
pub fn client_line(e: &ClientError) -> String {
    one_line(&CliError::from(e.clone()))
}

/// The Kafka error `e` is, or stands for: the client reports a topic or partition the
/// metadata lacks as its own error, where Kafka's tools name UNKNOWN_TOPIC_OR_PARTITION.
fn kafka_code(e: &ClientError) -> Option<ErrorCode> {
    match e {
        ClientError::UnknownTopic { .. } | ClientError::UnknownPartition { .. } => {
            Some(ErrorCode::UNKNOWN_TOPIC_OR_PARTITION)
        }
        other => other.code(),
    }
}

/// A client error without its code (the line leads with the name): what was asked, and
/// the broker's message.
fn client_error(e: &ClientError) -> String {
    match e {
        ClientError::Kafka { message: Some(m), context, .. } => format!("{context}: {m}"),
        ClientError::Kafka { message: None, context, .. } => context.clone(),
        other => other.to_string(),
    }
}

/// Kafka's name of `code` (`TOPIC_ALREADY_EXISTS`), or its number for one this build
/// does not know.
pub fn code_name(code: ErrorCode) -> String {
    code.name().map_or_else(|| code.to_string(), str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_are_one_line_led_by_kafkas_name() {
        let e = ClientError::kafka(
            ErrorCode::TOPIC_ALREADY_EXISTS,
            Some("Topic 'x' already exists.\n".into()),
            "create topic x",
        );
        assert_eq!(
            client_line(&e),
            "error: TOPIC_ALREADY_EXISTS: create topic x: Topic 'x' already exists."
        );
        let e = Err::<(), _>(ClientError::Closed).context("consume from t").unwrap_err();
        assert_eq!(one_line(&e), "error: consume from t: client is closed");
        let e = ClientError::UnknownTopic { topic: "t".into() };
        assert_eq!(
            client_line(&e),
            "error: UNKNOWN_TOPIC_OR_PARTITION: topic t is not in the cluster's metadata"
        );
        let e = ClientError::kafka(ErrorCode::MESSAGE_TOO_LARGE, None, "produce to t-0");
        let e = Err::<(), _>(e).with_context(|| "produce to t".to_string()).unwrap_err();
        assert_eq!(one_line(&e), "error: MESSAGE_TOO_LARGE: produce to t: produce to t-0");
        let missing = std::fs::read("/nonexistent/x").context("--payload-file /nonexistent/x");
        assert_eq!(
            one_line(&missing.unwrap_err()),
            "error: --payload-file /nonexistent/x: No such file or directory (os error 2)"
        );
        let usage = CliError::Usage("nothing to alter:\n give --config".into());
        assert_eq!(one_line(&usage), "error: nothing to alter: give --config");
    }

    #[test]
    fn reported_failures_print_nothing_more_and_fail() {
        assert_eq!(exit(Err(CliError::Reported("2 topics".into()))), ExitCode::FAILURE);
        assert_eq!(exit(Ok(())), ExitCode::SUCCESS);
    }
}
