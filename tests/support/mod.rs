//! Helpers shared by the integration tests: real servers on 127.0.0.1
//! standing in for the outside world (feed hosts, the Telegram Bot API), and
//! running the real binary.
#![allow(dead_code)]

pub mod cli;
pub mod fake_telegram;
pub mod feed_server;
pub mod service;
