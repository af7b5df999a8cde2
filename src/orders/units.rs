//! Handling units (承办单位), the administrative divisions they serve and the
//! dispatch catalogue, loaded from `sip-config/units.toml`.
//!
//! Divisions carry GB/T 2260 codes (150000 内蒙古自治区 → 150100 呼和浩特市 →
//! 150105 赛罕区). Units form a tree: region → league/city → banner/county →
//! departments and public enterprises. A dispatch rule names a matter category
//! (any level of [`Catalogue`]) and a division, and gives the default lead unit
//! and co-handlers; [`Units::dispatch_default`] picks the most specific rule
//! for an order. Triage shows that plan to the agent, who may change it; this
//! module only answers questions about the loaded data.

use super::catalogue::{Catalogue, parse_error};
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::Path;

/// Why a units file was refused; every variant names the file and the entry.
#[derive(Debug, thiserror::Error)]
pub enum UnitsError {
    /// The file could not be read.
    #[error("{file}: {source}")]
    Read {
        file: String,
        #[source]
        source: std::io::Error,
    },
    /// Not TOML, or a key or value the file does not know.
    #[error("{file}:{line}:{column}: {message}")]
    Parse {
        file: String,
        line: usize,
        column: usize,
        message: String,
    },
    /// A division code that is not 6 digits.
    #[error("{file}: division {code:?}: a GB/T 2260 code has 6 digits")]
    BadDivisionCode { file: String, code: String },
    /// The same division twice.
    #[error("{file}: division {code:?} is listed twice")]
    DuplicateDivision { file: String, code: String },
    /// A division whose parent is not listed.
    #[error("{file}: division {code:?}: parent division {parent:?} is not listed")]
    UnknownParentDivision {
        file: String,
        code: String,
        parent: String,
    },
    /// Divisions whose parents loop.
    #[error("{file}: divisions form a cycle: {}", cycle.join(" → "))]
    DivisionCycle { file: String, cycle: Vec<String> },
    /// A unit id that is not lowercase ASCII.
    #[error("{file}: unit id {id:?}: use lowercase ASCII letters, digits and '-'")]
    BadUnitId { file: String, id: String },
    /// The same unit id twice.
    #[error("{file}: unit {id:?} is listed twice")]
    DuplicateUnit { file: String, id: String },
    /// A blank name.
    #[error("{file}: {entry} has an empty name")]
    EmptyName { file: String, entry: String },
    /// A unit whose parent unit is not listed.
    #[error("{file}: unit {id:?}: parent unit {parent:?} is not listed")]
    UnknownParentUnit {
        file: String,
        id: String,
        parent: String,
    },
    /// A unit serving a division that is not listed.
    #[error("{file}: unit {id:?}: division {division:?} is not listed")]
    UnknownDivision {
        file: String,
        id: String,
        division: String,
    },
    /// Units whose parents loop.
    #[error("{file}: units form a cycle: {}", cycle.join(" → "))]
    UnitCycle { file: String, cycle: Vec<String> },
    /// A parent of the wrong kind, or a missing or extra parent.
    #[error("{file}: unit {id:?}: {rule}")]
    BadParent {
        file: String,
        id: String,
        rule: &'static str,
    },
    /// A unit serving a division outside its parent's.
    #[error(
        "{file}: unit {id:?} serves {division}, which is not inside {parent_division} served by its parent {parent:?}"
    )]
    OutsideParent {
        file: String,
        id: String,
        division: String,
        parent: String,
        parent_division: String,
    },
    /// A rule whose category is not a 2, 4 or 6-digit code.
    #[error(
        "{file}: dispatch rule {category:?} in {division}: not a category code (2, 4 or 6 digits)"
    )]
    RuleBadCategory {
        file: String,
        category: String,
        division: String,
    },
    /// A rule for a division that is not listed.
    #[error("{file}: dispatch rule {category:?} in {division}: division is not listed")]
    RuleUnknownDivision {
        file: String,
        category: String,
        division: String,
    },
    /// A rule naming a unit that is not listed.
    #[error("{file}: dispatch rule {category:?} in {division}: unit {unit:?} is not listed")]
    RuleUnknownUnit {
        file: String,
        category: String,
        division: String,
        unit: String,
    },
    /// A rule whose lead is also one of its co-handlers.
    #[error(
        "{file}: dispatch rule {category:?} in {division}: lead {unit:?} is also listed as a co-handler"
    )]
    LeadIsCoHandler {
        file: String,
        category: String,
        division: String,
        unit: String,
    },
    /// A rule naming a co-handler twice.
    #[error(
        "{file}: dispatch rule {category:?} in {division}: co-handler {unit:?} is listed twice"
    )]
    DuplicateCoHandler {
        file: String,
        category: String,
        division: String,
        unit: String,
    },
    /// A rule naming a unit that does not serve the rule's whole division.
    #[error(
        "{file}: dispatch rule {category:?} in {division}: unit {unit:?} serves {unit_division}, which does not cover {division}"
    )]
    RuleUnitOutside {
        file: String,
        category: String,
        division: String,
        unit: String,
        unit_division: String,
    },
    /// Two rules for the same category and division.
    #[error("{file}: dispatch rule {category:?} in {division} is listed twice")]
    DuplicateRule {
        file: String,
        category: String,
        division: String,
    },
    /// A rule naming a category the catalogue does not have ([`Units::check_against`]).
    #[error(
        "{file}: dispatch rule {category:?} in {division}: category is not in the catalogue {catalogue}"
    )]
    UnknownCategory {
        file: String,
        catalogue: String,
        category: String,
        division: String,
    },
}

/// An administrative division (GB/T 2260).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Division {
    /// Six-digit GB/T 2260 code.
    pub code: String,
    /// Name, e.g. 呼和浩特市.
    pub name: String,
    /// Enclosing division; `None` for the region.
    #[serde(default)]
    pub parent: Option<String>,
}

/// What kind of body a unit is; fixes which parents it may have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UnitKind {
    /// The autonomous region's government.
    Region,
    /// A league (盟) or city government.
    City,
    /// A banner (旗), county or district government.
    County,
    /// A government department.
    Department,
    /// A public enterprise: water, power, gas, heating, telecom.
    Enterprise,
}

impl UnitKind {
    /// The name used in the TOML file.
    pub fn as_str(self) -> &'static str {
        match self {
            UnitKind::Region => "region",
            UnitKind::City => "city",
            UnitKind::County => "county",
            UnitKind::Department => "department",
            UnitKind::Enterprise => "enterprise",
        }
    }

    /// Whether `parent` (None: no parent) is allowed; else the rule broken.
    fn check_parent(self, parent: Option<UnitKind>) -> Result<(), &'static str> {
        use UnitKind::*;
        match (self, parent) {
            (Region, None) => Ok(()),
            (Region, Some(_)) => Err("a region unit has no parent"),
            (City, Some(Region)) => Ok(()),
            (City, _) => Err("a city unit's parent must be a region unit"),
            (County, Some(City)) => Ok(()),
            (County, _) => Err("a county unit's parent must be a city unit"),
            (Department, Some(Region | City | County | Department)) => Ok(()),
            (Department, _) => {
                Err("a department's parent must be a region, city, county or department unit")
            }
            (Enterprise, Some(Region | City | County | Enterprise)) => Ok(()),
            (Enterprise, _) => {
                Err("an enterprise's parent must be a region, city, county or enterprise unit")
            }
        }
    }
}

impl fmt::Display for UnitKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A handling unit (承办单位).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Unit {
    /// Stable ASCII id, e.g. `hhht-housing`.
    pub id: String,
    /// Full Chinese name.
    pub name: String,
    /// What kind of body it is.
    pub kind: UnitKind,
    /// Parent unit id; `None` for the region.
    #[serde(default)]
    pub parent: Option<String>,
    /// Code of the division it serves.
    pub division: String,
}

/// A dispatch rule as written in the file.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DispatchRule {
    /// Category code, any level.
    pub category: String,
    /// Division code, any level.
    pub division: String,
    /// Lead unit id (主办).
    pub lead: String,
    /// Co-handler unit ids (协办), in the file's order.
    #[serde(default)]
    pub co_handlers: Vec<String>,
}

/// The default units for an order: one lead and its co-handlers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DispatchPlan {
    /// Lead unit id (主办).
    pub lead: String,
    /// Co-handler unit ids (协办).
    pub co_handlers: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UnitsFile {
    #[serde(default)]
    division: Vec<Division>,
    #[serde(default)]
    unit: Vec<Unit>,
    #[serde(default)]
    dispatch: Vec<DispatchRule>,
}

/// The loaded divisions, units and dispatch rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Units {
    /// File name, for errors found later ([`Units::check_against`]).
    source: String,
    divisions: BTreeMap<String, Division>,
    units: BTreeMap<String, Unit>,
    /// Category code → division code → rule.
    rules: BTreeMap<String, BTreeMap<String, DispatchRule>>,
}

fn is_unit_id(id: &str) -> bool {
    let b = id.as_bytes();
    !b.is_empty()
        && b.len() <= 64
        && b[0].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
}

fn is_category_code(code: &str) -> bool {
    matches!(code.len(), 2 | 4 | 6) && code.bytes().all(|b| b.is_ascii_digit())
}

/// The first cycle among `parent` links, as the keys on it (smallest first,
/// then in parent order, closing on the first again).
fn find_cycle<'a>(
    keys: impl Iterator<Item = &'a str>,
    parent: impl Fn(&str) -> Option<&'a str>,
    count: usize,
) -> Option<Vec<String>> {
    for start in keys {
        let mut node = start;
        let mut steps = 0;
        while let Some(p) = parent(node) {
            node = p;
            steps += 1;
            if steps > count {
                // More steps than nodes: `node` is on a cycle. Collect it.
                let mut cycle = vec![node.to_string()];
                let mut n = parent(node)?;
                while n != node {
                    cycle.push(n.to_string());
                    n = parent(n)?;
                }
                let min = cycle
                    .iter()
                    .enumerate()
                    .min_by_key(|(_, k)| k.as_str())
                    .map_or(0, |(i, _)| i);
                cycle.rotate_left(min);
                cycle.push(cycle[0].clone());
                return Some(cycle);
            }
        }
    }
    None
}

impl Units {
    /// Reads and checks a units file.
    pub fn load(path: &Path) -> Result<Units, UnitsError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| UnitsError::Read {
            file: file.clone(),
            source,
        })?;
        Units::from_toml(&text, &file)
    }

    /// Parses and checks units text; `source_name` names it in errors.
    pub fn from_toml(text: &str, source_name: &str) -> Result<Units, UnitsError> {
        let file = || source_name.to_string();
        let raw: UnitsFile = toml::from_str(text).map_err(|e| {
            let (line, column, message) = parse_error(text, &e);
            UnitsError::Parse {
                file: file(),
                line,
                column,
                message,
            }
        })?;
        let mut units = Units {
            source: file(),
            divisions: BTreeMap::new(),
            units: BTreeMap::new(),
            rules: BTreeMap::new(),
        };

        // Divisions: each well formed and once, parents known, no loop.
        for d in raw.division {
            if d.code.len() != 6 || !d.code.bytes().all(|b| b.is_ascii_digit()) {
                return Err(UnitsError::BadDivisionCode {
                    file: file(),
                    code: d.code,
                });
            }
            if d.name.trim().is_empty() {
                return Err(UnitsError::EmptyName {
                    file: file(),
                    entry: format!("division {:?}", d.code),
                });
            }
            if units.divisions.contains_key(&d.code) {
                return Err(UnitsError::DuplicateDivision {
                    file: file(),
                    code: d.code,
                });
            }
            units.divisions.insert(d.code.clone(), d);
        }
        for d in units.divisions.values() {
            if let Some(p) = &d.parent
                && !units.divisions.contains_key(p)
            {
                return Err(UnitsError::UnknownParentDivision {
                    file: file(),
                    code: d.code.clone(),
                    parent: p.clone(),
                });
            }
        }
        if let Some(cycle) = find_cycle(
            units.divisions.keys().map(String::as_str),
            |c| units.divisions.get(c).and_then(|d| d.parent.as_deref()),
            units.divisions.len(),
        ) {
            return Err(UnitsError::DivisionCycle {
                file: file(),
                cycle,
            });
        }

        // Units: each well formed and once, references known, no loop, then
        // the kind of each parent and the division each serves.
        for u in raw.unit {
            if !is_unit_id(&u.id) {
                return Err(UnitsError::BadUnitId {
                    file: file(),
                    id: u.id,
                });
            }
            if u.name.trim().is_empty() {
                return Err(UnitsError::EmptyName {
                    file: file(),
                    entry: format!("unit {:?}", u.id),
                });
            }
            if units.units.contains_key(&u.id) {
                return Err(UnitsError::DuplicateUnit {
                    file: file(),
                    id: u.id,
                });
            }
            if !units.divisions.contains_key(&u.division) {
                return Err(UnitsError::UnknownDivision {
                    file: file(),
                    id: u.id,
                    division: u.division,
                });
            }
            units.units.insert(u.id.clone(), u);
        }
        for u in units.units.values() {
            if let Some(p) = &u.parent
                && !units.units.contains_key(p)
            {
                return Err(UnitsError::UnknownParentUnit {
                    file: file(),
                    id: u.id.clone(),
                    parent: p.clone(),
                });
            }
        }
        if let Some(cycle) = find_cycle(
            units.units.keys().map(String::as_str),
            |id| units.units.get(id).and_then(|u| u.parent.as_deref()),
            units.units.len(),
        ) {
            return Err(UnitsError::UnitCycle {
                file: file(),
                cycle,
            });
        }
        for u in units.units.values() {
            let parent = u.parent.as_deref().and_then(|p| units.units.get(p));
            u.kind
                .check_parent(parent.map(|p| p.kind))
                .map_err(|rule| UnitsError::BadParent {
                    file: file(),
                    id: u.id.clone(),
                    rule,
                })?;
            if let Some(p) = parent
                && !units.covers(&p.division, &u.division)
            {
                return Err(UnitsError::OutsideParent {
                    file: file(),
                    id: u.id.clone(),
                    division: u.division.clone(),
                    parent: p.id.clone(),
                    parent_division: p.division.clone(),
                });
            }
        }

        // Rules: known division and units, units that serve the division,
        // one lead not among distinct co-handlers, one rule per pair.
        let mut rules: BTreeMap<String, BTreeMap<String, DispatchRule>> = BTreeMap::new();
        for r in raw.dispatch {
            let at = |r: &DispatchRule| (file(), r.category.clone(), r.division.clone());
            if !is_category_code(&r.category) {
                let (file, category, division) = at(&r);
                return Err(UnitsError::RuleBadCategory {
                    file,
                    category,
                    division,
                });
            }
            if !units.divisions.contains_key(&r.division) {
                let (file, category, division) = at(&r);
                return Err(UnitsError::RuleUnknownDivision {
                    file,
                    category,
                    division,
                });
            }
            let mut seen = BTreeSet::new();
            for id in std::iter::once(&r.lead).chain(&r.co_handlers) {
                let (file, category, division) = at(&r);
                let unit = id.clone();
                let Some(u) = units.units.get(id) else {
                    return Err(UnitsError::RuleUnknownUnit {
                        file,
                        category,
                        division,
                        unit,
                    });
                };
                if !seen.insert(id) {
                    return Err(if *id == r.lead {
                        UnitsError::LeadIsCoHandler {
                            file,
                            category,
                            division,
                            unit,
                        }
                    } else {
                        UnitsError::DuplicateCoHandler {
                            file,
                            category,
                            division,
                            unit,
                        }
                    });
                }
                if !units.covers(&u.division, &r.division) {
                    return Err(UnitsError::RuleUnitOutside {
                        file,
                        category,
                        division,
                        unit,
                        unit_division: u.division.clone(),
                    });
                }
            }
            let by_division = rules.entry(r.category.clone()).or_default();
            if by_division.contains_key(&r.division) {
                let (file, category, division) = at(&r);
                return Err(UnitsError::DuplicateRule {
                    file,
                    category,
                    division,
                });
            }
            by_division.insert(r.division.clone(), r);
        }
        units.rules = rules;
        Ok(units)
    }

    /// Whether division `outer` is `inner` or encloses it.
    fn covers(&self, outer: &str, inner: &str) -> bool {
        self.divisions_up(inner).iter().any(|d| d.code == outer)
    }

    /// The unit with this id.
    pub fn unit(&self, id: &str) -> Option<&Unit> {
        self.units.get(id)
    }

    /// The division with this code.
    pub fn division(&self, code: &str) -> Option<&Division> {
        self.divisions.get(code)
    }

    /// Whether `unit_id` is `ancestor_id` or lies below it in the unit tree;
    /// false when either is unknown.
    pub fn is_under(&self, unit_id: &str, ancestor_id: &str) -> bool {
        let mut next = self.unit(unit_id);
        while let Some(u) = next {
            if u.id == ancestor_id {
                return true;
            }
            next = u.parent.as_deref().and_then(|p| self.unit(p));
        }
        false
    }

    /// The division and the divisions enclosing it, nearest first; empty
    /// for an unknown code.
    pub fn divisions_up(&self, code: &str) -> Vec<&Division> {
        let mut up = Vec::with_capacity(3);
        let mut next = self.division(code);
        while let Some(d) = next {
            up.push(d);
            next = d.parent.as_deref().and_then(|p| self.division(p));
        }
        up
    }

    /// The default lead and co-handlers for an order in `category_code`
    /// (a 2, 4 or 6-digit code) located in `division_code`. The longest
    /// prefix of the category that has a rule for the division or one
    /// enclosing it wins; among those, the nearest division. `None` when no
    /// rule applies, the division is unknown or the code malformed.
    pub fn dispatch_default(
        &self,
        category_code: &str,
        division_code: &str,
    ) -> Option<DispatchPlan> {
        if !is_category_code(category_code) {
            return None;
        }
        let up = self.divisions_up(division_code);
        for len in [6, 4, 2] {
            let Some(prefix) = category_code.get(..len) else {
                continue;
            };
            let Some(by_division) = self.rules.get(prefix) else {
                continue;
            };
            if let Some(rule) = up.iter().find_map(|d| by_division.get(&d.code)) {
                return Some(DispatchPlan {
                    lead: rule.lead.clone(),
                    co_handlers: rule.co_handlers.clone(),
                });
            }
        }
        None
    }

    /// Checks that every rule names a category of `catalogue`.
    pub fn check_against(&self, catalogue: &Catalogue) -> Result<(), UnitsError> {
        match self.rules().find(|r| catalogue.get(&r.category).is_none()) {
            None => Ok(()),
            Some(r) => Err(UnitsError::UnknownCategory {
                file: self.source.clone(),
                catalogue: catalogue.source().to_string(),
                category: r.category.clone(),
                division: r.division.clone(),
            }),
        }
    }

    /// Every unit, by id.
    pub fn units(&self) -> impl Iterator<Item = &Unit> {
        self.units.values()
    }

    /// Every division, by code.
    pub fn divisions(&self) -> impl Iterator<Item = &Division> {
        self.divisions.values()
    }

    /// Every dispatch rule, by category then division.
    pub fn rules(&self) -> impl Iterator<Item = &DispatchRule> {
        self.rules.values().flat_map(|d| d.values())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shipped() -> (Units, Catalogue) {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("sip-config");
        let units = Units::load(&dir.join("units.toml")).unwrap();
        let catalogue = Catalogue::load(&dir.join("catalogue.toml")).unwrap();
        (units, catalogue)
    }

    fn plan(lead: &str, co: &[&str]) -> Option<DispatchPlan> {
        Some(DispatchPlan {
            lead: lead.into(),
            co_handlers: co.iter().map(|s| s.to_string()).collect(),
        })
    }

    #[test]
    fn shipped_units_load_and_cross_check() {
        let (units, catalogue) = shipped();
        units.check_against(&catalogue).unwrap();
        assert!(units.divisions().count() >= 20);
        assert!(units.units().count() >= 60);
        assert!(units.rules().count() >= 60);
        // Every level-1 category, and every leaf, has a default in both cities
        // and in each of their districts, counties and banners.
        for city in ["150100", "150800"] {
            let places: Vec<_> = units
                .divisions()
                .filter(|d| d.code == city || d.parent.as_deref() == Some(city))
                .map(|d| d.code.clone())
                .collect();
            assert!(places.len() >= 5, "{city}");
            for c in catalogue.categories().filter(|c| c.level == 1) {
                assert!(
                    units
                        .rules()
                        .any(|r| r.category == c.code && r.division == city)
                );
            }
            for leaf in catalogue.leaves() {
                for place in &places {
                    let p = units.dispatch_default(&leaf.code, place);
                    assert!(p.is_some(), "{} in {place}", leaf.code);
                }
            }
        }
        // Every rule's units are within reach of the division they serve.
        for r in units.rules() {
            let lead = units.unit(&r.lead).unwrap();
            assert!(units.is_under(&lead.id, "nmg"), "{}", lead.id);
        }
    }

    #[test]
    fn shipped_dispatch_examples() {
        let (units, _) = shipped();
        // Heating in 赛罕区: the city's heating company, with housing assisting.
        assert_eq!(
            units.dispatch_default("010101", "150105"),
            plan("hhht-heating", &["hhht-housing"])
        );
        // Property management in 赛罕区 goes to the district; in 玉泉区 (no
        // district rule) to the city.
        assert_eq!(
            units.dispatch_default("010401", "150105"),
            plan("hhht-saihan-housing", &[])
        );
        assert_eq!(
            units.dispatch_default("010401", "150104"),
            plan("hhht-housing", &[])
        );
        // Telecom is the region's communications administration everywhere.
        assert_eq!(
            units.dispatch_default("110203", "150821"),
            plan("nmg-telecom-admin", &[])
        );
        // Grassland in 乌拉特中旗 stays in the banner.
        assert_eq!(
            units.dispatch_default("090102", "150824"),
            plan("bynr-urad-middle-forestry", &["bynr-urad-middle-agri"])
        );
        // A disaster in 包头 (no local rule) falls back to the region.
        assert_eq!(
            units.dispatch_default("060101", "150203"),
            plan("nmg-emergency", &[])
        );
        assert_eq!(units.dispatch_default("040101", "150203"), None);
    }

    const DIVISIONS: &str = r#"
  { code = "150000", name = "内蒙古自治区" },
  { code = "150100", name = "呼和浩特市", parent = "150000" },
  { code = "150105", name = "赛罕区", parent = "150100" },
  { code = "150800", name = "巴彦淖尔市", parent = "150000" },
"#;

    const UNITS: &str = r#"
  { id = "nmg", name = "自治区人民政府", kind = "region", division = "150000" },
  { id = "nmg-gov", name = "自治区政务服务局", kind = "department", parent = "nmg", division = "150000" },
  { id = "hhht", name = "呼和浩特市人民政府", kind = "city", parent = "nmg", division = "150100" },
  { id = "hhht-housing", name = "市住建局", kind = "department", parent = "hhht", division = "150100" },
  { id = "hhht-heating", name = "市热力公司", kind = "enterprise", parent = "hhht", division = "150100" },
  { id = "saihan", name = "赛罕区人民政府", kind = "county", parent = "hhht", division = "150105" },
  { id = "saihan-housing", name = "区住建局", kind = "department", parent = "saihan", division = "150105" },
  { id = "bynr", name = "巴彦淖尔市人民政府", kind = "city", parent = "nmg", division = "150800" },
"#;

    const RULES: &str = r#"
  { category = "01", division = "150000", lead = "nmg-gov" },
  { category = "01", division = "150100", lead = "hhht-housing" },
  { category = "01", division = "150105", lead = "saihan-housing" },
  { category = "0101", division = "150100", lead = "hhht-heating", co_handlers = ["hhht-housing"] },
  { category = "010102", division = "150000", lead = "nmg-gov" },
"#;

    fn fixture(divisions: &str, units: &str, rules: &str) -> String {
        format!(
            "division = [{DIVISIONS}{divisions}]\nunit = [{UNITS}{units}]\ndispatch = [{RULES}{rules}]\n"
        )
    }

    fn load(divisions: &str, units: &str, rules: &str) -> Result<Units, UnitsError> {
        Units::from_toml(&fixture(divisions, units, rules), "test.toml")
    }

    fn err(divisions: &str, units: &str, rules: &str) -> UnitsError {
        let e = load(divisions, units, rules).unwrap_err();
        assert!(e.to_string().starts_with("test.toml"), "{e}");
        e
    }

    #[test]
    fn divisions_and_tree() {
        let u = load("", "", "").unwrap();
        let up: Vec<_> = u
            .divisions_up("150105")
            .iter()
            .map(|d| d.code.as_str())
            .collect();
        assert_eq!(up, ["150105", "150100", "150000"]);
        assert!(u.divisions_up("159999").is_empty());
        assert_eq!(u.division("150100").unwrap().name, "呼和浩特市");
        let housing = u.unit("saihan-housing").unwrap();
        assert_eq!(housing.kind, UnitKind::Department);
        assert_eq!(housing.parent.as_deref(), Some("saihan"));
        assert!(u.is_under("saihan-housing", "saihan"));
        assert!(u.is_under("saihan-housing", "hhht"));
        assert!(u.is_under("saihan-housing", "nmg"));
        assert!(u.is_under("hhht", "hhht"), "a unit is under itself");
        assert!(!u.is_under("hhht", "saihan-housing"));
        assert!(!u.is_under("bynr", "hhht"));
        assert!(!u.is_under("ghost", "nmg"));
    }

    #[test]
    fn dispatch_most_specific_wins() {
        let u = load("", "", "").unwrap();
        // A longer category code beats a nearer division: 0101 for the city
        // over 01 for the district.
        assert_eq!(
            u.dispatch_default("010101", "150105"),
            plan("hhht-heating", &["hhht-housing"])
        );
        // ... even at region level: 010102 for the region over 0101 for the city.
        assert_eq!(u.dispatch_default("010102", "150105"), plan("nmg-gov", &[]));
        // Same category length: the nearest division wins.
        assert_eq!(
            u.dispatch_default("010401", "150105"),
            plan("saihan-housing", &[])
        );
        assert_eq!(
            u.dispatch_default("010401", "150100"),
            plan("hhht-housing", &[])
        );
        // Walking up to the region when the city has no rule.
        assert_eq!(u.dispatch_default("010101", "150800"), plan("nmg-gov", &[]));
        // Level-1 and level-2 codes are looked up the same way.
        assert_eq!(
            u.dispatch_default("01", "150105"),
            plan("saihan-housing", &[])
        );
        assert_eq!(
            u.dispatch_default("0101", "150105"),
            plan("hhht-heating", &["hhht-housing"])
        );
        // No rule, unknown division, malformed code.
        assert_eq!(u.dispatch_default("020101", "150105"), None);
        assert_eq!(u.dispatch_default("010101", "159999"), None);
        assert_eq!(u.dispatch_default("01010", "150105"), None);
        assert_eq!(u.dispatch_default("01x101", "150105"), None);
        assert_eq!(u.dispatch_default("", "150105"), None);
    }

    #[test]
    fn division_errors() {
        let e = err(
            r#"{ code = "15090", name = "x", parent = "150000" },"#,
            "",
            "",
        );
        assert!(
            matches!(&e, UnitsError::BadDivisionCode { code, .. } if code == "15090"),
            "{e}"
        );
        let e = err(
            r#"{ code = "150100", name = "again", parent = "150000" },"#,
            "",
            "",
        );
        assert!(
            matches!(&e, UnitsError::DuplicateDivision { code, .. } if code == "150100"),
            "{e}"
        );
        let e = err(
            r#"{ code = "150900", name = "x", parent = "159900" },"#,
            "",
            "",
        );
        assert!(
            e.to_string().contains("\"150900\"") && e.to_string().contains("\"159900\""),
            "{e}"
        );
        assert!(matches!(e, UnitsError::UnknownParentDivision { .. }));
        let e = err(
            r#"{ code = "150901", name = "a", parent = "150900" }, { code = "150900", name = "b", parent = "150901" },"#,
            "",
            "",
        );
        assert!(
            matches!(&e, UnitsError::DivisionCycle { cycle, .. } if cycle == &["150900", "150901", "150900"]),
            "{e}"
        );
        assert!(e.to_string().contains("150900 → 150901 → 150900"), "{e}");
        let e = err(r#"{ code = "150900", name = " " },"#, "", "");
        assert!(
            e.to_string()
                .contains("division \"150900\" has an empty name"),
            "{e}"
        );
    }

    #[test]
    fn unit_errors() {
        let e = err(
            "",
            r#"{ id = "Hhht_x", name = "x", kind = "department", parent = "hhht", division = "150100" },"#,
            "",
        );
        assert!(
            matches!(&e, UnitsError::BadUnitId { id, .. } if id == "Hhht_x"),
            "{e}"
        );
        let e = err(
            "",
            r#"{ id = "hhht", name = "x", kind = "city", parent = "nmg", division = "150100" },"#,
            "",
        );
        assert!(
            matches!(&e, UnitsError::DuplicateUnit { id, .. } if id == "hhht"),
            "{e}"
        );
        let e = err(
            "",
            r#"{ id = "x", name = "x", kind = "department", parent = "ghost", division = "150100" },"#,
            "",
        );
        assert!(
            matches!(&e, UnitsError::UnknownParentUnit { id, parent, .. } if id == "x" && parent == "ghost"),
            "{e}"
        );
        let e = err(
            "",
            r#"{ id = "x", name = "x", kind = "department", parent = "hhht", division = "150199" },"#,
            "",
        );
        assert!(
            matches!(&e, UnitsError::UnknownDivision { id, division, .. } if id == "x" && division == "150199"),
            "{e}"
        );
        let e = err(
            "",
            r#"{ id = "b", name = "b", kind = "department", parent = "a", division = "150100" }, { id = "a", name = "a", kind = "department", parent = "b", division = "150100" },"#,
            "",
        );
        assert!(
            matches!(&e, UnitsError::UnitCycle { cycle, .. } if cycle == &["a", "b", "a"]),
            "{e}"
        );
        let e = err(
            "",
            r#"{ id = "x", name = "x", kind = "department", parent = "x", division = "150100" },"#,
            "",
        );
        assert!(e.to_string().contains("cycle: x → x"), "{e}");
        let e = err(
            "",
            r#"{ id = "x", name = "x", kind = "county", parent = "nmg", division = "150105" },"#,
            "",
        );
        assert!(
            matches!(&e, UnitsError::BadParent { id, .. } if id == "x"),
            "{e}"
        );
        assert!(e.to_string().contains("must be a city unit"), "{e}");
        let e = err(
            "",
            r#"{ id = "x", name = "x", kind = "department", division = "150100" },"#,
            "",
        );
        assert!(
            matches!(&e, UnitsError::BadParent { id, .. } if id == "x"),
            "{e}"
        );
        let e = err(
            "",
            r#"{ id = "x", name = "x", kind = "region", parent = "nmg", division = "150000" },"#,
            "",
        );
        assert!(e.to_string().contains("a region unit has no parent"), "{e}");
        let e = err(
            "",
            r#"{ id = "x", name = "x", kind = "enterprise", parent = "hhht-housing", division = "150100" },"#,
            "",
        );
        assert!(matches!(&e, UnitsError::BadParent { .. }), "{e}");
        let e = err(
            "",
            r#"{ id = "x", name = "x", kind = "department", parent = "hhht", division = "150800" },"#,
            "",
        );
        assert!(
            matches!(&e, UnitsError::OutsideParent { id, parent, .. } if id == "x" && parent == "hhht"),
            "{e}"
        );
        let e = err(
            "",
            r#"{ id = "x", name = "", kind = "department", parent = "hhht", division = "150100" },"#,
            "",
        );
        assert!(
            e.to_string().contains("unit \"x\" has an empty name"),
            "{e}"
        );
    }

    #[test]
    fn rule_errors() {
        let e = err(
            "",
            "",
            r#"{ category = "1", division = "150100", lead = "hhht-housing" },"#,
        );
        assert!(
            matches!(&e, UnitsError::RuleBadCategory { category, .. } if category == "1"),
            "{e}"
        );
        let e = err(
            "",
            "",
            r#"{ category = "02", division = "150199", lead = "hhht-housing" },"#,
        );
        assert!(
            matches!(&e, UnitsError::RuleUnknownDivision { division, .. } if division == "150199"),
            "{e}"
        );
        let e = err(
            "",
            "",
            r#"{ category = "02", division = "150100", lead = "ghost" },"#,
        );
        assert!(
            matches!(&e, UnitsError::RuleUnknownUnit { unit, .. } if unit == "ghost"),
            "{e}"
        );
        let e = err(
            "",
            "",
            r#"{ category = "02", division = "150100", lead = "hhht-housing", co_handlers = ["phantom"] },"#,
        );
        assert!(
            matches!(&e, UnitsError::RuleUnknownUnit { unit, .. } if unit == "phantom"),
            "{e}"
        );
        let e = err(
            "",
            "",
            r#"{ category = "02", division = "150100", lead = "hhht-housing", co_handlers = ["hhht-heating", "hhht-housing"] },"#,
        );
        assert!(
            matches!(&e, UnitsError::LeadIsCoHandler { unit, .. } if unit == "hhht-housing"),
            "{e}"
        );
        assert!(
            e.to_string().contains("dispatch rule \"02\" in 150100"),
            "{e}"
        );
        let e = err(
            "",
            "",
            r#"{ category = "02", division = "150100", lead = "hhht-housing", co_handlers = ["hhht-heating", "hhht-heating"] },"#,
        );
        assert!(
            matches!(&e, UnitsError::DuplicateCoHandler { unit, .. } if unit == "hhht-heating"),
            "{e}"
        );
        // A city unit cannot be the default for another city, nor a district
        // unit for the whole city.
        let e = err(
            "",
            "",
            r#"{ category = "02", division = "150800", lead = "hhht-housing" },"#,
        );
        assert!(
            matches!(&e, UnitsError::RuleUnitOutside { unit, .. } if unit == "hhht-housing"),
            "{e}"
        );
        let e = err(
            "",
            "",
            r#"{ category = "02", division = "150100", lead = "hhht-housing", co_handlers = ["saihan-housing"] },"#,
        );
        assert!(
            matches!(&e, UnitsError::RuleUnitOutside { unit, .. } if unit == "saihan-housing"),
            "{e}"
        );
        let e = err(
            "",
            "",
            r#"{ category = "01", division = "150100", lead = "hhht-heating" },"#,
        );
        assert!(
            matches!(&e, UnitsError::DuplicateRule { category, division, .. } if category == "01" && division == "150100"),
            "{e}"
        );
    }

    #[test]
    fn unknown_keys_and_values_are_refused_with_position() {
        let e = err(
            "",
            r#"{ id = "x", nmae = "x", kind = "department", parent = "hhht", division = "150100" },"#,
            "",
        );
        let UnitsError::Parse { line, message, .. } = &e else {
            panic!("{e}");
        };
        assert!(message.contains("nmae"), "{e}");
        let text = fixture("", "{ id = \"x\", nmae", "");
        let expected = text.lines().position(|l| l.contains("nmae")).unwrap() + 1;
        assert_eq!(*line, expected, "{e}");
        let e = err(
            "",
            r#"{ id = "x", name = "x", kind = "agency", parent = "hhht", division = "150100" },"#,
            "",
        );
        assert!(e.to_string().contains("agency"), "{e}");
        let e = Units::from_toml("rules = []\n", "test.toml").unwrap_err();
        assert!(
            e.to_string().starts_with("test.toml:1:1:") && e.to_string().contains("rules"),
            "{e}"
        );
        let e = Units::load(Path::new("/nonexistent/units.toml")).unwrap_err();
        assert!(
            e.to_string().starts_with("/nonexistent/units.toml: "),
            "{e}"
        );
    }

    #[test]
    fn check_against_names_unknown_categories() {
        let catalogue = Catalogue::from_toml(
            "[[category]]\ncode = \"01\"\nname = \"城乡建设\"\n[[category.children]]\ncode = \"0101\"\nname = \"供暖\"\nchildren = [{ code = \"010102\", name = \"室温不达标\" }]\n",
            "cat.toml",
        )
        .unwrap();
        load("", "", "").unwrap().check_against(&catalogue).unwrap();
        let u = load(
            "",
            "",
            r#"{ category = "0199", division = "150100", lead = "hhht-housing" },"#,
        )
        .unwrap();
        let e = u.check_against(&catalogue).unwrap_err();
        assert!(
            matches!(&e, UnitsError::UnknownCategory { category, division, .. } if category == "0199" && division == "150100"),
            "{e}"
        );
        assert!(e.to_string().starts_with("test.toml: "), "{e}");
    }
}
