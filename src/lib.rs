//! Herald watches an identity provider's audit log and tells people, within seconds, when
//! something security-relevant happened to their account.
//!
//! The modules follow the flow in ARCHITECTURE.md §1: [`event`] decodes raw bytes into audit events,
//! [`rules`] selects the events that matter, [`plan`] turns each match into rendered
//! notifications with deterministic keys, and [`pipeline`] wires those stages for one input.
//! [`config`] is the TOML model all of them are built from.

pub mod channel;
pub mod config;
pub mod dashboard;
pub mod dispatch;
pub mod event;
pub mod msgraph;
pub mod pipeline;
pub mod plan;
pub mod report;
pub mod rules;
pub mod source;
pub mod store;
pub mod storm;
pub mod values;
pub mod web;
