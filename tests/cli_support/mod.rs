//! The binary as a user runs it: spawned with a HOME of its own and no
//! XDG config, its output read whole.
#![allow(dead_code)]

use std::process::{Command, Output};

pub fn vigil(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vigil"))
        .args(args)
        .env("HOME", std::env::temp_dir())
        .env_remove("XDG_CONFIG_HOME")
        .output()
        .expect("spawn vigil")
}

/// stdout then stderr.
pub fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}
