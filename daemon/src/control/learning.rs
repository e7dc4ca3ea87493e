//! What is learned (lead times, send slots): shown to whoever may read the
//! pooled report, frozen or reset by an administrator.

use touchpoint_common::learning::{LearnedState, LearningAction};
use touchpoint_common::protocol::{ErrorKind, Response};
use touchpoint_common::Date;

use super::reply::{err, store_err};
use super::Ctx;
use crate::learning::LearningError;

/// The state cut to one service (all when `None`).
fn only(mut state: LearnedState, service: Option<&str>) -> LearnedState {
    if let Some(s) = service {
        state.services.retain(|l| l.service == s);
    }
    state
}

/// The refusal for a service the brand policy does not have.
fn unknown(ctx: &Ctx, service: Option<&str>) -> Option<Response> {
    match service {
        Some(s) if !ctx.policies.current().brand.services.contains_key(s) => Some(err(
            ErrorKind::NotFound,
            format!("no service {s:?} in the brand policy"),
        )),
        _ => None,
    }
}

/// What is in force: what the last scheduled run or committing plan
/// computed (a read computes nothing, writes nothing but its audit line).
pub(super) fn learning(ctx: &Ctx, service: Option<String>) -> Response {
    if let Some(e) = unknown(ctx, service.as_deref()) {
        return e;
    }
    let learned = ctx.planning.learning.current();
    Response::Learning(Box::new(only(learned.state().clone(), service.as_deref())))
}

/// Freezes or resets one service's learned values.
pub(super) fn action(ctx: &Ctx, service: String, action: LearningAction) -> Response {
    if let Some(e) = unknown(ctx, Some(&service)) {
        return e;
    }
    let set = ctx.policies.current();
    let learning = &ctx.planning.learning;
    let done = match action {
        LearningAction::Freeze => learning.freeze(&ctx.stores, &set, &service),
        LearningAction::Reset => learning.reset(&ctx.stores, &set, &service, Date::today()),
    };
    match done {
        Ok(state) => Response::Learning(Box::new(only(state, Some(&service)))),
        Err(LearningError::Invalid(e)) => err(ErrorKind::Invalid, e),
        Err(LearningError::Store(e)) => store_err(e),
    }
}
