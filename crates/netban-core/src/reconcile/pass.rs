//! What a pass is asked to do: its scope, its options, and (for previews) the lease change
//! it pretends was made.

use std::time::Instant;

use crate::lease::Lease;
use crate::target::Target;

/// Which targets a pass looks at.
#[derive(Debug, Clone)]
pub enum Scope {
    All,
    Targets(Vec<Target>),
}

impl Scope {
    pub(super) fn targets(&self) -> Option<&[Target]> {
        match self {
            Scope::All => None,
            Scope::Targets(ts) => Some(ts),
        }
    }
}

/// How a pass runs.
#[derive(Debug, Clone, Copy)]
pub struct PassOptions {
    /// No new batch starts after this; a running one is cut off shortly after.
    pub deadline: Instant,
    /// Ignore retry times (`netban sync`).
    pub force: bool,
    /// List what each sink holds and repair drift (Scope::All only).
    pub repair: bool,
    /// Plan and report what would be sent; change nothing.
    pub dry_run: bool,
}

/// A change to the leases that a preview pretends was made (`--dry-run ban/unban`).
#[derive(Debug, Clone)]
pub enum LeaseEdit {
    Add(Lease),
    /// Ends the leases of `target` of `jail` (every jail when `None`) from `origin`.
    End {
        target: Target,
        jail: Option<String>,
        origin: crate::lease::Origin,
    },
    /// Ends every lease of `target`, whatever its jail or origin (`unban --everywhere`).
    EndAll {
        target: Target,
    },
}

impl LeaseEdit {
    pub(super) fn apply(&self, leases: &mut Vec<Lease>) {
        match self {
            LeaseEdit::Add(l) => {
                leases.retain(|x| {
                    !(x.target == l.target && x.jail == l.jail && x.origin == l.origin)
                });
                leases.push(l.clone());
            }
            LeaseEdit::End {
                target,
                jail,
                origin,
            } => leases.retain(|x| {
                !(x.target == *target
                    && jail.as_ref().is_none_or(|j| *j == x.jail)
                    && x.origin == *origin)
            }),
            LeaseEdit::EndAll { target } => leases.retain(|x| x.target != *target),
        }
    }
}
