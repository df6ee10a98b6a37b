//! The console: a full-screen terminal UI over the hub's snapshots.

pub mod app;
pub mod fixture;
pub mod keymap;
pub mod panes;
pub mod run;
pub mod theme;
pub mod view;

#[cfg(test)]
mod tests;
