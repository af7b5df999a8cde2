//! Knowledge-base search at scale: generates N published entries (default
//! 100,000) from the hotline's own vocabulary, builds the in-memory index
//! as a node does at start, and times a few hundred real citizen
//! questions (p50/p90/p99), with and without filters, plus the update
//! that follows one publish.
//!
//! `cargo bench --bench kb -- [--entries N] [--rounds R] [--threads T]`
//! (`--help` lists them). Under `cargo test --all-targets` it runs a
//! small smoke version (2,000 entries, one round).
//!
//! The entries are realistic rather than random: each takes a topic from
//! the seeded set in `tests/fixtures/kb_seed.json` (户口, 居住证, 噪声, 供暖,
//! 停水, 物业, 欠薪, 网约车, 食品安全, 社保, 医保, 公积金, ...), a city or
//! district, and a facet of the matter (条件, 材料, 时限, 收费, 投诉渠道,
//! ...), and an answer of four to seven sentences drawn from the seeded
//! answers, so term frequencies look like a real knowledge base's: a few
//! hundred distinct topics, each with many local variants.

use hotline::auth::Principal;
use hotline::kb::lifecycle::{Command, Content, Entry, Source};
use hotline::kb::search::{KbIndex, SearchQuery};
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use std::time::{Duration, Instant};

const USAGE: &str = "cargo bench --bench kb -- [options]
  --entries N    published entries to index (default 100000)
  --rounds R     times each query is run (default 5)
  --threads T    indexing threads for the build (default 2)";

struct Args {
    entries: usize,
    rounds: usize,
    threads: usize,
}

fn parse_args() -> Args {
    let mut args = Args {
        entries: 100_000,
        rounds: 5,
        threads: 2,
    };
    // `cargo bench` passes --bench; `cargo test --all-targets` runs this
    // without it, as a smoke test.
    if !std::env::args().any(|a| a == "--bench") {
        args.entries = 2_000;
        args.rounds = 1;
    }
    let mut it = std::env::args().skip(1);
    let number = |v: Option<String>| -> usize {
        v.and_then(|v| v.replace(['_', ','], "").parse().ok())
            .unwrap_or_else(|| panic!("a number expected\n{USAGE}"))
    };
    while let Some(a) = it.next() {
        match a.as_str() {
            "--bench" => {}
            "--entries" => args.entries = number(it.next()).max(1),
            "--rounds" => args.rounds = number(it.next()).max(1),
            "--threads" => args.threads = number(it.next()).max(1),
            "--help" | "-h" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => panic!("unknown argument {other:?}\n{USAGE}"),
        }
    }
    args
}

#[derive(serde::Deserialize)]
struct Seed {
    unit: String,
    category: String,
    title: String,
    question: String,
    answer: String,
    source: Source,
}

const PLACES: &[(&str, &str)] = &[
    ("150100", "呼和浩特市"),
    ("150102", "新城区"),
    ("150103", "回民区"),
    ("150104", "玉泉区"),
    ("150105", "赛罕区"),
    ("150121", "土默特左旗"),
    ("150200", "包头市"),
    ("150600", "鄂尔多斯市"),
    ("150800", "巴彦淖尔市"),
    ("150802", "临河区"),
    ("150821", "五原县"),
];

const FACETS: &[&str] = &[
    "办理条件",
    "所需材料",
    "办理时限",
    "收费标准",
    "投诉渠道",
    "线上办理",
    "常见问题",
    "政策解读",
    "特殊情形",
    "异地办理",
    "证明开具",
    "补贴标准",
];

const EXTRA: &[&str] = &[
    "群众可通过“蒙速办”App、12345热线或政务服务大厅咨询办理。",
    "办理结果将通过短信告知申请人。",
    "对办理过程中的推诿扯皮、吃拿卡要等问题，可向纪检监察部门反映。",
    "窗口工作时间为法定工作日上午9时至12时、下午1时30分至5时30分。",
    "材料不全的，窗口一次性告知需要补正的全部内容。",
    "老年人、残疾人等特殊群体可预约上门服务。",
];

fn sentences(text: &str) -> Vec<String> {
    text.split_inclusive('。')
        .map(str::trim)
        .filter(|s| s.chars().count() > 4)
        .map(str::to_owned)
        .collect()
}

/// N published entries; entry i's topic is seed i % seeds.
fn generate(n: usize, seeds: &[Seed]) -> Vec<Entry> {
    let mut rng = StdRng::seed_from_u64(12345);
    let pool: Vec<String> = seeds.iter().flat_map(|s| sentences(&s.answer)).collect();
    let admin = Principal::system("bench");
    (0..n)
        .map(|i| {
            let seed = &seeds[i % seeds.len()];
            let (division, place) = *PLACES.choose(&mut rng).unwrap();
            let facet = FACETS.choose(&mut rng).unwrap();
            let mut answer: String = sentences(&seed.answer)
                .into_iter()
                .take(rng.random_range(1..=3))
                .collect();
            for _ in 0..rng.random_range(2..=4) {
                answer.push_str(pool.choose(&mut rng).unwrap());
            }
            answer.push_str(EXTRA.choose(&mut rng).unwrap());
            let content = Content {
                title: format!("{place}{}（{facet}）", seed.title),
                question: format!("{place}{}", seed.question),
                answer,
                source: seed.source.clone(),
                unit: seed.unit.clone(),
                category: seed.category.clone(),
                division: division.to_owned(),
            };
            let (mut entry, _) =
                Entry::create(format!("KB{i:06}"), &admin, content, 0).expect("a valid entry");
            for c in [Command::Submit, Command::Approve, Command::Publish] {
                entry.apply(&admin, c, 0).expect("publishable");
            }
            entry
        })
        .collect()
}

/// Questions as citizens put them: the relevance suite's, the seeded
/// ones, and topic × facet × place variations.
fn queries(seeds: &[Seed], n: usize) -> Vec<SearchQuery> {
    let spoken = [
        "孩子出生后怎么上户口",
        "小区晚上施工太吵",
        "楼下跳广场舞音响太吵",
        "暖气不热",
        "暖气费一平米多少钱",
        "家里停水了什么时候来水",
        "外地户口怎么迁到呼和浩特",
        "租房住怎么办居住证",
        "身份证丢了",
        "物业不管事向谁投诉",
        "包工头拖欠农民工工资",
        "公司拖欠工资三个月",
        "网约车司机绕路多收钱",
        "饭店后厨太脏吃了拉肚子",
        "超市买到过期食品能赔偿吗",
        "社保卡丢了怎么补",
        "在外地住院医保能报销吗",
        "公积金租房提取",
        "公积金贷款能贷多少",
        "刚出生的宝宝怎么参加医保",
        "被辞退了能领失业金吗",
        "家里有煤气味",
        "二手房过户办房产证",
        "八十岁老人高龄补贴",
        "火星移民签证",
        "医保",
        "户口",
        "投诉",
    ];
    let mut rng = StdRng::seed_from_u64(110);
    let mut out: Vec<SearchQuery> = spoken
        .iter()
        .map(|t| t.to_string())
        .chain(seeds.iter().map(|s| s.question.clone()))
        .map(|text| SearchQuery {
            text,
            limit: 10,
            ..Default::default()
        })
        .collect();
    while out.len() < n {
        let seed = seeds.choose(&mut rng).unwrap();
        let (division, place) = *PLACES.choose(&mut rng).unwrap();
        let facet = FACETS.choose(&mut rng).unwrap();
        let mut q = SearchQuery {
            text: format!("{place}{}{facet}", seed.title),
            limit: 10,
            ..Default::default()
        };
        // A third filtered as the agent desktop does.
        match out.len() % 6 {
            0 => q.category = Some(seed.category[..2].to_owned()),
            2 => q.division = Some(division.to_owned()),
            _ => {}
        }
        out.push(q);
    }
    out
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

fn main() {
    let args = parse_args();
    let seeds: Vec<Seed> =
        serde_json::from_str(include_str!("../tests/fixtures/kb_seed.json")).expect("seed set");

    let t = Instant::now();
    let entries = generate(args.entries, &seeds);
    println!(
        "kb bench: generated {} published entries in {:.1} s",
        entries.len(),
        t.elapsed().as_secs_f64()
    );

    let index = KbIndex::new(args.threads).expect("an index");
    // The dictionary loads on first use; a node pays it once at start.
    let t = Instant::now();
    index.topic_words("加载词典");
    let dictionary = t.elapsed();
    let t = Instant::now();
    let n = index.rebuild(&entries, 0).expect("build");
    let build = t.elapsed();
    println!(
        "index build: {n} entries in {:.2} s ({:.0} entries/s, {} threads); jieba dictionary load {}",
        build.as_secs_f64(),
        n as f64 / build.as_secs_f64(),
        args.threads,
        ms(dictionary)
    );

    let queries = queries(&seeds, 300);
    // Warm-up: one pass, not counted.
    for q in &queries {
        index.search(q).expect("search");
    }
    let mut all = Vec::new();
    let mut plain = Vec::new();
    let mut filtered = Vec::new();
    let mut results = 0usize;
    for _ in 0..args.rounds {
        for q in &queries {
            let t = Instant::now();
            let hits = index.search(q).expect("search");
            let took = t.elapsed();
            results += hits.len();
            all.push(took);
            if q.category.is_some() || q.division.is_some() {
                filtered.push(took);
            } else {
                plain.push(took);
            }
        }
    }
    for list in [&mut all, &mut plain, &mut filtered] {
        list.sort();
    }
    println!(
        "search: {} queries x {} rounds, {:.1} results per query on average",
        queries.len(),
        args.rounds,
        results as f64 / all.len() as f64
    );
    for (name, list) in [
        ("all", &all),
        ("no filter", &plain),
        ("filtered", &filtered),
    ] {
        if list.is_empty() {
            continue;
        }
        println!(
            "  {name:<10} n={:<5} p50 {}  p90 {}  p99 {}  max {}",
            list.len(),
            ms(percentile(list, 0.50)),
            ms(percentile(list, 0.90)),
            ms(percentile(list, 0.99)),
            ms(*list.last().unwrap())
        );
    }

    // Keeping the index current: one entry re-put and committed, as after
    // a publish.
    let mut updates = Vec::new();
    for entry in entries.iter().step_by((entries.len() / 20).max(1)).take(20) {
        let t = Instant::now();
        index.apply([entry]).expect("update");
        updates.push(t.elapsed());
    }
    updates.sort();
    println!(
        "update after one publish: p50 {}  max {}",
        ms(percentile(&updates, 0.5)),
        ms(*updates.last().unwrap())
    );
    let p99 = percentile(&all, 0.99);
    if p99 > Duration::from_millis(20) {
        println!("WARNING: search p99 {} is over the 20 ms target", ms(p99));
    }
}
