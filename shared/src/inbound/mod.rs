//! Incoming webhooks: the configuration a tenant gives (verification, filters, actions), the body
//! paths both filters and mappings read, and the accepted events the receiver stores and the retry
//! dispatcher processes.

pub mod config;
pub mod extract;
pub mod path;
#[cfg(feature = "payloads")]
pub mod process;

pub use config::{
    public_key_problem, Action, AutomationConfig, EntityActionConfig, Filters, ForwardConfig,
    InboundScheme, SecretSource, TriggerSyncConfig, DEFAULT_FORWARD_RETRY_ATTEMPTS,
    DEFAULT_FORWARD_RETRY_DELAY_SECONDS, MAX_ACTIONS,
};
pub use extract::{extract_record, ExtractError, ExtractedRecord};
pub use path::BodyPath;
