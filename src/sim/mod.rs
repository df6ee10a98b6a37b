//! Simulation: the scenario replayer (`vigil replay`) and the demo fleet.

pub mod demo;
pub mod eval;
pub mod scenario;
