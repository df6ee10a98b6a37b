//! Sets `cfg(vigil_e2e)` when `VIGIL_E2E=1`, so that tests needing real
//! servers are marked `#[cfg_attr(not(vigil_e2e), ignore = "...")]` and are
//! reported as not run (ignored) instead of passing without running.
fn main() {
    println!("cargo::rustc-check-cfg=cfg(vigil_e2e)");
    println!("cargo::rerun-if-env-changed=VIGIL_E2E");
    if std::env::var("VIGIL_E2E").as_deref() == Ok("1") {
        println!("cargo::rustc-cfg=vigil_e2e");
    }
}
