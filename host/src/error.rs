//! The errors of the host library: what stops a command from starting or running.
//! The binary turns them into a message and an exit code (`anyhow` lives only there
//! and in `commands/`).

use crate::config::ConfigError;

/// Why the service or the janitor could not start (or keep) running.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The configuration files.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A system resource: a thread, the signal handlers, a log destination.
    #[error("{what}: {source}")]
    Io {
        /// What could not be set up.
        what: &'static str,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// `GORDON_LOG` holds a bad directive.
    #[error(transparent)]
    LogEnv(#[from] crate::logging::EnvError),
    /// A plugin, relay or route that refuses to start; one line naming it.
    #[error("{0}")]
    Refused(String),
}

/// A result of the host library.
pub type StartResult<T> = Result<T, StartError>;

/// Returns a [`StartError::Refused`] built like `format!`.
macro_rules! refuse {
    ($($arg:tt)*) => {
        return Err($crate::error::StartError::Refused(format!($($arg)*)))
    };
}
pub(crate) use refuse;

/// Names what an I/O error stopped.
pub(crate) trait IoWhat<T> {
    /// Wraps the error as [`StartError::Io`].
    fn what(self, what: &'static str) -> StartResult<T>;
}

impl<T> IoWhat<T> for std::io::Result<T> {
    fn what(self, what: &'static str) -> StartResult<T> {
        self.map_err(|source| StartError::Io { what, source })
    }
}
