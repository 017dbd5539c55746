//! The admin client's typed configuration, [`AdminConfig`].

use std::time::Duration;

use super::{ClientConfig, CommonConfig};
use crate::error::Result;

/// The admin client's validated configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminConfig {
    /// What every client reads.
    pub common: CommonConfig,
    /// `default.api.timeout.ms`.
    pub default_api_timeout: Duration,
}

impl AdminConfig {
    /// Validates `config` for an admin client.
    ///
    /// # Errors
    /// [`ClientError::Config`](crate::ClientError::Config) naming the first property that
    /// is wrong.
    pub fn new(config: &ClientConfig) -> Result<Self> {
        let r = config.validate(|roles| roles.admin)?;
        Ok(AdminConfig { common: r.common()?, default_api_timeout: r.ms("default.api.timeout.ms") })
    }
}
