//! A real softphone, baresip, calls 12345: the call is answered, baresip
//! decodes the greeting it receives (recorded by its `sndfile` module), and
//! the server keeps a record of the call.

mod common;

use common::baresip::*;
use common::*;
use serde_json::json;
use std::path::Path;
use std::time::{Duration, Instant};

/// How long the call is held once established.
const HOLD: Duration = Duration::from_secs(4);

#[test]
fn baresip_calls_12345_and_hears_the_greeting() {
    let started = Instant::now();
    require("baresip", "baresip-core");
    for module in [
        "g711", "aufile", "aubridge", "sndfile", "account", "menu", "ctrl_tcp",
    ] {
        let path = Path::new(MODULES).join(format!("{module}.so"));
        assert!(
            path.exists(),
            "baresip module {} is missing: apt-get install baresip-core (scripts/test installs it)",
            path.display()
        );
    }

    let server = Server::start("baresip", &[]);
    // The ctrl_tcp port is picked free before baresip binds it: on the rare
    // lost race, start again with another port.
    let mut attempts = Vec::new();
    let (mut baresip, mut ctrl, rec) = loop {
        let dir = scratch("baresip-peer");
        let (ctrl_port, rec) = write_baresip_config(&dir);
        let mut baresip = Baresip::spawn(&dir);
        match Ctrl::connect(ctrl_port, &mut baresip) {
            Ok(ctrl) => break (baresip, ctrl, rec),
            Err(e) => attempts.push(e),
        }
        assert!(
            attempts.len() < 3,
            "baresip did not start:\n{}",
            attempts.join("\n")
        );
    };
    let diag = |ctrl: &Ctrl, baresip: &Baresip| {
        format!(
            "{}{}--- server log ---\n{}",
            ctrl.transcript(),
            baresip.output(),
            server.log()
        )
    };

    let target = format!("sip:12345@{}", server.sip);
    ctrl.send("dial", Some(&target));
    let dialed = ctrl.wait_for(Duration::from_secs(5), |v| {
        v["response"] == true && v["token"] == "dial"
    });
    assert!(
        dialed.as_ref().is_some_and(|v| v["ok"] == true),
        "baresip did not accept the dial command: {dialed:?}\n{}",
        diag(&ctrl, &baresip)
    );
    let established = ctrl.wait_for(Duration::from_secs(8), |v| {
        v["event"] == true && (v["type"] == "CALL_ESTABLISHED" || v["type"] == "CALL_CLOSED")
    });
    let established = match established {
        Some(e) if e["type"] == "CALL_ESTABLISHED" => e,
        other => panic!(
            "the call to {target} was not established: {other:?}\n{}",
            diag(&ctrl, &baresip)
        ),
    };
    // baresip's call id is the SIP Call-ID.
    let call_id = established["id"].as_str().unwrap_or_default().to_string();
    assert!(
        !call_id.is_empty(),
        "no call id in {established}\n{}",
        diag(&ctrl, &baresip)
    );

    std::thread::sleep(HOLD);
    let early_close = ctrl.event("CALL_CLOSED", Duration::ZERO);
    assert!(
        early_close.is_none(),
        "the call ended before baresip hung up: {early_close:?}\n{}",
        diag(&ctrl, &baresip)
    );
    ctrl.send("hangup", None);
    let closed = ctrl.event("CALL_CLOSED", Duration::from_secs(5));
    assert!(
        closed.is_some(),
        "baresip did not close the call after hangup\n{}",
        diag(&ctrl, &baresip)
    );
    // Quitting closes sndfile's WAV files (their headers get their sizes).
    ctrl.send("quit", None);
    if !baresip.wait_exit(Duration::from_secs(5)) {
        eprintln!("baresip did not quit within 5 s; killing it");
    }

    let recordings = decoded_recordings(&rec);
    assert!(
        recordings.len() == 1,
        "expected one decoded recording (dump-*-dec.wav) in {}, found {recordings:?}\n{}",
        rec.display(),
        diag(&ctrl, &baresip)
    );
    let (rate, pcm) =
        read_wav(&recordings[0]).unwrap_or_else(|e| panic!("{e}\n{}", diag(&ctrl, &baresip)));
    let heard = to_8khz(rate, &pcm);
    let secs = heard.len() as f64 / 8000.0;
    assert!(
        secs > 2.0,
        "baresip recorded only {secs:.2} s of received audio ({} samples at {rate} Hz)\n{}",
        pcm.len(),
        diag(&ctrl, &baresip)
    );
    let corr = best_envelope_correlation(&heard, &greeting_pcm());
    assert!(
        corr > 0.9,
        "what baresip heard ({secs:.2} s at {rate} Hz, {}) is not the greeting: correlation {corr:.3}\n{}",
        recordings[0].display(),
        diag(&ctrl, &baresip)
    );

    let call = server.call_record(&call_id);
    assert_eq!(call["status"], 200, "{call}\n{}", diag(&ctrl, &baresip));
    assert!(
        call["codec"] == "PCMU" || call["codec"] == "PCMA",
        "unexpected codec: {call}"
    );
    assert_eq!(call["caller"], "tester", "{call}");
    assert_eq!(call["callee"], "12345", "{call}");
    assert_eq!(call["hangup_by"], "caller", "{call}");
    assert!(
        call["rtp"]["packets_out"].as_i64().unwrap_or(0) > 100,
        "{call}"
    );
    assert!(
        call["rtp"]["packets_in"].as_i64().unwrap_or(0) > 0,
        "baresip's silence never reached the server: {call}"
    );
    let newest = server.recent_calls(1);
    assert_eq!(
        newest.first().map(|c| c["call_id"].clone()),
        Some(json!(call_id)),
        "baresip's call is not the newest record: {newest:?}"
    );
    eprintln!(
        "baresip heard {secs:.2} s at {rate} Hz, envelope correlation {corr:.3}; test took {:?}",
        started.elapsed()
    );
}
