//! One module per view; each draws from the [`crate::tui::app::AppState`].

pub mod approvals;
pub mod overview;
pub mod policies;
pub mod queue;
pub mod tenants;
