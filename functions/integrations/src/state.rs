//! What every handler of the function shares, built once per cold start: the shared [`Services`].

pub use hub_shared::services::{Services as AppState, StartupError};
