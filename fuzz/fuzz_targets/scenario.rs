#![no_main]
//! Scenario files: parse and validate, then replay the short ones.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(s) = vigil::sim::scenario::Scenario::parse("s.toml", text)
        && (s.end - s.start).num_hours() <= 48
    {
        let _ = s.run().unmet();
    }
});
