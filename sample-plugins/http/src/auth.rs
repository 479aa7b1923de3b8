//! The optional bearer token of `http.events`: read from a file or an environment
//! variable (never from the configuration itself), never logged, compared in
//! constant time.

use std::os::unix::fs::PermissionsExt;

use gordon_plugin_api::{tracing, PluginError};
use subtle::{Choice, ConstantTimeEq};

/// The fewest characters a token may have.
const MIN_TOKEN_LEN: usize = 16;

/// A bearer token. Its `Debug` output never shows it.
pub struct Token(Vec<u8>);

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

impl Drop for Token {
    fn drop(&mut self) {
        self.0.iter_mut().for_each(|b| *b = 0);
    }
}

/// What a request's `Authorization` header amounts to.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The right token.
    Allowed,
    /// No `Authorization: Bearer ...` header.
    Missing,
    /// A bearer token, but not the right one.
    Invalid,
}

impl Token {
    /// Reads the token named by `token_file` or `token_env` (at most one of them);
    /// `None` when neither is set. Errors name the key, never the token.
    pub fn load(file: Option<&str>, env: Option<&str>) -> Result<Option<Token>, PluginError> {
        let (raw, source) = match (file, env) {
            (Some(_), Some(_)) => {
                return Err(PluginError::new(
                    "give either `token_file` or `token_env`, not both",
                ))
            }
            (None, None) => return Ok(None),
            (Some(path), None) => {
                let raw = std::fs::read(path).map_err(|e| {
                    PluginError::new(format!("`token_file`: cannot read {path}: {e}"))
                })?;
                (raw, format!("`token_file` {path}"))
            }
            (None, Some(var)) => {
                let raw = std::env::var_os(var).ok_or_else(|| {
                    PluginError::new(format!(
                        "`token_env`: environment variable {var} is not set"
                    ))
                })?;
                (
                    raw.into_encoded_bytes(),
                    format!("`token_env` (variable {var})"),
                )
            }
        };
        let token = Token(raw.trim_ascii().to_vec());
        drop(Token(raw));
        if token.0.is_empty() {
            return Err(PluginError::new(format!("{source}: the token is empty")));
        }
        if !token.0.iter().all(|b| b.is_ascii_graphic()) {
            return Err(PluginError::new(format!(
                "{source}: the token must be printable ASCII without spaces"
            )));
        }
        if token.0.len() < MIN_TOKEN_LEN {
            return Err(PluginError::new(format!(
                "{source}: the token has {} characters; use at least {MIN_TOKEN_LEN} \
                 (for example `openssl rand -hex 32`)",
                token.0.len()
            )));
        }
        Ok(Some(token))
    }

    /// Warns when `token_file` can be read by anyone but its owner.
    pub fn warn_if_readable_by_others(path: &str) {
        if let Ok(meta) = std::fs::metadata(path) {
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                tracing::warn!(
                    token_file = path,
                    "`token_file` can be read by group or others (mode {mode:04o}); chmod 600 it."
                );
            }
        }
    }

    /// Checks the value of an `Authorization` header (`Bearer <token>`, the scheme in
    /// any case).
    pub fn check(&self, authorization: Option<&[u8]>) -> Verdict {
        let Some(value) = authorization else {
            return Verdict::Missing;
        };
        let value = value.trim_ascii();
        let Some(space) = value.iter().position(|b| *b == b' ') else {
            return Verdict::Missing;
        };
        let (scheme, credentials) = value.split_at(space);
        if !scheme.eq_ignore_ascii_case(b"bearer") {
            return Verdict::Missing;
        }
        if self.matches(credentials.trim_ascii()) {
            Verdict::Allowed
        } else {
            Verdict::Invalid
        }
    }

    /// Compares in time that depends only on the token's length, not on how much of
    /// it the presented value gets right, nor on the presented value's length.
    fn matches(&self, presented: &[u8]) -> bool {
        let same_len = (presented.len() as u64).ct_eq(&(self.0.len() as u64));
        let mut same = Choice::from(1);
        for (i, expected) in self.0.iter().enumerate() {
            let got = presented.get(i).copied().unwrap_or(0);
            same &= got.ct_eq(expected);
        }
        (same & same_len).into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token() -> Token {
        Token(b"0123456789abcdef-token".to_vec())
    }

    #[test]
    fn only_the_exact_token_is_allowed() {
        let t = token();
        assert_eq!(
            t.check(Some(b"Bearer 0123456789abcdef-token")),
            Verdict::Allowed
        );
        assert_eq!(
            t.check(Some(b"bearer  0123456789abcdef-token ")),
            Verdict::Allowed
        );
        for wrong in [
            &b"Bearer 0123456789abcdef-toke"[..],
            b"Bearer 0123456789abcdef-tokenX",
            b"Bearer 0123456789abcdef-tokeN",
        ] {
            assert_eq!(t.check(Some(wrong)), Verdict::Invalid, "{wrong:?}");
        }
        for missing in [
            &b"Basic dXNlcjpwYXNz"[..],
            b"0123456789abcdef-token",
            b"Bearer ",
            b"",
        ] {
            assert_eq!(t.check(Some(missing)), Verdict::Missing, "{missing:?}");
        }
        assert_eq!(t.check(None), Verdict::Missing);
        assert_eq!(format!("{t:?}"), "Token(<redacted>)");
    }
}
