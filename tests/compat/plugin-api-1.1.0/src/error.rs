//! Errors a plugin returns, and their FFI form.

use std::fmt;

use abi_stable::std_types::RString;
use abi_stable::StableAbi;

/// An error returned by plugin code. The host logs it with the plugin's name and,
/// for a message, records it in the message's history before dropping it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginError {
    message: String,
    panicked: bool,
}

impl PluginError {
    /// An error with a message; write it lowercase, without a trailing period, and
    /// name the key, record or peer it is about.
    pub fn new(message: impl Into<String>) -> Self {
        PluginError {
            message: message.into(),
            panicked: false,
        }
    }

    /// The error's text.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Whether the error stands for a panic caught at the plugin boundary.
    pub fn is_panic(&self) -> bool {
        self.panicked
    }

    pub(crate) fn from_panic(what: &str, payload: &(dyn std::any::Any + Send)) -> Self {
        let detail = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "non-string panic payload".to_owned());
        PluginError {
            message: format!("panicked in {what}: {detail}"),
            panicked: true,
        }
    }
}

impl fmt::Display for PluginError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for PluginError {}

macro_rules! from_error {
    ($($ty:ty),*) => {$(
        impl From<$ty> for PluginError {
            fn from(e: $ty) -> Self {
                PluginError::new(e.to_string())
            }
        }
    )*};
}
from_error!(
    std::io::Error,
    serde_json::Error,
    String,
    &str,
    std::fmt::Error
);

/// The FFI form of [`PluginError`]. Part of the ABI: append only.
#[doc(hidden)]
#[repr(C)]
#[derive(StableAbi, Debug, Clone)]
pub struct FfiError {
    pub message: RString,
    pub panicked: bool,
}

impl From<PluginError> for FfiError {
    fn from(e: PluginError) -> Self {
        FfiError {
            message: e.message.into(),
            panicked: e.panicked,
        }
    }
}

impl From<FfiError> for PluginError {
    fn from(e: FfiError) -> Self {
        PluginError {
            message: e.message.into(),
            panicked: e.panicked,
        }
    }
}
