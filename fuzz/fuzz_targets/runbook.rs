#![no_main]
//! Runbook files: parse, compile, match and plan.
use std::collections::BTreeMap;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let sources = [("r.toml".to_string(), text.to_string())];
    if let Ok(cat) = vigil::runbook::Catalog::from_sources(&sources, &BTreeMap::new()) {
        let labels: vigil::model::Labels = [
            ("alertname".to_string(), "X".to_string()),
            ("host".to_string(), "web-01".to_string()),
        ]
        .into();
        for rb in &cat.runbooks {
            let _ = rb.matches(&labels);
            if let Ok(p) = rb.resolve_params(&labels, &labels, &BTreeMap::new()) {
                let _ = rb.plan("web-01", &p);
            }
        }
    }
});
