//! Per-feed state: conditional-GET validators, health and poll timing.
