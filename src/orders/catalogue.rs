//! The matter-category catalogue (事项分类): what an appeal is about, in three
//! levels with stable codes (`01` 城乡建设 → `0101` 供暖 → `010101` 不供暖),
//! loaded from `sip-config/catalogue.toml`.
//!
//! Triage files each order under a category; the category says whether the
//! matter falls under article 10 (emergency orders) and, through
//! [`units`](super::units), which units get it by default. Article 10 applies
//! to help and report appeals only: combining the flag with the appeal type is
//! the lifecycle's job, not this module's. Plain data and checks, no I/O
//! besides [`Catalogue::load`] reading its file.

use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Why a catalogue file was refused; every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum CatalogueError {
    /// The file could not be read.
    #[error("{file}: {source}")]
    Read {
        file: String,
        #[source]
        source: std::io::Error,
    },
    /// Not TOML, or a key or value the catalogue does not know.
    #[error("{file}:{line}:{column}: {message}")]
    Parse {
        file: String,
        line: usize,
        column: usize,
        message: String,
    },
    /// A code that is not 2, 4 or 6 digits for its level.
    #[error("{file}: category {code:?}: a level-{level} code must be {} digits", 2 * *level as usize)]
    BadCode {
        file: String,
        code: String,
        level: u8,
    },
    /// A child whose code does not extend its parent's.
    #[error("{file}: category {code:?} does not start with its parent's code {parent:?}")]
    NotUnderParent {
        file: String,
        code: String,
        parent: String,
    },
    /// Children under a level-3 category.
    #[error("{file}: category {code:?} is level 3 and cannot have children")]
    TooDeep { file: String, code: String },
    /// The same code twice.
    #[error("{file}: category {code:?} is listed twice")]
    Duplicate { file: String, code: String },
    /// A blank name.
    #[error("{file}: category {code:?} has an empty name")]
    EmptyName { file: String, code: String },
    /// `emergency = false` under an emergency category.
    #[error(
        "{file}: category {code:?} sets emergency = false under emergency category {parent:?}; children inherit the flag"
    )]
    EmergencyCleared {
        file: String,
        code: String,
        parent: String,
    },
    /// No categories at all.
    #[error("{file}: the catalogue has no categories")]
    Empty { file: String },
}

/// One category of the catalogue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Category {
    /// Stable code: 2, 4 or 6 digits by level.
    pub code: String,
    /// Name shown to agents and in reports.
    pub name: String,
    /// 1, 2 or 3.
    pub level: u8,
    /// The parent's code; `None` at level 1.
    pub parent: Option<String>,
    /// An article-10 matter: set here or inherited from a parent.
    pub emergency: bool,
}

/// The loaded catalogue: every category by code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Catalogue {
    /// File name, for messages about the catalogue found elsewhere.
    source: String,
    /// Code order is tree pre-order: `01` < `0101` < `010101` < `0102`.
    categories: BTreeMap<String, Category>,
    /// Codes that have at least one child.
    parents: BTreeSet<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CatalogueFile {
    #[serde(default)]
    category: Vec<RawCategory>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCategory {
    code: String,
    name: String,
    /// `None` when absent, so an explicit `false` under a flagged parent is caught.
    emergency: Option<bool>,
    #[serde(default)]
    children: Vec<RawCategory>,
}

/// Turns a `toml` error into `file:line:col: message` (line and column 1-based).
pub(crate) fn parse_error(text: &str, err: &toml::de::Error) -> (usize, usize, String) {
    let offset = err.span().map_or(0, |s| s.start).min(text.len());
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let column = before
        .rfind('\n')
        .map_or(before, |nl| &before[nl + 1..])
        .chars()
        .count()
        + 1;
    (line, column, err.message().trim_end().to_string())
}

fn is_digits(code: &str, len: usize) -> bool {
    code.len() == len && code.bytes().all(|b| b.is_ascii_digit())
}

impl Catalogue {
    /// Reads and checks a catalogue file.
    pub fn load(path: &Path) -> Result<Catalogue, CatalogueError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| CatalogueError::Read {
            file: file.clone(),
            source,
        })?;
        Catalogue::from_toml(&text, &file)
    }

    /// Parses and checks catalogue text; `source_name` names it in errors.
    pub fn from_toml(text: &str, source_name: &str) -> Result<Catalogue, CatalogueError> {
        let file = source_name.to_string();
        let raw: CatalogueFile = toml::from_str(text).map_err(|e| {
            let (line, column, message) = parse_error(text, &e);
            CatalogueError::Parse {
                file: file.clone(),
                line,
                column,
                message,
            }
        })?;
        if raw.category.is_empty() {
            return Err(CatalogueError::Empty { file });
        }
        let mut cat = Catalogue {
            source: file.clone(),
            categories: BTreeMap::new(),
            parents: BTreeSet::new(),
        };
        for top in &raw.category {
            cat.add(&file, top, None)?;
        }
        Ok(cat)
    }

    /// Adds `raw` and its children below `parent` (already added).
    fn add(
        &mut self,
        file: &str,
        raw: &RawCategory,
        parent: Option<&Category>,
    ) -> Result<(), CatalogueError> {
        let level = parent.map_or(1, |p| p.level + 1);
        let code = raw.code.clone();
        if level > 3 {
            // Reported on the level-3 parent, which is where the mistake sits.
            return Err(CatalogueError::TooDeep {
                file: file.into(),
                code: parent.map(|p| p.code.clone()).unwrap_or_default(),
            });
        }
        if !is_digits(&code, 2 * level as usize) {
            return Err(CatalogueError::BadCode {
                file: file.into(),
                code,
                level,
            });
        }
        if let Some(p) = parent
            && !code.starts_with(&p.code)
        {
            return Err(CatalogueError::NotUnderParent {
                file: file.into(),
                code,
                parent: p.code.clone(),
            });
        }
        if self.categories.contains_key(&code) {
            return Err(CatalogueError::Duplicate {
                file: file.into(),
                code,
            });
        }
        let name = raw.name.trim();
        if name.is_empty() {
            return Err(CatalogueError::EmptyName {
                file: file.into(),
                code,
            });
        }
        let inherited = parent.is_some_and(|p| p.emergency);
        if inherited && raw.emergency == Some(false) {
            return Err(CatalogueError::EmergencyCleared {
                file: file.into(),
                code,
                parent: parent.map(|p| p.code.clone()).unwrap_or_default(),
            });
        }
        let category = Category {
            code: code.clone(),
            name: name.to_string(),
            level,
            parent: parent.map(|p| p.code.clone()),
            emergency: inherited || raw.emergency == Some(true),
        };
        if let Some(p) = parent {
            self.parents.insert(p.code.clone());
        }
        self.categories.insert(code, category.clone());
        for child in &raw.children {
            self.add(file, child, Some(&category))?;
        }
        Ok(())
    }

    /// The file (or other source name) the catalogue was loaded from.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The category with this code.
    pub fn get(&self, code: &str) -> Option<&Category> {
        self.categories.get(code)
    }

    /// The category and its ancestors, level 1 first; empty for an unknown code.
    pub fn path(&self, code: &str) -> Vec<&Category> {
        let mut path = Vec::with_capacity(3);
        let mut next = self.get(code);
        while let Some(c) = next {
            path.push(c);
            next = c.parent.as_deref().and_then(|p| self.get(p));
        }
        path.reverse();
        path
    }

    /// Whether an order in this category is an emergency order (article 10),
    /// by its own flag or a parent's; false for an unknown code.
    pub fn is_emergency(&self, code: &str) -> bool {
        self.get(code).is_some_and(|c| c.emergency)
    }

    /// Categories without children (what agents file orders under), in code order.
    pub fn leaves(&self) -> impl Iterator<Item = &Category> {
        self.categories
            .values()
            .filter(|c| !self.parents.contains(&c.code))
    }

    /// The direct children of a category, in code order.
    pub fn children(&self, code: &str) -> impl Iterator<Item = &Category> {
        self.categories
            .values()
            .filter(move |c| c.parent.as_deref() == Some(code))
    }

    /// Every category in code order (parents before their children).
    pub fn categories(&self) -> impl Iterator<Item = &Category> {
        self.categories.values()
    }

    /// Number of categories, all levels.
    pub fn len(&self) -> usize {
        self.categories.len()
    }

    /// Never true for a loaded catalogue; here for completeness.
    pub fn is_empty(&self) -> bool {
        self.categories.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shipped_path() -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("sip-config/catalogue.toml")
    }

    fn load(text: &str) -> Result<Catalogue, CatalogueError> {
        Catalogue::from_toml(text, "test.toml")
    }

    const SMALL: &str = r#"
[[category]]
code = "01"
name = "城乡建设"

[[category.children]]
code = "0101"
name = "供暖"
children = [
  { code = "010101", name = "不供暖", emergency = true },
  { code = "010102", name = "室温不达标" },
]

[[category.children]]
code = "0102"
name = "物业管理"

[[category]]
code = "06"
name = "公共安全与应急"

[[category.children]]
code = "0601"
name = "自然灾害"
emergency = true
children = [{ code = "060101", name = "暴雨洪涝" }]
"#;

    #[test]
    fn shipped_catalogue_loads() {
        let cat = Catalogue::load(&shipped_path()).unwrap();
        let count = |level| cat.categories().filter(|c| c.level == level).count();
        assert!((10..=14).contains(&count(1)), "{}", count(1));
        assert!(count(2) >= 40, "{}", count(2));
        assert!(count(3) >= 120, "{}", count(3));
        // Article 10: outages of water, power, gas, heating; disasters; emergencies.
        for code in [
            "010101", "010201", "010301", "010302", "110101", "060104", "060202",
        ] {
            assert!(cat.is_emergency(code), "{code}");
        }
        // Billing and ordinary complaints stay ordinary orders.
        for code in ["010104", "010205", "110104", "0101", "01", "020401"] {
            assert!(!cat.is_emergency(code), "{code}");
        }
        // Every level-1 and level-2 category has children in the shipped file.
        assert!(cat.leaves().all(|c| c.level == 3));
    }

    #[test]
    fn levels_parents_and_path() {
        let cat = load(SMALL).unwrap();
        let leaf = cat.get("010102").unwrap();
        assert_eq!(leaf.level, 3);
        assert_eq!(leaf.parent.as_deref(), Some("0101"));
        assert_eq!(leaf.name, "室温不达标");
        let path: Vec<_> = cat.path("010102").iter().map(|c| c.code.as_str()).collect();
        assert_eq!(path, ["01", "0101", "010102"]);
        let path: Vec<_> = cat.path("0102").iter().map(|c| c.name.as_str()).collect();
        assert_eq!(path, ["城乡建设", "物业管理"]);
        assert!(cat.path("99").is_empty());
        assert!(cat.get("0103").is_none());
        let kids: Vec<_> = cat.children("01").map(|c| c.code.as_str()).collect();
        assert_eq!(kids, ["0101", "0102"]);
        // A level 2 without children is a leaf too.
        let leaves: Vec<_> = cat.leaves().map(|c| c.code.as_str()).collect();
        assert_eq!(leaves, ["010101", "010102", "0102", "060101"]);
        assert_eq!(cat.len(), 8);
    }

    #[test]
    fn emergency_is_inherited_not_propagated_up() {
        let cat = load(SMALL).unwrap();
        assert!(cat.is_emergency("0601"));
        assert!(cat.is_emergency("060101"), "inherited from 0601");
        assert!(!cat.is_emergency("06"), "a flag does not go up");
        assert!(cat.is_emergency("010101"));
        assert!(!cat.is_emergency("010102"), "siblings are not flagged");
        assert!(!cat.is_emergency("0101"));
        assert!(!cat.is_emergency("nope"));
    }

    fn err(text: &str) -> String {
        load(text).unwrap_err().to_string()
    }

    #[test]
    fn bad_codes_are_refused() {
        let e = err("[[category]]\ncode = \"1\"\nname = \"x\"\n");
        assert!(
            e.starts_with("test.toml: ") && e.contains("\"1\"") && e.contains("2 digits"),
            "{e}"
        );
        let e = err("[[category]]\ncode = \"0a\"\nname = \"x\"\n");
        assert!(e.contains("\"0a\""), "{e}");
        let e = err(
            "[[category]]\ncode = \"01\"\nname = \"x\"\n[[category.children]]\ncode = \"010\"\nname = \"y\"\n",
        );
        assert!(
            e.contains("\"010\"") && e.contains("level-2") && e.contains("4 digits"),
            "{e}"
        );
        let e = err(
            "[[category]]\ncode = \"01\"\nname = \"x\"\n[[category.children]]\ncode = \"0101\"\nname = \"y\"\nchildren = [{ code = \"01010\", name = \"z\" }]\n",
        );
        assert!(e.contains("\"01010\"") && e.contains("6 digits"), "{e}");
    }

    #[test]
    fn child_must_extend_parent_code() {
        let e = load(
            "[[category]]\ncode = \"01\"\nname = \"x\"\n[[category.children]]\ncode = \"0201\"\nname = \"y\"\n",
        )
        .unwrap_err();
        assert!(
            matches!(&e, CatalogueError::NotUnderParent { code, parent, .. } if code == "0201" && parent == "01")
        );
        assert!(e.to_string().starts_with("test.toml: "), "{e}");
    }

    #[test]
    fn duplicates_are_refused() {
        let e = load(
            "[[category]]\ncode = \"01\"\nname = \"x\"\n[[category]]\ncode = \"01\"\nname = \"y\"\n",
        )
        .unwrap_err();
        assert!(
            matches!(&e, CatalogueError::Duplicate { code, .. } if code == "01"),
            "{e}"
        );
        let e = err(
            "[[category]]\ncode = \"01\"\nname = \"x\"\n[[category.children]]\ncode = \"0101\"\nname = \"y\"\nchildren = [{ code = \"010101\", name = \"a\" }, { code = \"010101\", name = \"b\" }]\n",
        );
        assert!(e.contains("\"010101\" is listed twice"), "{e}");
    }

    #[test]
    fn unknown_keys_are_refused_with_position() {
        let e = load("[[category]]\ncode = \"01\"\nname = \"x\"\nemergncy = true\n").unwrap_err();
        let CatalogueError::Parse { line, message, .. } = &e else {
            panic!("{e}");
        };
        assert_eq!(*line, 4, "{e}");
        assert!(message.contains("emergncy"), "{e}");
        assert!(e.to_string().starts_with("test.toml:4:"), "{e}");
        let e = err("[category]\ncode = \"01\"\n");
        assert!(e.starts_with("test.toml:"), "{e}");
        let e = err("categories = []\n");
        assert!(e.contains("categories"), "{e}");
    }

    #[test]
    fn other_refusals() {
        assert!(matches!(
            load("").unwrap_err(),
            CatalogueError::Empty { .. }
        ));
        let e = err("[[category]]\ncode = \"01\"\nname = \"  \"\n");
        assert!(e.contains("\"01\" has an empty name"), "{e}");
        let e = load(
            "[[category]]\ncode = \"06\"\nname = \"x\"\nemergency = true\n[[category.children]]\ncode = \"0601\"\nname = \"y\"\nemergency = false\n",
        )
        .unwrap_err();
        assert!(
            matches!(&e, CatalogueError::EmergencyCleared { code, parent, .. } if code == "0601" && parent == "06"),
            "{e}"
        );
        // An explicit `true` under a flagged parent is harmless.
        load("[[category]]\ncode = \"06\"\nname = \"x\"\nemergency = true\n[[category.children]]\ncode = \"0601\"\nname = \"y\"\nemergency = true\n").unwrap();
        let e = load(
            "[[category]]\ncode = \"01\"\nname = \"x\"\n[[category.children]]\ncode = \"0101\"\nname = \"y\"\n[[category.children.children]]\ncode = \"010101\"\nname = \"z\"\nchildren = [{ code = \"01010101\", name = \"w\" }]\n",
        )
        .unwrap_err();
        assert!(
            matches!(&e, CatalogueError::TooDeep { code, .. } if code == "010101"),
            "{e}"
        );
        let e = Catalogue::load(Path::new("/nonexistent/catalogue.toml")).unwrap_err();
        assert!(
            e.to_string().starts_with("/nonexistent/catalogue.toml: "),
            "{e}"
        );
    }
}
