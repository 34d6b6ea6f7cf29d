//! Helpers shared by the integration tests: the fixture feed server, the fake
//! Telegram Bot API, and running the real binary.
#![allow(dead_code)]

pub mod cli;
pub mod feed_server;
