//! Replay: put failed, dead (or any) events back in the queue. Safe because applying an
//! event twice has the effect of applying it once.

/// Which events to replay; every field narrows the selection.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplayFilter {
    pub id: Option<i64>,
    /// `dead`, `error`, `processed` or `pending`.
    pub status: Option<String>,
    pub kind: Option<String>,
    pub platform: Option<String>,
}

impl ReplayFilter {
    /// Statuses a replay may select.
    pub const STATUSES: [&'static str; 4] = ["dead", "error", "processed", "pending"];

    /// Checks the status name, so that a typo selects nothing silently.
    pub fn validate(&self) -> Result<(), String> {
        match self.status.as_deref() {
            Some(s) if !Self::STATUSES.contains(&s) => {
                Err(format!("unknown status {s:?}: use one of {}", Self::STATUSES.join(", ")))
            }
            _ => Ok(()),
        }
    }
}
