//! The console: a full-screen terminal UI over the hub's snapshots.

pub mod app;
pub mod audit;
pub mod commands;
pub mod derived;
pub mod dialogs;
pub mod filters;
pub mod fixture;
pub mod keymap;
pub mod panes;
pub mod popups;
pub mod prompt;
pub mod run;
pub mod seek;
pub mod theme;
pub mod view;

#[cfg(test)]
mod tests;
