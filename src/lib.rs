//! cstowatch: polls news feeds, keeps the items about the CSTO and the
//! Armenia–Azerbaijan conflict, tags them with keyword rules and posts
//! digests to Telegram.
//!
//! The modules follow the pipeline (SPEC.md): `fetch` → `parse` → `article`
//! → `dedup` → `tag` → `store` → `story` (grouping, at digest time) →
//! `digest` → `deliver`, run in order by `pipeline`, scheduled by `service`.

pub mod alerts;
pub mod article;
pub mod commands;
pub mod config;
pub mod dedup;
pub mod deliver;
pub mod digest;
pub mod fetch;
pub mod item;
pub mod monitor;
pub mod parse;
pub mod pipeline;
pub mod problem;
pub mod report;
pub mod service;
pub mod setup;
pub mod store;
pub mod story;
pub mod tag;
pub mod telemetry;
pub mod text;
