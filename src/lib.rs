//! Vigil: a terminal console for on-call engineers with a self-healing
//! control plane. The library holds everything; `src/main.rs` is the CLI.

pub mod access;
pub mod agent;
pub mod analysis;
pub mod client;
pub mod config;
pub mod doctor;
pub mod engine;
pub mod exec;
pub mod ha;
pub mod hosts;
pub mod hub;
pub mod ingest;
pub mod model;
pub mod net;
pub mod notify;
pub mod owner;
pub mod policy;
pub mod preflight;
pub mod private;
pub mod redact;
pub mod runbook;
pub mod shard_map;
pub mod sim;
pub mod start;
pub mod store;
pub mod stream;
pub mod tui;
pub mod units;
pub mod view;
pub mod vital;
