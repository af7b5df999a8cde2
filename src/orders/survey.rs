//! The IVR survey's rating reaches the orders of its call: when a call
//! ends with a rating, every order that links the call records it on that
//! call (the rating also stays on the call record). An order filed after
//! the call ended takes the rating from the call record instead.

use super::desk::apply_to_each;
use super::lifecycle::Command;
use crate::auth::Principal;
use crate::server::Shared;

/// Records `score` on every order of `call_id`; failures are logged (the
/// rating is kept on the call record either way).
pub async fn rate(shared: &Shared, call_id: &str, score: u8) {
    let orders = match shared.store.orders_of_call(call_id).await {
        Ok(orders) => orders,
        Err(e) => {
            tracing::warn!(call = %call_id, error = %e, "survey rating not linked to orders; it stays on the call record");
            return;
        }
    };
    let system = Principal::system("ivr-survey");
    let results = apply_to_each(shared, &orders, &system, "call_survey", || {
        Command::CallSurvey {
            call_id: call_id.to_owned(),
            score,
        }
    })
    .await;
    for (order_no, result) in results {
        if let Err(e) = result {
            tracing::warn!(order = %order_no, call = %call_id, error = %e, "survey rating not recorded on the order")
        }
    }
}
