#![no_main]
//! The config file: parse, then validate and build the engine's setup.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(c) = vigil::config::Config::parse("c.toml", text) {
        let _ = c.build("c.toml", text, false, Some("sim".into()));
    }
});
