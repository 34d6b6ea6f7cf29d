//! cstowatch: polls news feeds, keeps the items about the CSTO and the
//! Armenia–Azerbaijan conflict, tags them with keyword rules and posts
//! digests to Telegram.
//!
//! The modules follow the pipeline (SPEC.md): `fetch` → `parse` → `article`
//! → `dedup` → `tag` → `store` → `digest` → `deliver`, run in order by
//! `pipeline`, scheduled by `service`.

pub mod config;
pub mod item;
pub mod problem;
pub mod store;
pub mod tag;
