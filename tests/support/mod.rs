//! Helpers shared by the integration tests: real servers on 127.0.0.1
//! standing in for the outside world.
#![allow(dead_code)]
pub mod fake_telegram;
