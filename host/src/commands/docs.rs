//! `gordon completions SHELL` and `gordon manpage`: shell completions and the man
//! page, generated from the command line's own definition (clap_complete,
//! clap_mangen), so they never drift from it. The package installs both.

use std::io::Write;

use clap::CommandFactory;

use crate::cli::Cli;

/// Writes the completion script for `shell` to stdout.
///
/// # Errors
/// A failed write.
pub fn completions(shell: clap_complete::Shell) -> anyhow::Result<()> {
    let mut cmd = Cli::command();
    let mut out = std::io::stdout().lock();
    clap_complete::generate(shell, &mut cmd, "gordon", &mut out);
    out.flush()?;
    Ok(())
}

/// Writes the man page (roff, section 1) to stdout.
///
/// # Errors
/// A failed write.
pub fn manpage() -> anyhow::Result<()> {
    let cmd = Cli::command();
    let mut out = std::io::stdout().lock();
    clap_mangen::Man::new(cmd).render(&mut out)?;
    out.flush()?;
    Ok(())
}
