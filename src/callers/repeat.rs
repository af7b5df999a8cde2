//! Repeat callers: when a call from a citizen with an open order ends, the
//! call joins that order (the order shows it, counts it, and its audit log
//! says so). The IVR already gives such callers priority on the way in
//! (`repeat_caller` in the main flow); this is the record on the way out.

use crate::auth::Principal;
use crate::call::record::CallRecord;
use crate::orders::desk::apply_to_each;
use crate::orders::lifecycle::{Command, LinkedCall};
use crate::server::Shared;

/// Links `record` to every order its caller still has open that was filed
/// before the call began. Failures are logged: the call record is kept
/// either way, and the link is a convenience for the order's handlers.
pub async fn link(shared: &Shared, record: &CallRecord) {
    if record.answered_at.is_none() || record.caller.is_empty() {
        return;
    }
    if record
        .final_action
        .as_deref()
        .is_some_and(|a| a.starts_with("blocked"))
    {
        return;
    }
    let orders = match shared
        .store
        .open_orders_of(&record.caller, record.started_at)
        .await
    {
        Ok(orders) => orders,
        Err(e) => {
            tracing::warn!(call = %record.call_id, error = %e, "repeat call not linked to open orders");
            return;
        }
    };
    if orders.is_empty() {
        return;
    }
    let system = Principal::system("repeat-caller");
    let call = linked_call(record);
    let results = apply_to_each(shared, &orders, &system, "repeat_call", || {
        Command::RepeatCall { call: call.clone() }
    })
    .await;
    for (order_no, result) in results {
        match result {
            Ok(true) => {
                tracing::info!(order = %order_no, call = %record.call_id, "repeat call linked")
            }
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(order = %order_no, call = %record.call_id, error = %e, "repeat call not linked")
            }
        }
    }
}

/// The call as an order keeps it.
pub fn linked_call(record: &CallRecord) -> LinkedCall {
    LinkedCall {
        call_id: record.call_id.clone(),
        recording: record.call_recording.clone(),
        ivr_path: record.flow_path.clone(),
        seat: record.seat.clone(),
        survey_score: record.survey_score,
    }
}
