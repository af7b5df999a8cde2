//! Chinese full-text search over the published knowledge base.
//!
//! Why this engine: an in-memory tantivy index (BM25) with the jieba
//! word segmenter, rebuilt from the database's published entries at start
//! and kept current on every write. The database stays the only source of
//! truth and the ranking lives in the binary, so a SQLite deployment and a
//! PostgreSQL one rank the same query the same way; database full-text
//! search would differ per dialect (SQLite's FTS5 and PostgreSQL's
//! `tsvector` both need extensions to segment Chinese, and score
//! differently). 100,000 entries fit in memory comfortably, and a node
//! rebuilds its index in seconds (see `benches/kb.rs`).
//!
//! Text is segmented with jieba's search mode (long words and the words
//! inside them, so 医疗保险 also matches 医保-style short queries by its
//! parts). Title matches weigh more than question text, and question text
//! more than the answer. Question words (怎么, 如何, 吗, ...) are dropped
//! from queries, so a question about something the base does not cover
//! finds nothing rather than every entry that says 如何. Filters:
//! category prefix (a level-1 or level-2 code takes its children), unit,
//! division. Plain data in, plain results out; the shell decides when to
//! rebuild and which entries changed.

use super::lifecycle::{Entry, Source};
use std::collections::BTreeSet;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use tantivy::collector::TopDocs;
use tantivy::query::{BooleanQuery, BoostQuery, Occur, Query, TermQuery};
use tantivy::schema::{
    Field, IndexRecordOption, STORED, STRING, Schema, TextFieldIndexing, TextOptions, Value,
};
use tantivy::tokenizer::{LowerCaser, TextAnalyzer};
use tantivy::{Index, IndexReader, IndexWriter, ReloadPolicy, TantivyDocument, Term};

/// Why a search or an index update failed.
#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    /// The index is still being built from the database (503).
    #[error("the knowledge-base index is still being built; retry shortly")]
    NotReady,
    #[error("knowledge-base index: {0}")]
    Index(#[from] tantivy::TantivyError),
}

/// Relative weights of matches in each field.
const TITLE_BOOST: f32 = 3.0;
const QUESTION_BOOST: f32 = 1.5;
const ANSWER_BOOST: f32 = 1.0;
/// Characters of answer text around the matches.
const SNIPPET_CHARS: usize = 120;

/// Words that carry no topic in a citizen's question.
const STOP_WORDS: &[&str] = &[
    "的",
    "了",
    "吗",
    "呢",
    "啊",
    "吧",
    "呀",
    "嘛",
    "么",
    "我",
    "你",
    "他",
    "她",
    "它",
    "我们",
    "你们",
    "他们",
    "我家",
    "怎么",
    "怎么办",
    "怎样",
    "怎么样",
    "如何",
    "什么",
    "啥",
    "哪里",
    "哪儿",
    "哪个",
    "哪些",
    "为什么",
    "为啥",
    "是",
    "是否",
    "在",
    "有",
    "有没有",
    "和",
    "与",
    "或",
    "及",
    "请问",
    "请",
    "一下",
    "可以",
    "能",
    "能否",
    "能不能",
    "可不可以",
    "要",
    "需要",
    "想",
    "想要",
    "去",
    "到",
    "上",
    "下",
    "后",
    "以后",
    "之后",
    "前",
    "时",
    "时候",
    "这",
    "那",
    "这个",
    "那个",
    "个",
    "还",
    "就",
    "都",
    "也",
    "又",
    "被",
    "把",
    "给",
    "对",
    "从",
    "向",
    "让",
    "没有",
    "没",
    "不",
    "会",
    "应该",
    "办",
    "多少",
    "多久",
    "几",
    "问",
    "咨询",
    "问题",
    "情况",
    "一个",
    "现在",
    "已经",
    "了解",
    "知道",
    "告诉",
    "谁",
    "管",
    "找",
    "该",
    "得",
    "太",
    "很",
    "特别",
    "非常",
    "一直",
    "老是",
    "办理",
    "手续",
    "弄",
];

/// Whether a query token carries meaning: not a question word, not
/// punctuation or space.
fn is_topic_word(token: &str) -> bool {
    token.chars().any(char::is_alphanumeric) && !STOP_WORDS.contains(&token)
}

/// Up to [`SNIPPET_CHARS`] characters of `text` around the place where
/// most of `words` occur (tantivy's snippet generator expects tokens in
/// text order, which jieba's search mode does not give).
fn snippet(text: &str, words: &[String]) -> String {
    const LEAD: usize = 20;
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    let window = |start: usize| {
        let from = chars.get(start).map_or(text.len(), |c| c.0);
        let to = chars.get(start + SNIPPET_CHARS).map_or(text.len(), |c| c.0);
        &text[from..to]
    };
    let mut best = (0, 0);
    for word in words {
        let Some(at) = text.find(word.as_str()) else {
            continue;
        };
        let char_at = chars.partition_point(|c| c.0 < at);
        let start = char_at.saturating_sub(LEAD);
        let found = words
            .iter()
            .filter(|w| window(start).contains(String::as_str(w)))
            .count();
        if found > best.0 {
            best = (found, start);
        }
    }
    window(best.1).to_owned()
}

/// What to look for.
#[derive(Debug, Clone, Default)]
pub struct SearchQuery {
    pub text: String,
    /// A catalogue code; its children match too.
    pub category: Option<String>,
    pub division: Option<String>,
    pub unit: Option<String>,
    pub limit: usize,
    /// Local `YYYY-MM-DD`: entries whose source expired before it are
    /// left out even before the expiry sweep reaches them.
    pub today: Option<String>,
}

/// One result.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SearchHit {
    pub entry_id: String,
    pub version: u64,
    pub title: String,
    /// Answer text around the words that matched.
    pub snippet: String,
    pub category: String,
    pub division: String,
    pub unit: String,
    pub source: Source,
    pub score: f32,
}

struct Fields {
    id: Field,
    version: Field,
    title: Field,
    question: Field,
    answer: Field,
    category: Field,
    category_prefix: Field,
    division: Field,
    unit: Field,
    source: Field,
    expires: Field,
}

/// The in-memory index of published entries.
pub struct KbIndex {
    fields: Fields,
    writer: Mutex<IndexWriter>,
    reader: IndexReader,
    analyzer: TextAnalyzer,
    ready: AtomicBool,
    /// The database change sequence number the index reflects.
    seq: AtomicI64,
}

impl KbIndex {
    /// An empty index (not ready until [`KbIndex::rebuild`]) whose writer
    /// uses `threads` indexing threads.
    pub fn new(threads: usize) -> Result<KbIndex, SearchError> {
        let mut schema = Schema::builder();
        let text = TextOptions::default().set_indexing_options(
            TextFieldIndexing::default()
                .set_tokenizer("jieba")
                .set_index_option(IndexRecordOption::WithFreqsAndPositions),
        );
        let fields = Fields {
            id: schema.add_text_field("id", STRING | STORED),
            version: schema.add_u64_field("version", STORED),
            title: schema.add_text_field("title", text.clone().set_stored()),
            question: schema.add_text_field("question", text.clone()),
            answer: schema.add_text_field("answer", text.set_stored()),
            category: schema.add_text_field("category", STORED),
            category_prefix: schema.add_text_field("category_prefix", STRING),
            division: schema.add_text_field("division", STRING | STORED),
            unit: schema.add_text_field("unit", STRING | STORED),
            source: schema.add_text_field("source", STORED),
            expires: schema.add_text_field("expires", STORED),
        };
        let index = Index::create_in_ram(schema.build());
        let analyzer = TextAnalyzer::builder(tantivy_jieba::JiebaTokenizer::new())
            .filter(LowerCaser)
            .build();
        index.tokenizers().register("jieba", analyzer.clone());
        let writer = index.writer_with_num_threads(threads.max(1), 64_000_000 * threads.max(1))?;
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()?;
        Ok(KbIndex {
            fields,
            writer: Mutex::new(writer),
            reader,
            analyzer,
            ready: AtomicBool::new(false),
            seq: AtomicI64::new(0),
        })
    }

    /// Whether the first build is done.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    /// The change sequence number the index has caught up to.
    pub fn seq(&self) -> i64 {
        self.seq.load(Ordering::Acquire)
    }

    /// Notes that the index reflects the database up to `seq`.
    pub fn advance(&self, seq: i64) {
        self.seq.fetch_max(seq, Ordering::AcqRel);
    }

    /// Replaces everything with `entries`' live versions and marks the
    /// index ready, as of change `seq`.
    pub fn rebuild<'a>(
        &self,
        entries: impl IntoIterator<Item = &'a Entry>,
        seq: i64,
    ) -> Result<usize, SearchError> {
        let mut writer = self.writer.lock().expect("index writer");
        writer.delete_all_documents()?;
        let mut n = 0;
        for entry in entries {
            if let Some(doc) = self.document(entry) {
                writer.add_document(doc)?;
                n += 1;
            }
        }
        writer.commit()?;
        self.reader.reload()?;
        self.advance(seq);
        self.ready.store(true, Ordering::Release);
        Ok(n)
    }

    /// Puts the live versions of `entries` in (and takes out those with
    /// none live).
    pub fn apply<'a>(
        &self,
        entries: impl IntoIterator<Item = &'a Entry>,
    ) -> Result<(), SearchError> {
        let mut writer = self.writer.lock().expect("index writer");
        for entry in entries {
            writer.delete_term(Term::from_field_text(self.fields.id, &entry.id));
            if let Some(doc) = self.document(entry) {
                writer.add_document(doc)?;
            }
        }
        writer.commit()?;
        self.reader.reload()?;
        Ok(())
    }

    fn document(&self, entry: &Entry) -> Option<TantivyDocument> {
        let f = &self.fields;
        let live = entry.live()?;
        let c = &live.content;
        let mut doc = TantivyDocument::default();
        doc.add_text(f.id, &entry.id);
        doc.add_u64(f.version, u64::from(live.version));
        doc.add_text(f.title, &c.title);
        doc.add_text(f.question, &c.question);
        doc.add_text(f.answer, &c.answer);
        doc.add_text(f.category, &c.category);
        // Every catalogue level the code belongs to: 03, 0302, 030202.
        for end in (2..=c.category.len()).step_by(2) {
            if let Some(prefix) = c.category.get(..end) {
                doc.add_text(f.category_prefix, prefix);
            }
        }
        doc.add_text(f.division, &c.division);
        doc.add_text(f.unit, &c.unit);
        doc.add_text(
            f.source,
            serde_json::to_string(&c.source).unwrap_or_default(),
        );
        if let Some(expires) = &c.source.expires {
            doc.add_text(f.expires, expires);
        }
        Some(doc)
    }

    /// The words of `text` the index would look up.
    pub fn topic_words(&self, text: &str) -> Vec<String> {
        let mut analyzer = self.analyzer.clone();
        let mut stream = analyzer.token_stream(text);
        let mut words = BTreeSet::new();
        let mut ordered = Vec::new();
        while let Some(token) = stream.next() {
            if is_topic_word(&token.text) && words.insert(token.text.clone()) {
                ordered.push(token.text.clone());
            }
        }
        ordered
    }

    /// The best `limit` published entries for the query, best first.
    pub fn search(&self, q: &SearchQuery) -> Result<Vec<SearchHit>, SearchError> {
        if !self.is_ready() {
            return Err(SearchError::NotReady);
        }
        let f = &self.fields;
        let words = self.topic_words(&q.text);
        if words.is_empty() || q.limit == 0 {
            return Ok(Vec::new());
        }
        let mut should: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        for word in &words {
            for (field, boost) in [
                (f.title, TITLE_BOOST),
                (f.question, QUESTION_BOOST),
                (f.answer, ANSWER_BOOST),
            ] {
                let term = TermQuery::new(
                    Term::from_field_text(field, word),
                    IndexRecordOption::WithFreqs,
                );
                should.push((
                    Occur::Should,
                    Box::new(BoostQuery::new(Box::new(term), boost)),
                ));
            }
        }
        let text_query = BooleanQuery::new(should);
        let mut must: Vec<(Occur, Box<dyn Query>)> = vec![(Occur::Must, Box::new(text_query))];
        for (field, value) in [
            (f.category_prefix, &q.category),
            (f.division, &q.division),
            (f.unit, &q.unit),
        ] {
            if let Some(value) = value {
                must.push((
                    Occur::Must,
                    Box::new(TermQuery::new(
                        Term::from_field_text(field, value),
                        IndexRecordOption::Basic,
                    )),
                ));
            }
        }
        let query = BooleanQuery::new(must);
        let searcher = self.reader.searcher();
        // A few more than asked, for the entries an expiry date drops.
        let top = searcher.search(&query, &TopDocs::with_limit(q.limit + 8).order_by_score())?;
        let mut hits = Vec::with_capacity(q.limit);
        for (score, address) in top {
            let doc: TantivyDocument = searcher.doc(address)?;
            let text = |field| {
                doc.get_first(field)
                    .and_then(|v| v.as_str())
                    .unwrap_or_default()
                    .to_owned()
            };
            let expires = text(f.expires);
            if let Some(today) = &q.today
                && !expires.is_empty()
                && expires < *today
            {
                continue;
            }
            let snippet = snippet(&text(f.answer), &words);
            hits.push(SearchHit {
                entry_id: text(f.id),
                version: doc
                    .get_first(f.version)
                    .and_then(|v| v.as_u64())
                    .unwrap_or_default(),
                title: text(f.title),
                snippet,
                category: text(f.category),
                division: text(f.division),
                unit: text(f.unit),
                source: serde_json::from_str(&text(f.source)).unwrap_or(Source {
                    issuer: String::new(),
                    number: String::new(),
                    effective: String::new(),
                    expires: None,
                }),
                score,
            });
            if hits.len() == q.limit {
                break;
            }
        }
        Ok(hits)
    }

    /// Documents in the index.
    pub fn len(&self) -> u64 {
        self.reader.searcher().num_docs()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::{Principal, Role};
    use crate::kb::lifecycle::{Command, Content};

    fn entry(id: &str, title: &str, question: &str, answer: &str, category: &str) -> Entry {
        let admin = Principal {
            name: "admin".into(),
            role: Role::Admin,
            unit: None,
        };
        let content = Content {
            title: title.into(),
            question: question.into(),
            answer: answer.into(),
            source: Source {
                issuer: "呼和浩特市人民政府".into(),
                number: "呼政发〔2025〕1号".into(),
                effective: "2025-01-01".into(),
                expires: None,
            },
            unit: "hhht".into(),
            category: category.into(),
            division: "150100".into(),
        };
        let (mut e, _) = Entry::create(id.into(), &admin, content, 0).unwrap();
        for c in [Command::Submit, Command::Approve, Command::Publish] {
            e.apply(&admin, c, 1).unwrap();
        }
        e
    }

    fn index() -> KbIndex {
        let index = KbIndex::new(1).unwrap();
        let entries = [
            entry(
                "KB1",
                "新生儿出生后如何办理户口登记",
                "孩子出生了怎么上户口？",
                "新生儿出生一个月内，由监护人持出生医学证明、父母户口簿和身份证到派出所申报出生登记。",
                "130101",
            ),
            entry(
                "KB2",
                "建筑工地夜间施工噪声扰民如何投诉",
                "小区旁边工地晚上施工太吵怎么办？",
                "夜间22时至次日6时禁止产生噪声的建筑施工作业，因特殊需要连续施工的须取得证明并公告附近居民。",
                "040201",
            ),
            entry(
                "KB3",
                "住房公积金提取条件",
                "公积金怎么提取？",
                "购房、租房、离退休等情形可以申请提取住房公积金。",
                "120401",
            ),
        ];
        index.rebuild(&entries, 3).unwrap();
        index
    }

    #[test]
    fn not_ready_until_built() {
        let index = KbIndex::new(1).unwrap();
        assert!(matches!(
            index.search(&SearchQuery {
                text: "户口".into(),
                limit: 5,
                ..Default::default()
            }),
            Err(SearchError::NotReady)
        ));
    }

    #[test]
    fn finds_by_chinese_words() {
        let index = index();
        let q = |text: &str| {
            index
                .search(&SearchQuery {
                    text: text.into(),
                    limit: 5,
                    ..Default::default()
                })
                .unwrap()
        };
        assert_eq!(q("孩子出生后怎么上户口")[0].entry_id, "KB1");
        assert_eq!(q("小区晚上施工太吵")[0].entry_id, "KB2");
        assert_eq!(q("公积金提取")[0].entry_id, "KB3");
        assert!(
            q("怎么办理吗").is_empty(),
            "{:?}",
            index.topic_words("怎么办理吗")
        );
        assert!(q("火星上种土豆").is_empty());
        let hit = &q("噪声")[0];
        assert!(hit.snippet.contains("噪声"), "{}", hit.snippet);
        assert_eq!(hit.source.number, "呼政发〔2025〕1号");
    }

    #[test]
    fn filters_and_updates() {
        let index = index();
        let search = |text: &str, category: Option<&str>| {
            index
                .search(&SearchQuery {
                    text: text.into(),
                    category: category.map(str::to_owned),
                    limit: 5,
                    ..Default::default()
                })
                .unwrap()
                .into_iter()
                .map(|h| h.entry_id)
                .collect::<Vec<_>>()
        };
        assert_eq!(search("施工", Some("04")), ["KB2"]);
        assert!(search("施工", Some("13")).is_empty());
        let mut gone = entry("KB2", "x", "x", "x", "040201");
        gone.apply(
            &Principal::system("test"),
            Command::Expire { note: None },
            5,
        )
        .unwrap();
        index.apply([&gone]).unwrap();
        assert!(search("施工", None).is_empty());
        assert_eq!(index.len(), 2);
    }
}
