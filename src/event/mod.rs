//! Audit events: the one normalized type every input format decodes into, and the decoders.
//!
//! This module owns the journey from raw bytes to [`AuditEvent`]. It is split in two on purpose,
//! because most audit records match no rule (ARCHITECTURE.md §10):
//!
//! - [`scan`] walks an input once, auto-detecting its format, and yields a cheap, borrowed
//!   [`RecordView`] per record (id, activity, time, category — enough to route it), a
//!   [`Skipped`] note for records of other log categories, or a [`DeadLetter`] for records that
//!   cannot be used. It allocates nothing for a healthy record.
//! - [`RecordView::decode`] builds the full [`AuditEvent`], only for records a rule selects.
//!
//! The decoders never panic and never reject a record for an irregular field they can live
//! without; they only refuse what they truly cannot use: no id, no activity, no parseable time.

mod control;
mod dead_letter;
mod lenient;
pub(crate) mod normalize;
mod scan;
pub mod sensitive;
mod time;

pub use dead_letter::{DeadLetter, Position};
pub use scan::{Item, RecordView, Skipped, scan};
pub use time::parse_time;

use jiff::Timestamp;
use serde::Serialize;

/// One normalized audit record, whatever format it arrived in (ARCHITECTURE.md §3).
///
/// Every string in here was written by whoever made the change being audited: treat it as
/// hostile when it leaves Herald (templates autoescape it). Control characters are already
/// gone ([`control`]); `raw` is the record as it came.
#[derive(Debug, Clone, Serialize)]
pub struct AuditEvent {
    pub id: String,
    pub time: Timestamp,
    pub tenant_id: Option<String>,
    /// The audit category (`properties.category`), e.g. `UserManagement`.
    pub category: Option<String>,
    /// `activityDisplayName`, trimmed (real records carry trailing spaces).
    pub activity: String,
    /// The diagnostic record's `operationName` when it differs from the activity.
    pub operation_name: Option<String>,
    pub operation_type: Option<String>,
    pub result: Option<String>,
    pub result_reason: Option<String>,
    pub logged_by_service: Option<String>,
    pub correlation_id: Option<String>,
    pub initiated_by: Actor,
    pub targets: Vec<Target>,
    pub additional_details: Vec<Detail>,
    /// The original record, for templates that need a field Herald does not normalize.
    #[serde(skip)]
    pub raw: serde_json::Value,
}

/// Who did it: a user, an app (service principal), or nobody the record names.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Actor {
    pub kind: ActorKind,
    pub id: Option<String>,
    pub display_name: Option<String>,
    pub upn: Option<String>,
    /// The caller's IP address; the `"<null>"` placeholder real records carry becomes `None`.
    pub ip: Option<String>,
    pub app_id: Option<String>,
    pub service_principal_name: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ActorKind {
    User,
    App,
    #[default]
    Unknown,
}

/// One object the activity was done to: a user, a group, a role, a device, an app, a policy.
#[derive(Debug, Clone, Serialize)]
pub struct Target {
    pub id: Option<String>,
    /// `type` (or `Type`, as Graph's own documentation spells it): `User`, `Group`, `Device`…
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub display_name: Option<String>,
    pub upn: Option<String>,
    pub modified_properties: Vec<ModifiedProperty>,
}

impl Target {
    /// Whether this target is of the given type, compared as Entra writes it loosely.
    pub fn is_type(&self, kind: &str) -> bool {
        self.kind
            .as_deref()
            .is_some_and(|k| k.trim().eq_ignore_ascii_case(kind))
    }
}

/// A property the activity changed. Entra JSON-encodes the values inside strings
/// (`"[\"Member\"]"`); `old`/`new` are the readable forms (`Member`), `old_json`/`new_json` the
/// decoded structure for templates that want it.
#[derive(Debug, Clone, Serialize)]
pub struct ModifiedProperty {
    pub name: String,
    pub old: Option<String>,
    pub new: Option<String>,
    pub old_json: serde_json::Value,
    pub new_json: serde_json::Value,
}

/// One `additionalDetails` entry (`User-Agent`, `targetTenant`, …).
#[derive(Debug, Clone, Serialize)]
pub struct Detail {
    pub key: String,
    pub value: String,
}

impl AuditEvent {
    /// The initiator is one of the targets (self-service: a user changed their own account).
    pub fn initiator_is(&self, target: &Target) -> bool {
        if self.initiated_by.kind != ActorKind::User {
            return false;
        }
        let same_id = matches!((&self.initiated_by.id, &target.id), (Some(a), Some(b)) if a.eq_ignore_ascii_case(b));
        let same_upn = matches!((&self.initiated_by.upn, &target.upn), (Some(a), Some(b)) if a.eq_ignore_ascii_case(b));
        same_id || same_upn
    }
}
