#![allow(clippy::expect_used, clippy::unwrap_used)]
//! Strings that YAML parsers misread when printed plain (YAML 1.1 booleans and sexagesimals, 1.2
//! numbers, indicators, line breaks, odd whitespace) must read back unchanged as values, list
//! items and keys, through yaml-rust2 (YAML 1.2) and PyYAML (YAML 1.1) when python3 has it.

mod common;

use serde_json::{json, Map, Value};

/// Tricky strings.
const STRINGS: &[&str] = &[
    "",
    " ",
    "  a",
    "a ",
    "-",
    "- a",
    "-a",
    "--a",
    "? a",
    "?a",
    ": a",
    ":a",
    "a:",
    "a: b",
    "a:b",
    "a #b",
    "a#b",
    "#",
    "#a",
    "'",
    "'a'",
    "\"",
    "\"a\"",
    "|",
    "| a",
    ">",
    "> a",
    "%a",
    "@a",
    "`a",
    "!a",
    "!!str",
    "&a",
    "*a",
    "{",
    "}",
    "[",
    "]",
    ",",
    "a,b",
    "[a]",
    "{a: b}",
    "x: y: z",
    "y",
    "Y",
    "yes",
    "Yes",
    "YES",
    "n",
    "N",
    "no",
    "NO",
    "on",
    "On",
    "ON",
    "off",
    "Off",
    "true",
    "True",
    "TRUE",
    "false",
    "FALSE",
    "~",
    "null",
    "Null",
    "NULL",
    ".inf",
    ".Inf",
    "-.inf",
    "+.INF",
    ".nan",
    ".NaN",
    "0",
    "-0",
    "+0",
    "0.0",
    "1.",
    ".5",
    "-.5",
    "+.5",
    "1e3",
    "1E3",
    "1e+3",
    "1.5e-3",
    "0x1f",
    "0X1F",
    "0o17",
    "0b101",
    "017",
    "09",
    "1_000",
    "1:30",
    "190:20:30",
    "12:30:45",
    "1,000",
    "2001-12-14",
    "2001-12-14t21:59:43.10-05:00",
    "2001-12-14 21:59:43.10 -5",
    "=",
    "<<",
    "---",
    "...",
    "--- a",
    "... a",
    "a ---",
    "- - a",
    "a\nb",
    "a\n",
    "a\n\n",
    "\na",
    "\n",
    " a\nb",
    "a \nb",
    "a\n b",
    "a\n \nb",
    "a\r\nb",
    "a\rb",
    "\t",
    "a\tb",
    "\ta",
    "é",
    "☃ x",
    "\u{85}",
    "a\u{2028}b",
    "\u{feff}x",
    "\u{1}",
    "\u{7f}",
    "a\\b",
    "a\\nb",
    "100m",
    "1Gi",
    "v1",
    "apps/v1",
    "10.0.0.1",
    "::1",
    "fe80::1",
    "http://x:80/",
    "*",
    "0777",
    "1.2.3",
    "a\n\n\nb\n\n",
    "  \n",
    "key: |\n  x",
];

#[test]
fn tricky_strings_read_back() {
    let mut docs: Vec<Value> = Vec::new();
    for s in STRINGS {
        docs.push(json!({ "v": s, "l": [s, [s]], "m": [{ "k": s }] }));
        let mut keyed = Map::new();
        keyed.insert((*s).to_string(), json!(s));
        docs.push(Value::Object(keyed));
    }
    docs.push(json!(STRINGS));
    common::assert_yaml_reads_back(&docs);
}

#[test]
fn numbers_and_other_scalars_read_back() {
    let v = json!({"i": 0, "n": -7, "big": 9_007_199_254_740_993_i64, "f": 10.5, "e": 1e21,
        "small": 1.5e-7, "t": true, "f2": false, "z": null, "empty": {}, "none": []});
    let t = k8s_codec::to_yaml(&v);
    assert_eq!(common::diff(&common::yaml12(&t), &v, ""), None, "{t}");
    if let Some(p) = common::yaml11(std::slice::from_ref(&t)) {
        assert_eq!(common::diff(&p[0], &v, ""), None, "{t}");
    }
}
