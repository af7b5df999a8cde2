//! The knowledge base against the real binary and both databases.
//!
//! API tests start `hotline serve` on SQLite with users made by the real
//! `hotline users add`, and drive entries through draft → review →
//! approved → published → expired with the roles that may (and may not).
//! Search relevance runs real Chinese questions over a seeded set of 36
//! entries (`tests/fixtures/kb_seed.json`: 户口, 居住证, 噪声, 供暖, 停水,
//! 物业, 欠薪, 网约车, 食品安全, 社保, 医保, 公积金, ...). Hits are direct
//! answers given on real orders. The store cases (`both!`) run on a fresh
//! SQLite file and on a private PostgreSQL database; the two-node case
//! starts two servers on one PostgreSQL database and waits for the second
//! to see a publish made on the first by polling, then cuts the database
//! off and checks that search still answers while writes get 503.

mod common;

use common::orders::*;
use common::temp_db::TempDb;
use common::*;
use hotline::auth::Principal;
use hotline::kb::lifecycle::{Command, Content, Entry, Source};
use hotline::store::Store;
use hotline::store::kb::HotTopic;
use serde_json::{Value, json};
use std::path::PathBuf;
use std::time::Duration;

const DIVISION: &str = "150100";

fn body(title: &str, question: &str, answer: &str, unit: Option<&str>) -> Value {
    let mut v = json!({
        "title": title,
        "question": question,
        "answer": answer,
        "source": {
            "issuer": "呼和浩特市医疗保障局",
            "number": "呼医保发〔2025〕12号",
            "effective": "2025-01-01"
        },
        "category": "030202",
        "division": DIVISION,
    });
    if let Some(unit) = unit {
        v["unit"] = json!(unit);
    }
    v
}

fn id_of(answer: &Answer) -> String {
    answer.json["entry"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no entry id: {answer}"))
        .to_owned()
}

fn act(who: &Client, id: &str, action: &str, body: Value) -> Answer {
    who.post(&format!("/api/v1/kb/{id}/{action}"), &body)
}

/// Submits, approves and publishes the entry's newest version.
fn publish(author: &Client, reviewer: &Client, id: &str) {
    act(author, id, "submit", json!({})).expect(200);
    act(reviewer, id, "approve", json!({})).expect(200);
    act(reviewer, id, "publish", json!({})).expect(200);
}

fn search(who: &Client, query: &str) -> Vec<Value> {
    let path = format!("/api/v1/kb/search?{query}");
    let v = who.get(&path);
    v.expect(200)["results"]
        .as_array()
        .unwrap_or_else(|| panic!("no results: {v}"))
        .clone()
}

fn q(text: &str) -> String {
    serde_urlencoded::to_string([("q", text)]).unwrap()
}

fn ids(results: &[Value]) -> Vec<String> {
    results
        .iter()
        .map(|r| r["entry_id"].as_str().unwrap().to_owned())
        .collect()
}

/// Waits until the server's index is built (search answers 200).
fn wait_ready(who: &Client) {
    let ok = poll(Duration::from_secs(20), Duration::from_millis(100), || {
        (who.get(&format!("/api/v1/kb/search?{}", q("户口"))).status == 200).then_some(())
    });
    assert!(ok.is_some(), "the knowledge-base index never became ready");
}

#[test]
fn lifecycle_roles_and_versions() {
    let server = Server::start("kb-lifecycle", &[]);
    let handler = Client::new(
        &server,
        &user(&server, "medsec", "unit_handler", Some("hhht-medsec")),
    );
    let other = Client::new(
        &server,
        &user(&server, "water", "unit_handler", Some("hhht-water")),
    );
    let supervisor = Client::new(&server, &user(&server, "sup", "supervisor", None));
    let agent = Client::new(&server, &user(&server, "agent", "agent", None));
    wait_ready(&agent);

    // Who may write.
    let b = body(
        "异地就医备案",
        "外地看病怎么报销？",
        "先办理异地就医备案。",
        None,
    );
    agent.post("/api/v1/kb", &b).error(403);
    agent
        .post("/api/v1/kb", &body("x", "y", "z", Some("hhht-medsec")))
        .error(403);
    other
        .post("/api/v1/kb", &body("x", "y", "z", Some("hhht-medsec")))
        .error(403);
    let created = handler.post("/api/v1/kb", &b);
    let entry = created.expect(201)["entry"].clone();
    assert_eq!(entry["status"], "draft", "{created}");
    assert_eq!(entry["version"], 1);
    assert_eq!(entry["current"]["content"]["unit"], "hhht-medsec");
    let id = id_of(&created);

    // A draft is nobody's business but its unit's and the reviewers'.
    agent.get(&format!("/api/v1/kb/{id}")).error(404);
    other.get(&format!("/api/v1/kb/{id}")).error(404);
    supervisor.get(&format!("/api/v1/kb/{id}")).expect(200);
    assert!(search(&agent, &q("异地就医")).is_empty());

    // Maintainers list their own unit's entries; agents search instead.
    let listed = |who: &Client| -> Vec<String> {
        let v = who.get("/api/v1/kb?limit=10");
        v.expect(200)["entries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["id"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(listed(&handler), [id.as_str()]);
    assert_eq!(listed(&supervisor), [id.as_str()]);
    assert!(listed(&other).is_empty());
    agent.get("/api/v1/kb").error(403);

    // Order of steps and who takes them.
    act(&supervisor, &id, "publish", json!({})).error(409);
    act(&other, &id, "submit", json!({})).error(404);
    act(&handler, &id, "submit", json!({})).expect(200);
    act(&handler, &id, "approve", json!({})).error(403);
    let sent = act(&supervisor, &id, "send_back", json!({}));
    assert_eq!(sent.field(), "note");
    let sent = act(
        &supervisor,
        &id,
        "send_back",
        json!({"note": "请写明备案渠道"}),
    );
    assert_eq!(sent.expect(200)["entry"]["status"], "draft");

    // Every edit is a new version; a stale one is a conflict.
    let mut b2 = body(
        "异地就医备案和直接结算",
        "外地看病住院，医保怎么报销？",
        "通过国家医保服务平台App办理异地就医备案，备案后直接结算。",
        None,
    );
    b2["version"] = json!(1);
    let edited = handler.send("PUT", &format!("/api/v1/kb/{id}"), &[], &b2.to_string());
    assert_eq!(edited.expect(200)["entry"]["version"], 2, "{edited}");
    handler
        .send("PUT", &format!("/api/v1/kb/{id}"), &[], &b2.to_string())
        .error(409);
    publish(&handler, &supervisor, &id);

    // Published: everyone reads it, search finds it at once.
    let read = agent.get(&format!("/api/v1/kb/{id}"));
    assert_eq!(read.expect(200)["version"], 2, "{read}");
    let found = search(&agent, &q("外地住院怎么报销"));
    assert_eq!(ids(&found).first(), Some(&id), "{found:?}");
    assert_eq!(found[0]["version"], 2);
    assert_eq!(found[0]["source"]["number"], "呼医保发〔2025〕12号");
    assert!(found[0]["snippet"].as_str().unwrap().contains("备案"));

    // Another unit may not edit it.
    let mut foreign = b2.clone();
    foreign["version"] = json!(2);
    other
        .send(
            "PUT",
            &format!("/api/v1/kb/{id}"),
            &[],
            &foreign.to_string(),
        )
        .error(403);

    // Editing the published entry: a new draft, the old one stays live.
    let b3 = body(
        "异地就医备案和直接结算（2026年版）",
        "外地看病住院，医保怎么报销？",
        "通过国家医保服务平台App或微信小程序办理异地就医备案，备案后在定点医院直接结算。",
        None,
    );
    let edited = handler.send(
        "PUT",
        &format!("/api/v1/kb/{id}"),
        &[("If-Match", "\"2\"")],
        &b3.to_string(),
    );
    assert_eq!(edited.expect(200)["entry"]["status"], "draft", "{edited}");
    assert_eq!(agent.get(&format!("/api/v1/kb/{id}")).json["version"], 2);
    assert_eq!(search(&agent, &q("异地就医"))[0]["version"], 2);
    publish(&handler, &supervisor, &id);
    let found = search(&agent, &q("异地就医"));
    assert_eq!(found[0]["version"], 3);
    assert_eq!(found[0]["title"], "异地就医备案和直接结算（2026年版）");

    // The full history is kept.
    let history = handler.get(&format!("/api/v1/kb/{id}/versions"));
    let versions = history.expect(200)["versions"].as_array().unwrap().clone();
    let statuses: Vec<&str> = versions
        .iter()
        .map(|v| v["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["superseded", "superseded", "published"]);
    assert_eq!(versions[0]["content"]["title"], "异地就医备案");
    let log: Vec<&str> = history.json["log"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        log,
        [
            "create",
            "submit",
            "send_back",
            "edit",
            "submit",
            "approve",
            "publish",
            "edit",
            "submit",
            "approve",
            "publish"
        ]
    );
    // Readers see the published versions only.
    let public = agent.get(&format!("/api/v1/kb/{id}/versions"));
    assert_eq!(public.expect(200)["versions"].as_array().unwrap().len(), 2);
    assert!(public.json.get("log").is_none());

    // Expiry takes it out of search and out of readers' sight.
    act(&handler, &id, "expire", json!({})).error(403);
    act(&supervisor, &id, "expire", json!({"note": "政策调整"})).expect(200);
    assert!(search(&agent, &q("异地就医")).is_empty());
    agent.get(&format!("/api/v1/kb/{id}")).error(404);
    let after = supervisor.get(&format!("/api/v1/kb/{id}"));
    assert_eq!(after.expect(200)["status"], "expired");
    act(&supervisor, &id, "expire", json!({})).error(409);

    // Search needs a token.
    Client::anonymous(&server)
        .get(&format!("/api/v1/kb/search?{}", q("医保")))
        .error(401);
}

#[test]
fn bad_input_names_the_field() {
    let server = Server::start("kb-bad-input", &[]);
    let sup = Client::new(&server, &user(&server, "sup", "supervisor", None));
    wait_ready(&sup);
    let good = body("t", "q", "a", Some("hhht-medsec"));
    let with = |path: &str, value: Value| {
        let mut b = good.clone();
        let mut at = &mut b;
        let parts: Vec<&str> = path.split('.').collect();
        for p in &parts[..parts.len() - 1] {
            at = &mut at[*p];
        }
        at[parts[parts.len() - 1]] = value;
        b
    };
    for (b, field) in [
        (with("unit", json!("no-such-unit")), "unit"),
        (with("category", json!("999999")), "category"),
        (with("division", json!("990000")), "division"),
        (with("title", json!("  ")), "title"),
        (with("answer", json!("")), "answer"),
        (
            with("source.effective", json!("2025-13-01")),
            "source.effective",
        ),
        (
            with("source.expires", json!("2024-01-01")),
            "source.expires",
        ),
        (with("source.issuer", json!("")), "source.issuer"),
        (with("title", json!(5)), "title"),
        (with("colour", json!("red")), "colour"),
        (with("version", json!(1)), "version"),
    ] {
        let a = sup.post("/api/v1/kb", &b);
        assert_eq!(a.field(), field, "{b}");
    }
    let no_title = {
        let mut b = good.clone();
        b.as_object_mut().unwrap().remove("title");
        b
    };
    assert_eq!(sup.post("/api/v1/kb", &no_title).field(), "title");
    assert_eq!(sup.send("POST", "/api/v1/kb", &[], "{not json").status, 400);

    let id = id_of(&sup.post("/api/v1/kb", &good));
    // Edits say which version they start from.
    let put = |headers: &[(&str, &str)], b: &Value| {
        sup.send("PUT", &format!("/api/v1/kb/{id}"), headers, &b.to_string())
    };
    assert_eq!(put(&[], &good).field(), "version");
    assert_eq!(put(&[("If-Match", "abc")], &good).field(), "If-Match");
    assert_eq!(
        put(&[("If-Match", "1")], &with("version", json!(2))).field(),
        "version"
    );
    assert_eq!(
        act(&sup, &id, "send_back", json!({"note": 3})).field(),
        "note"
    );
    act(&sup, &id, "frobnicate", json!({})).error(404);
    sup.get("/api/v1/kb/KB999999").error(404);

    // Search and hot topics parameters.
    for (query, field) in [
        ("", "q"),
        ("q=", "q"),
        ("q=a&limit=0", "limit"),
        ("q=a&category=1", "category"),
        ("q=a&division=abc", "division"),
        ("q=a&sort=new", "query"),
    ] {
        let a = sup.get(&format!("/api/v1/kb/search?{query}"));
        assert_eq!(a.field(), field, "{query}");
    }
    let long = "医".repeat(201);
    assert_eq!(
        sup.get(&format!("/api/v1/kb/search?{}", q(&long))).field(),
        "q"
    );
    for (query, field) in [
        ("from=abc", "from"),
        ("from=10&to=5", "from"),
        ("to=x", "to"),
        ("limit=1000", "limit"),
    ] {
        let a = sup.get(&format!("/api/v1/kb/hot?{query}"));
        assert_eq!(a.field(), field, "{query}");
    }
    // The OpenAPI document lists the routes.
    let doc = sup.get("/api/v1/openapi.json");
    for path in [
        "/api/v1/kb",
        "/api/v1/kb/search",
        "/api/v1/kb/hot",
        "/api/v1/kb/{id}/{action}",
    ] {
        assert!(doc.json["paths"][path].is_object(), "{path} missing");
    }
}

#[derive(serde::Deserialize)]
struct Seed {
    key: String,
    unit: String,
    category: String,
    title: String,
    question: String,
    answer: String,
    source: Value,
}

fn seeds() -> Vec<Seed> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/kb_seed.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Publishes every seed entry; returns (key, id) pairs.
fn seed(sup: &Client) -> Vec<(String, String)> {
    seeds()
        .into_iter()
        .map(|s| {
            let b = json!({
                "title": s.title, "question": s.question, "answer": s.answer,
                "source": s.source, "unit": s.unit, "category": s.category,
                "division": DIVISION,
            });
            let id = id_of(&sup.post("/api/v1/kb", &b));
            publish(sup, sup, &id);
            (s.key, id)
        })
        .collect()
}

#[test]
fn search_relevance_on_chinese_questions() {
    let server = Server::start("kb-relevance", &[]);
    let sup = Client::new(&server, &user(&server, "sup", "supervisor", None));
    let agent = Client::new(&server, &user(&server, "agent", "agent", None));
    wait_ready(&agent);
    let seeded = seed(&sup);
    let id = |key: &str| {
        seeded
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, id)| id.clone())
            .unwrap()
    };
    let key_of = |entry: &str| {
        seeded
            .iter()
            .find(|(_, id)| id == entry)
            .map(|(k, _)| k.clone())
            .unwrap_or_default()
    };
    // The question a citizen asks → the entry that answers it, first.
    let cases = [
        ("孩子出生后怎么上户口", "newborn_hukou"),
        ("小区晚上施工太吵", "construction_noise"),
        ("楼下跳广场舞音响太吵", "square_dance_noise"),
        ("暖气不热", "heating_cold"),
        ("暖气费一平米多少钱", "heating_fee"),
        ("家里停水了什么时候来水", "water_outage"),
        ("外地户口怎么迁到呼和浩特", "settle_move"),
        ("租房住怎么办居住证", "residence_permit"),
        ("身份证丢了", "id_card_lost"),
        ("物业不管事向谁投诉", "property_service"),
        ("包工头拖欠农民工工资", "migrant_wage"),
        ("公司拖欠工资三个月", "company_wage"),
        ("网约车司机绕路多收钱", "ride_hailing_complaint"),
        ("饭店后厨太脏吃了拉肚子", "restaurant_hygiene"),
        ("超市买到过期食品能赔偿吗", "expired_food"),
        ("社保卡丢了怎么补", "social_security_card"),
        ("在外地住院医保能报销吗", "medical_offsite"),
        ("公积金租房提取", "housing_fund_withdraw"),
        ("公积金贷款能贷多少", "housing_fund_loan"),
        ("刚出生的宝宝怎么参加医保", "newborn_medical"),
        ("被辞退了能领失业金吗", "unemployment"),
        ("家里有煤气味", "gas_leak"),
        ("二手房过户办房产证", "real_estate_registration"),
        ("八十岁老人高龄补贴", "elderly_allowance"),
    ];
    let mut misses = Vec::new();
    for (question, want) in cases {
        let results = search(&agent, &q(question));
        let got: Vec<String> = ids(&results).iter().map(|i| key_of(i)).collect();
        if got.first().map(String::as_str) != Some(want) {
            misses.push(format!("{question} → {got:?}, wanted {want} first"));
        }
    }
    assert!(misses.is_empty(), "{}", misses.join("\n"));

    // A question the base does not cover finds nothing.
    for question in ["火星移民签证", "怎么办理吗", "请问一下"] {
        let results = search(&agent, &q(question));
        assert!(results.is_empty(), "{question}: {results:?}");
    }

    // Filters: a category prefix, the unit, the division.
    let medical = search(&agent, &format!("{}&category=0302", q("医保")));
    assert!(!medical.is_empty());
    assert!(
        medical
            .iter()
            .all(|r| r["category"].as_str().unwrap().starts_with("0302")),
        "{medical:?}"
    );
    let by_unit = search(&agent, &format!("{}&unit=hhht-police", q("户口")));
    assert!(by_unit.iter().all(|r| r["unit"] == "hhht-police"));
    assert_eq!(ids(&by_unit).first(), Some(&id("newborn_hukou")));
    assert!(search(&agent, &format!("{}&division=150200", q("户口"))).is_empty());
    assert_eq!(search(&agent, &format!("{}&limit=2", q("医保"))).len(), 2);

    // Title words weigh more than answer words: 出生医学证明 is in three
    // answers but only one title.
    let cert = search(&agent, &q("出生医学证明"));
    assert_eq!(ids(&cert).first(), Some(&id("birth_certificate")));

    // An entry whose source document lapsed (居民医保 2025 rules, expired
    // 2025-12-31) is out of search at once and expired by the sweep.
    let lapsed = id("medical_residents");
    assert!(!ids(&search(&agent, &q("居民医保什么时候交"))).contains(&lapsed));
    let expired = poll(Duration::from_secs(15), Duration::from_millis(200), || {
        let v = sup.get(&format!("/api/v1/kb/{lapsed}"));
        (v.json["status"] == "expired").then_some(())
    });
    assert!(expired.is_some(), "the lapsed entry was never expired");
}

fn appeal() -> Value {
    json!({
        "channel": "phone",
        "citizen": {"name": "张三", "phone": "13800000000"},
        "appeal_type": "consultation",
        "category": "030202",
        "division": "150102",
        "content": "咨询异地就医怎么报销",
    })
}

#[test]
fn direct_answers_are_hits_and_make_hot_topics() {
    let server = Server::start("kb-hits", &[]);
    let sup = Client::new(&server, &user(&server, "sup", "supervisor", None));
    let agent = Client::new(&server, &user(&server, "agent", "agent", None));
    wait_ready(&agent);
    let make = |title: &str| {
        let id = id_of(&sup.post("/api/v1/kb", &body(title, "问", "答", Some("hhht-medsec"))));
        publish(&sup, &sup, &id);
        id
    };
    let (a, b) = (make("异地就医备案"), make("门诊慢特病"));
    let draft = id_of(&sup.post("/api/v1/kb", &body("草稿", "问", "答", Some("hhht-medsec"))));
    let order = || {
        let v = agent.post("/api/v1/orders", &appeal());
        v.expect(201)["order"]["order_no"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let answer = |no: &str, entry: &str| {
        agent.post(
            &format!("/api/v1/orders/{no}/direct-answer"),
            &json!({"kb_entry": entry, "answer": "请先办理异地就医备案"}),
        )
    };
    let before = now_ms();
    for _ in 0..3 {
        answer(&order(), &a).expect(200);
    }
    answer(&order(), &b).expect(200);

    // An entry that is not there, or not published, is refused; the
    // order stays open.
    let no = order();
    assert_eq!(answer(&no, "KB424242").field(), "kb_entry");
    assert_eq!(answer(&no, &draft).field(), "kb_entry");
    let open = agent.get(&format!("/api/v1/orders/{no}"));
    assert_eq!(open.expect(200)["order"]["status"], "accepted", "{open}");
    // A closed order cannot be answered again, so it counts once.
    let closed = order();
    answer(&closed, &b).expect(200);
    answer(&closed, &b).error(409);
    // A direct answer without an entry is no hit.
    agent
        .post(
            &format!("/api/v1/orders/{}/direct-answer", order()),
            &json!({"answer": "已告知办理渠道"}),
        )
        .expect(200);

    let hot = agent.get(&format!("/api/v1/kb/hot?from={before}&limit=5"));
    let topics = hot.expect(200)["topics"].as_array().unwrap().clone();
    let got: Vec<(String, i64)> = topics
        .iter()
        .map(|t| {
            (
                t["entry_id"].as_str().unwrap().to_owned(),
                t["hits"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(got, [(a.clone(), 3), (b.clone(), 2)], "{hot}");
    assert_eq!(topics[0]["title"], "异地就医备案");
    assert_eq!(topics[0]["category"], "030202");
    let later = now_ms() + 1;
    let none = agent.get(&format!("/api/v1/kb/hot?from={later}&to={}", later + 1000));
    assert!(none.expect(200)["topics"].as_array().unwrap().is_empty());
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

#[test]
fn a_second_node_catches_up_by_polling_and_search_outlives_the_database() {
    let db = TempDb::new("kb_nodes");
    let store = format!("database_url = \"{}\"", db.url());
    let first = Server::start("kb-node-a", &[("store", &store)]);
    let second = Server::start("kb-node-b", &[("store", &store)]);
    let sup = Client::new(&first, &user(&first, "sup", "supervisor", None));
    let agent_token = user(&first, "agent", "agent", None);
    let on_a = Client::new(&first, &agent_token);
    let on_b = Client::new(&second, &agent_token);
    wait_ready(&on_a);
    wait_ready(&on_b);

    let id = id_of(&sup.post(
        "/api/v1/kb",
        &body(
            "异地就医备案",
            "外地看病怎么报销",
            "先办理异地就医备案。",
            Some("hhht-medsec"),
        ),
    ));
    publish(&sup, &sup, &id);
    assert_eq!(ids(&search(&on_a, &q("异地就医"))), [id.as_str()]);
    let seen = poll(Duration::from_secs(15), Duration::from_millis(200), || {
        (ids(&search(&on_b, &q("异地就医"))) == [id.as_str()]).then_some(())
    });
    assert!(seen.is_some(), "the second node never saw the publish");

    act(&sup, &id, "expire", json!({})).expect(200);
    let gone = poll(Duration::from_secs(15), Duration::from_millis(200), || {
        search(&on_b, &q("异地就医")).is_empty().then_some(())
    });
    assert!(gone.is_some(), "the second node never saw the expiry");

    // Publish another, then lose the database: search keeps answering
    // from memory; writes say 503 and change nothing.
    let id2 = id_of(&sup.post(
        "/api/v1/kb",
        &body(
            "门诊慢特病",
            "高血压能报销吗",
            "申请门诊慢特病待遇认定。",
            Some("hhht-medsec"),
        ),
    ));
    publish(&sup, &sup, &id2);
    db.outage();
    assert_eq!(ids(&search(&on_a, &q("慢特病"))), [id2.as_str()]);
    sup.post("/api/v1/kb", &body("t", "q", "a", Some("hhht-medsec")))
        .error(503);
    db.restore();
    let back = poll(Duration::from_secs(20), Duration::from_millis(100), || {
        (sup.post("/api/v1/kb", &body("t", "q", "a", Some("hhht-medsec")))
            .status
            == 201)
            .then_some(())
    });
    assert!(back.is_some(), "writes never came back after the outage");
}

// ---------------------------------------------------------------------------
// The store on both databases
// ---------------------------------------------------------------------------

macro_rules! both {
    ($($case:ident),* $(,)?) => {$(
        mod $case {
            #[test]
            fn sqlite() {
                let dir = hotline_scratch(stringify!($case));
                let url = format!("sqlite:{}", dir.join("kb.db").display());
                tokio::runtime::Runtime::new().unwrap().block_on(async {
                    super::$case(&Store::connect(&url).await.unwrap()).await
                });
                let _ = std::fs::remove_dir_all(dir);
            }

            #[test]
            fn postgres() {
                let db = super::TempDb::new(concat!("kb_", stringify!($case)));
                db.rt.block_on(async {
                    super::$case(&Store::connect(&db.url()).await.unwrap()).await
                });
            }

            use super::{Store, hotline_scratch};
        }
    )*};
}

fn hotline_scratch(case: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("hotline-kb-{case}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

both!(hot_topics_count_hits_in_range, changes_are_sequenced);

fn admin() -> Principal {
    Principal::system("test-admin")
}

fn content(title: &str) -> Content {
    Content {
        title: title.into(),
        question: "问".into(),
        answer: "答".into(),
        source: Source {
            issuer: "呼和浩特市医疗保障局".into(),
            number: "呼医保发〔2025〕12号".into(),
            effective: "2025-01-01".into(),
            expires: Some("2026-06-30".into()),
        },
        unit: "hhht-medsec".into(),
        category: "030202".into(),
        division: DIVISION.into(),
    }
}

async fn published(store: &Store, title: &str) -> Entry {
    let w = store
        .kb_create(1, |id| Entry::create(id, &admin(), content(title), 1))
        .await
        .unwrap();
    let mut entry = w.entry;
    for c in [Command::Submit, Command::Approve, Command::Publish] {
        entry = store
            .kb_change(&entry.id, 2, |e| e.apply(&admin(), c, 2))
            .await
            .unwrap()
            .entry;
    }
    entry
}

async fn hot_topics_count_hits_in_range(store: &Store) {
    let a = published(store, "甲").await;
    let b = published(store, "乙").await;
    let c = published(store, "丙").await;
    for (entry, order, at) in [
        (&a, "O1", 1000),
        (&a, "O2", 1500),
        (&a, "O2", 1600), // the same (entry, order) again: ignored
        (&b, "O3", 1000),
        (&b, "O4", 1999),
        (&c, "O5", 2000), // `to` is exclusive
        (&c, "O6", 999),  // `from` is inclusive of 1000 only
    ] {
        store
            .kb_record_hit(&entry.id, order, "agent", at)
            .await
            .unwrap();
    }
    let topics = store.kb_hot_topics(1000, 2000, 10).await.unwrap();
    assert_eq!(
        topics,
        [
            HotTopic {
                entry_id: a.id.clone(),
                title: "甲".into(),
                category: "030202".into(),
                hits: 2
            },
            HotTopic {
                entry_id: b.id.clone(),
                title: "乙".into(),
                category: "030202".into(),
                hits: 2
            },
        ]
    );
    assert!(a.id < b.id, "ties go by entry id");
    assert_eq!(
        store.kb_hot_topics(0, 10_000, 1).await.unwrap()[0].entry_id,
        a.id
    );
    assert_eq!(store.kb_hot_topics(0, 10_000, 10).await.unwrap().len(), 3);
    assert!(
        store
            .kb_hot_topics(5000, 6000, 10)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn changes_are_sequenced(store: &Store) {
    let start = store.kb_seq().await.unwrap();
    let a = published(store, "甲").await;
    let mid = store.kb_seq().await.unwrap();
    assert_eq!(mid, start + 4, "one number per write");
    let b = published(store, "乙").await;
    let (changed, last) = store.kb_changed_since(mid).await.unwrap();
    assert_eq!(
        changed.iter().map(|e| e.id.clone()).collect::<Vec<_>>(),
        [b.id.as_str()]
    );
    assert_eq!(last, store.kb_seq().await.unwrap());
    assert_eq!(store.kb_live_entries().await.unwrap().len(), 2);
    // A refused command and a no-op write nothing.
    assert!(
        store
            .kb_change(&a.id, 3, |e| e.apply(&admin(), Command::Publish, 3))
            .await
            .is_err()
    );
    let w = store
        .kb_change(&a.id, 3, |e| Ok(e.expire_due("2026-06-30", 3)))
        .await
        .unwrap();
    assert!(w.events.is_empty());
    assert_eq!(store.kb_seq().await.unwrap(), last);
    // The expiry sweep's query finds entries whose source lapsed.
    assert_eq!(
        store.kb_due_expiry("2026-07-01").await.unwrap(),
        [a.id.clone(), b.id.clone()]
    );
    let w = store
        .kb_change(&a.id, 4, |e| Ok(e.expire_due("2026-07-01", 4)))
        .await
        .unwrap();
    assert_eq!(w.events[0].kind, "expired");
    assert_eq!(
        store.kb_due_expiry("2026-07-01").await.unwrap(),
        [b.id.as_str()]
    );
    assert_eq!(store.kb_live_entries().await.unwrap().len(), 1);
    assert!(
        store
            .kb_change("KB999999", 5, |e| Ok(e.expire_due("2026-07-01", 5)))
            .await
            .is_err()
    );
}
