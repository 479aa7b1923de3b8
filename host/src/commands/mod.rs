//! One module per command.

pub mod check;
pub mod docs;
pub mod list;
pub mod manage;
pub mod run;
pub mod scaffold;
