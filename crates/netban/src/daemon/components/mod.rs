//! The daemon's components, each one task with one job.

pub mod cluster;
pub mod control;
pub mod housekeeping;
pub mod reconcile;
pub mod stats;
pub mod web;
