//! Just enough of aws-sam-translator's Python 2.7 compatibility layer (`utils/py27hash_fix.py`)
//! to reproduce the text it hashes for a REST API's deployment logical id.
//!
//! SAM names an `AWS::ApiGateway::Deployment` `<Api>Deployment` + the first 10 hex digits of the
//! SHA-1 of `str(swagger)`: Python's text form of the API's swagger, not JSON. The swagger is made
//! of `Py27Dict`s, whose keys iterate in the order a Python 2.7 dict would give (slot order of
//! its open-addressing table, which depends on the keys' Python 2.7 string hashes and on the
//! history of inserts, deletes, resizes and deep copies), and whose strings print as `u'...'`
//! when they came from the template (`Py27UniStr`) and as `'...'` when SAM wrote them. Plain
//! dicts (such as `{'Ref': 'AWS::StackName'}`) keep insertion order. This module models those
//! values and operations, ported line by line.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

const MINSIZE: u64 = 8;
const PERTURB_SHIFT: u32 = 5;

/// Python 2.7's `string_hash` over the characters' code points, as an unsigned 64-bit value
/// (`ctypes.c_size_t(Hash.hash(k)).value`).
pub(crate) fn py27_hash(s: &str) -> u64 {
    let mut chars = s.chars();
    let Some(first) = chars.next() else { return 0 };
    let mut x: u64 = (first as u64) << 7;
    let mut len: u64 = 0;
    for c in s.chars() {
        x = x.wrapping_mul(1_000_003) ^ (c as u64);
        len += 1;
    }
    x ^ len
}

#[derive(Debug, Clone, PartialEq)]
enum Slot {
    Key(String),
    Dummy,
}

/// `Py27Keys`: the key table of a Python 2.7 dict.
#[derive(Debug, Clone)]
struct Keys {
    order: BTreeMap<u64, Slot>,
    size: u64,
    fill: u64,
    mask: u64,
}

impl Keys {
    fn new() -> Self {
        Keys {
            order: BTreeMap::new(),
            size: 0,
            fill: 0,
            mask: MINSIZE - 1,
        }
    }

    fn is_key(&self, i: u64, k: &str) -> bool {
        matches!(self.order.get(&i), Some(Slot::Key(x)) if x == k)
    }

    fn key_idx(&self, k: &str) -> u64 {
        let h = py27_hash(k);
        let mut i = h & self.mask;
        if !self.order.contains_key(&i) || self.is_key(i, k) {
            return i;
        }
        let mut freeslot = None;
        if self.order.get(&i) == Some(&Slot::Dummy) {
            freeslot = Some(i);
        }
        let mut walker = i;
        let mut perturb = h;
        while self.order.contains_key(&i) && !self.is_key(i, k) {
            walker = (walker << 2).wrapping_add(walker).wrapping_add(perturb).wrapping_add(1);
            i = walker & self.mask;
            if !self.order.contains_key(&i) {
                return freeslot.unwrap_or(i);
            }
            if self.is_key(i, k) {
                return i;
            }
            if freeslot.is_none() && self.order.get(&i) == Some(&Slot::Dummy) {
                freeslot = Some(i);
            }
            perturb >>= PERTURB_SHIFT;
        }
        i
    }

    fn resize(&mut self, request: u64) {
        let mut newsize = MINSIZE;
        while newsize <= request {
            newsize <<= 1;
        }
        self.mask = newsize - 1;
        let old = std::mem::take(&mut self.order);
        self.fill = 0;
        self.size = 0;
        for (_, slot) in old {
            if let Slot::Key(k) = slot {
                self.add(&k);
            }
        }
    }

    fn remove(&mut self, key: &str) {
        let i = self.key_idx(key);
        if matches!(self.order.get(&i), Some(Slot::Key(_))) {
            self.order.insert(i, Slot::Dummy);
            self.size -= 1;
        }
    }

    fn add(&mut self, key: &str) {
        let start = self.size;
        let i = self.key_idx(key);
        match self.order.get(&i) {
            None => {
                self.size += 1;
                self.fill += 1;
                self.order.insert(i, Slot::Key(key.to_string()));
            }
            Some(slot) => {
                if *slot == Slot::Dummy {
                    self.size += 1;
                }
                self.order.insert(i, Slot::Key(key.to_string()));
            }
        }
        if self.size > start && self.fill * 3 >= (self.mask + 1) * 2 {
            let factor = if self.size > 50_000 { 2 } else { 4 };
            self.resize(self.size * factor);
        }
    }

    fn keys(&self) -> Vec<&str> {
        self.order
            .values()
            .filter_map(|s| match s {
                Slot::Key(k) => Some(k.as_str()),
                Slot::Dummy => None,
            })
            .collect()
    }

    /// `Py27Keys.__deepcopy__`: the keys added afresh, in iteration order.
    fn deepcopy(&self) -> Self {
        let mut k = Keys::new();
        for key in self.keys() {
            k.add(key);
        }
        k
    }
}

/// A Python value as SAM holds it.
#[derive(Debug, Clone)]
pub(crate) enum Py {
    None,
    Bool(bool),
    Num(serde_json::Number),
    /// The text, and whether it is a `Py27UniStr` (prints as `u'...'`).
    Str(String, bool),
    List(Vec<Py>),
    Dict(PyDict),
}

/// A dict: a `Py27Dict` (with its key table) or a plain Python 3 dict.
#[derive(Debug, Clone)]
pub(crate) struct PyDict {
    entries: Vec<(String, bool, Py)>,
    keys: Option<Keys>,
}

impl PyDict {
    pub(crate) fn py27() -> Self {
        PyDict {
            entries: Vec::new(),
            keys: Some(Keys::new()),
        }
    }

    pub(crate) fn plain() -> Self {
        PyDict {
            entries: Vec::new(),
            keys: None,
        }
    }

    pub(crate) fn set(&mut self, key: &str, uni: bool, value: Py) {
        match self.entries.iter_mut().find(|(k, _, _)| k == key) {
            Some(e) => e.2 = value,
            None => self.entries.push((key.to_string(), uni, value)),
        }
        if let Some(k) = self.keys.as_mut() {
            k.add(key);
        }
    }

    pub(crate) fn get(&self, key: &str) -> Option<&Py> {
        self.entries.iter().find(|(k, _, _)| k == key).map(|e| &e.2)
    }

    pub(crate) fn get_mut(&mut self, key: &str) -> Option<&mut Py> {
        self.entries.iter_mut().find(|(k, _, _)| k == key).map(|e| &mut e.2)
    }

    pub(crate) fn contains(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// `setdefault(key, default)`: the value at `key`, set to `default` first when absent.
    pub(crate) fn setdefault(&mut self, key: &str, uni: bool, default: Py) -> &mut Py {
        if !self.contains(key) {
            self.set(key, uni, default);
        }
        self.get_mut(key).expect("just set")
    }

    /// Keys with their `Py27UniStr` flag, in iteration order.
    fn ordered(&self) -> Vec<&(String, bool, Py)> {
        match &self.keys {
            None => self.entries.iter().collect(),
            Some(k) => k
                .keys()
                .into_iter()
                .filter_map(|key| self.entries.iter().find(|(x, _, _)| x == key))
                .collect(),
        }
    }

    /// `del d[key]` (nothing when absent).
    pub(crate) fn remove(&mut self, key: &str) {
        if let Some(pos) = self.entries.iter().position(|(k, _, _)| k == key) {
            self.entries.remove(pos);
            if let Some(k) = self.keys.as_mut() {
                k.remove(key);
            }
        }
    }

    /// The keys with their `Py27UniStr` flag, in iteration order.
    pub(crate) fn keys_with_kind(&self) -> Vec<(String, bool)> {
        self.ordered().iter().map(|(k, u, _)| (k.clone(), *u)).collect()
    }

    /// The keys, in iteration order.
    pub(crate) fn keys(&self) -> Vec<String> {
        self.ordered().iter().map(|(k, _, _)| k.clone()).collect()
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }
}

impl Py {
    pub(crate) fn s(text: &str) -> Py {
        Py::Str(text.to_string(), false)
    }

    pub(crate) fn as_dict(&self) -> Option<&PyDict> {
        match self {
            Py::Dict(d) => Some(d),
            _ => None,
        }
    }

    pub(crate) fn as_dict_mut(&mut self) -> Option<&mut PyDict> {
        match self {
            Py::Dict(d) => Some(d),
            _ => None,
        }
    }

    /// `_convert_to_py27_type` of a template value: strings become `Py27UniStr`, dicts
    /// `Py27Dict`s filled in the template's order.
    pub(crate) fn from_template(v: &Value) -> Py {
        Self::from_json(v, true)
    }

    /// A value SAM builds from plain Python literals (plain dicts, plain strings).
    pub(crate) fn from_json(v: &Value, template: bool) -> Py {
        match v {
            Value::Null => Py::None,
            Value::Bool(b) => Py::Bool(*b),
            Value::Number(n) => Py::Num(n.clone()),
            Value::String(s) => Py::Str(s.clone(), template),
            Value::Array(a) => Py::List(a.iter().map(|x| Self::from_json(x, template)).collect()),
            Value::Object(m) => {
                let mut d = if template { PyDict::py27() } else { PyDict::plain() };
                for (k, x) in m {
                    d.set(k, template, Self::from_json(x, template));
                }
                Py::Dict(d)
            }
        }
    }

    /// `get_conditional_contents`: the branches of an `Fn::If` (without `AWS::NoValue`), or the
    /// value itself. `Err` when the `Fn::If` does not hold a list.
    pub(crate) fn conditional_contents_mut(&mut self) -> Result<Vec<&mut Py>, ()> {
        let is_if = self.as_dict().is_some_and(|d| d.contains("Fn::If"));
        if !is_if {
            return Ok(vec![self]);
        }
        let Some(Py::List(items)) = self.as_dict_mut().and_then(|d| d.get_mut("Fn::If")) else {
            return Err(());
        };
        Ok(items.iter_mut().skip(1).filter(|p| !p.is_no_value()).collect())
    }

    fn is_no_value(&self) -> bool {
        self.as_dict()
            .is_some_and(|d| d.len() == 1 && matches!(d.get("Ref"), Some(Py::Str(s, _)) if s == "AWS::NoValue"))
    }

    /// `make_conditional(condition, self)`: a plain `{'Fn::If': [condition, self, {'Ref': 'AWS::NoValue'}]}`.
    pub(crate) fn conditional(self, condition: Py) -> Py {
        let mut no_value = PyDict::plain();
        no_value.set("Ref", false, Py::s("AWS::NoValue"));
        let mut d = PyDict::plain();
        d.set("Fn::If", false, Py::List(vec![condition, self, Py::Dict(no_value)]));
        Py::Dict(d)
    }

    /// `copy.deepcopy`.
    pub(crate) fn deepcopy(&self) -> Py {
        match self {
            Py::Dict(d) => Py::Dict(PyDict {
                entries: d
                    .entries
                    .iter()
                    .map(|(k, u, v)| (k.clone(), *u, v.deepcopy()))
                    .collect(),
                keys: d.keys.as_ref().map(Keys::deepcopy),
            }),
            Py::List(l) => Py::List(l.iter().map(Py::deepcopy).collect()),
            other => other.clone(),
        }
    }

    /// The JSON value (keys in iteration order).
    pub(crate) fn to_json(&self) -> Value {
        match self {
            Py::None => Value::Null,
            Py::Bool(b) => Value::Bool(*b),
            Py::Num(n) => Value::Number(n.clone()),
            Py::Str(s, _) => Value::String(s.clone()),
            Py::List(l) => Value::Array(l.iter().map(Py::to_json).collect()),
            Py::Dict(d) => {
                let mut m = Map::new();
                for (k, _, v) in d.ordered() {
                    m.insert(k.clone(), v.to_json());
                }
                Value::Object(m)
            }
        }
    }

    /// Python's `repr` (for a dict, `Py27Dict.__str__` or `dict.__repr__`, the same shape).
    pub(crate) fn repr(&self) -> String {
        match self {
            Py::None => "None".into(),
            Py::Bool(true) => "True".into(),
            Py::Bool(false) => "False".into(),
            Py::Num(n) => match n.as_f64() {
                Some(f) if n.is_f64() => super::hash::python_float(f),
                _ => {
                    // Py27LongInt prints an `L` beyond Python 2's sys.maxint
                    if n.as_u64().is_some_and(|u| u > i64::MAX as u64) {
                        format!("{n}L")
                    } else {
                        n.to_string()
                    }
                }
            },
            Py::Str(s, uni) => str_repr(s, *uni),
            Py::List(l) => format!("[{}]", l.iter().map(Py::repr).collect::<Vec<_>>().join(", ")),
            Py::Dict(d) => format!(
                "{{{}}}",
                d.ordered()
                    .iter()
                    .map(|(k, u, v)| format!("{}: {}", str_repr(k, *u), v.repr()))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }
}

/// Python 3's `repr(str)`, or `Py27UniStr.__repr__` (`u` + the repr of its `unicode_escape`
/// encoding, backslashes not doubled again).
fn str_repr(s: &str, uni: bool) -> String {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::new();
    if uni {
        out.push('u');
    }
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || c as u32 == 0x7f => out.push_str(&format!("\\x{:02x}", c as u32)),
            c if uni && (c as u32) > 0x7f => {
                let n = c as u32;
                if n <= 0xff {
                    out.push_str(&format!("\\x{n:02x}"));
                } else if n <= 0xffff {
                    out.push_str(&format!("\\u{n:04x}"));
                } else {
                    out.push_str(&format!("\\U{n:08x}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn string_hash_is_python_2_7s() {
        // Python 2.7 (64-bit): hash('a') == 12416037344, hash('') == 0
        assert_eq!(py27_hash("a"), 12_416_037_344);
        assert_eq!(py27_hash(""), 0);
    }

    #[test]
    fn skeleton_prints_as_sam_hashes_it() {
        let mut info = PyDict::py27();
        info.set("version", false, Py::s("1.0"));
        let mut title = PyDict::plain();
        title.set("Ref", false, Py::s("AWS::StackName"));
        info.set("title", false, Py::Dict(title));
        let mut sk = PyDict::py27();
        sk.set("swagger", false, Py::s("2.0"));
        sk.set("info", false, Py::Dict(info));
        sk.set("paths", false, Py::Dict(PyDict::py27()));
        let text = Py::Dict(sk).repr();
        assert!(text.contains("'title': {'Ref': 'AWS::StackName'}"), "{text}");
        assert_eq!(str_repr("it's", true), "u\"it's\"");
    }
}
