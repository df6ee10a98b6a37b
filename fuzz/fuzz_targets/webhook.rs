#![no_main]
//! The Alertmanager webhook and the ingest API bodies (bytes as received).
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(p) = vigil::ingest::parse::parse_webhook(data) {
        let _ = p.incoming("am");
    }
    let _ = vigil::ingest::parse::parse_ingest(data);
    if let Ok(v) = vigil::ingest::parse::parse_ingest_keyed(data) {
        for m in v {
            let _ = m.into_sample();
        }
    }
});
