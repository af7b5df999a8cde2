//! The browser desktops' pages and lookups against the real binary:
//! `/agent`, `/supervisor` and their files under `/desk/`, the catalogue
//! the order form picks from (`/api/v1/catalogue`, whose choices the order
//! API must accept), and the transfer directory (`/api/v1/desk/directory`)
//! built from the configured trunks and the units a trunk reaches. Users
//! and tokens are made with the real `hotline users add`.

mod common;

use common::orders::*;
use common::trunk::{trunk_entry, trunk_section};
use common::*;
use serde_json::{Value, json};

/// The ids a browser test of the agent desktop drives; renaming one breaks
/// that contract.
const AGENT_IDS: &[&str] = &[
    "seat",
    "password",
    "login",
    "login-error",
    "desk",
    "seat-status",
    "btn-available",
    "btn-break",
    "break-reason",
    "btn-wrapup-done",
    "call-panel",
    "call-from",
    "call-ivr-path",
    "call-wait",
    "call-queue",
    "earlier-calls",
    "open-orders",
    "call-state",
    "remote-audio",
    "btn-answer",
    "btn-reject",
    "btn-hangup",
    "btn-hold",
    "btn-mute",
    "auto-answer",
    "btn-conf-110",
    "btn-conf-119",
    "btn-conf-120",
    "btn-conf-122",
    "btn-conf-drop",
    "transfer-target",
    "btn-transfer",
    "conf-state",
    "order-form",
    "order-phone",
    "order-category",
    "order-type",
    "order-title",
    "order-content",
    "order-location",
    "order-name",
    "btn-submit-order",
    "order-result",
    "kb-query",
    "btn-kb-search",
    "kb-results",
];

const SUPERVISOR_IDS: &[&str] = &[
    "seat",
    "password",
    "login",
    "login-error",
    "desk",
    "seats",
    "queues",
    "monitor-state",
    "btn-monitor-stop",
    "remote-audio",
];

fn has_id(page: &str, id: &str) -> bool {
    page.contains(&format!("id=\"{id}\""))
}

#[test]
fn the_pages_and_their_files_are_served() {
    let server = Server::start("desk-pages", &[]);
    let anyone = Client::anonymous(&server);
    for (path, content_type) in [
        ("/agent", "text/html; charset=utf-8"),
        ("/supervisor", "text/html; charset=utf-8"),
        ("/desk/desk.css", "text/css; charset=utf-8"),
        ("/desk/desk-common.js", "text/javascript; charset=utf-8"),
        ("/desk/agent.js", "text/javascript; charset=utf-8"),
        ("/desk/supervisor.js", "text/javascript; charset=utf-8"),
    ] {
        let a = anyone.get(path);
        assert_eq!(a.status, 200, "{path}: {a}");
        assert_eq!(a.header("content-type"), Some(content_type), "{path}");
        assert_eq!(a.header("cache-control"), Some("no-cache"), "{path}");
        assert_eq!(
            a.header("x-content-type-options"),
            Some("nosniff"),
            "{path}"
        );
        // Only the page's own origin: nothing loads from a CDN.
        let csp = a.header("content-security-policy").unwrap_or_default();
        assert!(csp.contains("default-src 'self'"), "{path}: {csp}");
        assert!(!a.text.trim().is_empty(), "{path} is empty");
    }

    let agent = anyone.get("/agent").text;
    for id in AGENT_IDS {
        assert!(has_id(&agent, id), "/agent has no #{id}");
    }
    for key in ["0", "5", "9", "*", "#"] {
        assert!(
            agent.contains(&format!("data-dtmf=\"{key}\"")),
            "no keypad key {key}"
        );
    }
    for reason in ["用餐", "休息", "培训", "会议"] {
        assert!(
            agent.contains(&format!("<option>{reason}</option>")),
            "{reason}"
        );
    }
    let supervisor = anyone.get("/supervisor").text;
    for id in SUPERVISOR_IDS {
        assert!(has_id(&supervisor, id), "/supervisor has no #{id}");
    }
    // The script keeps the test hook and the monitor buttons' attributes.
    let common = anyone.get("/desk/desk-common.js").text;
    assert!(common.contains("window.hotlineDesk"));
    let script = anyone.get("/desk/supervisor.js").text;
    assert!(script.contains("'data-monitor'") && script.contains("'data-call'"));

    // A file that is not there is the API's 404, not a page.
    let missing = anyone.get("/desk/nothing.js");
    assert!(missing.error(404).contains("/desk/nothing.js"), "{missing}");
    anyone.get("/desk/../agent").expect(404);
}

#[test]
fn the_catalogue_feeds_the_order_form() {
    let server = Server::start("desk-catalogue", &[]);
    let agent = Client::new(&server, &user(&server, "agent", "agent", None));
    let answer = agent.get("/api/v1/catalogue");
    let cat = answer.expect(200);

    // The tree: 01 城乡建设 → 0101 供暖 → 010101 不供暖 (an emergency matter).
    let top = cat["categories"].as_array().expect("categories");
    assert!(top.iter().all(|c| c["level"] == 1), "{answer}");
    let find = |list: &Value, code: &str| -> Value {
        list.as_array()
            .and_then(|l| l.iter().find(|c| c["code"] == code))
            .cloned()
            .unwrap_or_else(|| panic!("no category {code} in {list}"))
    };
    let building = find(&cat["categories"], "01");
    assert_eq!(building["name"], "城乡建设");
    let heating = find(&building["children"], "0101");
    assert_eq!(heating["name"], "供暖");
    assert_eq!(heating["level"], 2);
    let no_heat = find(&heating["children"], "010101");
    assert_eq!(no_heat["name"], "不供暖");
    assert_eq!(no_heat["emergency"], true);
    assert_eq!(no_heat["children"], json!([]));
    assert_eq!(find(&heating["children"], "010102")["emergency"], false);

    let divisions = cat["divisions"].as_array().expect("divisions");
    let hohhot = divisions
        .iter()
        .find(|d| d["code"] == "150100")
        .expect("150100");
    assert_eq!(hohhot["name"], "呼和浩特市");
    assert_eq!(hohhot["parent"], "150000");

    let values = |key: &str| -> Vec<String> {
        cat[key]
            .as_array()
            .unwrap_or_else(|| panic!("no {key}"))
            .iter()
            .map(|c| c["value"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        values("appeal_types"),
        [
            "consultation",
            "help",
            "complaint",
            "report",
            "suggestion",
            "praise",
            "other"
        ]
    );
    assert_eq!(cat["appeal_types"][0]["name"], "咨询");
    assert_eq!(values("urgencies"), ["normal", "urgent", "emergency"]);

    // Every appeal type it offers is one the order API takes, with a
    // category and a division from the same answer.
    for (i, appeal_type) in values("appeal_types").iter().enumerate() {
        let filed = agent.post_keyed(
            "/api/v1/orders",
            &format!("desk-catalogue-{i}"),
            &json!({
                "channel": "web",
                "citizen": {"phone": "13800138000"},
                "appeal_type": appeal_type,
                "category": "010102",
                "division": "150100",
                "content": "室温只有十四度",
            }),
        );
        assert_eq!(filed.status, 201, "{appeal_type}: {filed}");
    }
}

#[test]
fn the_directory_lists_trunks_and_the_units_they_reach() {
    let trunks = trunk_section(&[
        trunk_entry("110", 5110, "description = \"Police\"\noptions_secs = 0"),
        trunk_entry("119", 5119, "description = \"Fire\"\noptions_secs = 0"),
        trunk_entry("120", 5120, "options_secs = 0"),
        trunk_entry("122", 5122, "options_secs = 0"),
        trunk_entry(
            "water",
            5200,
            "description = \"Water utility\"\noptions_secs = 0",
        ),
        // Named after a unit of units.toml: that unit is reachable.
        trunk_entry(
            "hhht-water",
            5201,
            "description = \"呼和浩特市供水公司热线\"\noptions_secs = 0",
        ),
    ]);
    let server = Server::start("desk-directory", &[("[trunk]", &trunks)]);
    let agent = Client::new(&server, &user(&server, "agent", "agent", None));
    let answer = agent.get("/api/v1/desk/directory");
    let dir = answer.expect(200);

    let listed: Vec<(&str, bool)> = dir["trunks"]
        .as_array()
        .expect("trunks")
        .iter()
        .map(|t| (t["name"].as_str().unwrap(), t["emergency"] == true))
        .collect();
    // The call-back line (`{number}` in its URI) is no target by name.
    assert_eq!(
        listed,
        [
            ("110", true),
            ("119", true),
            ("120", true),
            ("122", true),
            ("water", false),
            ("hhht-water", false)
        ],
        "{answer}"
    );
    assert_eq!(dir["trunks"][1]["description"], "Fire");
    // No health checks configured: nobody knows yet.
    assert_eq!(dir["trunks"][0]["state"], "unknown");

    assert_eq!(
        dir["units"],
        json!([{
            "id": "hhht-water",
            "name": "呼和浩特市供水公司",
            "kind": "enterprise",
            "division": "150100",
            "target": "hhht-water",
            "state": "unknown",
        }]),
        "{answer}"
    );

    // A unit handler does not transfer calls.
    let handler = Client::new(
        &server,
        &user(&server, "water", "unit_handler", Some("hhht-water")),
    );
    assert!(
        handler
            .get("/api/v1/desk/directory")
            .error(403)
            .contains("unit_handler")
    );
}

#[test]
fn bad_requests_get_a_clear_4xx() {
    let server = Server::start("desk-bad", &[]);
    let anyone = Client::anonymous(&server);
    let agent = Client::new(&server, &user(&server, "agent", "agent", None));
    for path in ["/api/v1/catalogue", "/api/v1/desk/directory"] {
        // No token, or one that is not a token.
        let a = anyone.get(path);
        assert!(a.error(401).contains("authorization"), "{path}: {a}");
        assert!(a.header("www-authenticate").is_some(), "{path}");
        let forged = Client::new(&server, "hl_nonsense");
        forged.get(path).error(401);
        let unknown = Client::new(&server, &format!("hl_{}", "0".repeat(64)));
        unknown.get(path).error(401);

        // Neither takes parameters.
        let a = agent.get(&format!("{path}?limit=5"));
        assert_eq!(a.field(), "query", "{path}");
        assert!(a.error(400).contains("limit=5"), "{a}");

        // Reading only.
        let a = agent.post(path, &json!({}));
        assert_eq!(a.status, 405, "{path}: {a}");
    }
}

#[test]
fn queues_say_how_long_the_longest_wait_is() {
    let server = Server::start("desk-queues", &[]);
    let (status, body) = server.get("/api/v1/queues");
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    let queues = v["queues"].as_array().expect("queues");
    assert!(!queues.is_empty(), "{body}");
    for q in queues {
        // Nobody calls: nobody waits.
        assert_eq!(q["waiting"], 0, "{body}");
        assert_eq!(q["longest_wait_secs"], 0, "{body}");
    }
}
