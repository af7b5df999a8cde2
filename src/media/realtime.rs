//! Real-time scheduling for the media threads.
//!
//! A media worker sends every stream's frame once per 20 ms tick. Under the
//! default scheduler the threads its own packets wake (callers, SIP) preempt
//! it mid-burst and the packets go out late; SCHED_FIFO keeps it running to
//! the end of each short burst. The workers sleep between ticks, so they
//! cannot starve the rest of the machine. FreeSWITCH (`-rp`) and Asterisk
//! (`-p`) do the same for their media threads.

/// Puts the calling thread under SCHED_FIFO at `priority` (1–99).
///
/// Fails with `PermissionDenied` when the process has neither root,
/// `CAP_SYS_NICE` nor an `RLIMIT_RTPRIO` at or above `priority`.
#[cfg(target_os = "linux")]
pub fn set_current_thread_fifo(priority: u8) -> std::io::Result<()> {
    let param = libc::sched_param {
        sched_priority: i32::from(priority),
    };
    // SAFETY: pthread_self() is always a valid handle for the calling
    // thread, and `param` is a fully initialised sched_param that outlives
    // the call.
    let rc = unsafe { libc::pthread_setschedparam(libc::pthread_self(), libc::SCHED_FIFO, &param) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::from_raw_os_error(rc))
    }
}

#[cfg(not(target_os = "linux"))]
pub fn set_current_thread_fifo(_priority: u8) -> std::io::Result<()> {
    Err(std::io::Error::new(
        std::io::ErrorKind::Unsupported,
        "real-time priority is only set on Linux",
    ))
}

/// The calling thread's scheduling policy and priority, for tests and
/// diagnostics.
#[cfg(target_os = "linux")]
pub fn current_thread_policy() -> (i32, i32) {
    let mut policy = 0;
    let mut param = libc::sched_param { sched_priority: 0 };
    // SAFETY: both out-pointers are valid for the duration of the call.
    unsafe { libc::pthread_getschedparam(libc::pthread_self(), &mut policy, &mut param) };
    (policy, param.sched_priority)
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    fn fifo_is_set_or_refused_with_a_permission_error() {
        let result = std::thread::spawn(|| {
            let r = set_current_thread_fifo(5);
            (r.map_err(|e| e.kind()), current_thread_policy())
        })
        .join()
        .unwrap();
        match result {
            (Ok(()), policy) => assert_eq!(policy, (libc::SCHED_FIFO, 5)),
            (Err(kind), policy) => {
                assert_eq!(kind, std::io::ErrorKind::PermissionDenied);
                assert_eq!(policy.0, libc::SCHED_OTHER, "a refusal changes nothing");
            }
        }
    }
}
