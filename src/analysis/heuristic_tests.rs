//! Unit tests for each heuristic.
use super::*;
