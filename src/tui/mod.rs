//! The console: a full-screen terminal UI over the hub's snapshots.

pub mod app;
pub mod keymap;
pub mod panes;
pub mod run;
pub mod theme;
pub mod view;
pub mod fixture;

#[cfg(test)]
mod tests;
