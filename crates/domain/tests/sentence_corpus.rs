//! The golden corpus of release-date calculations: every `NN-name.input.json` in
//! `tests/sentences/` is calculated and compared with `NN-name.expected.json` (the full answer, or
//! `{"error": [{"field", "problem"}, …]}` for a refusal). The expected files were worked out apart
//! from this code, with an independent calendar implementation, so that the corpus can catch bugs.

use std::path::{Path, PathBuf};

use custodia_domain::sentence::{calculate, SentenceInput};
use serde_json::{json, Value};

/// The corpus must not shrink unnoticed.
const AT_LEAST: usize = 40;

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests").join("sentences")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

#[test]
fn every_pair_of_the_corpus_gives_the_expected_answer() {
    let mut inputs: Vec<PathBuf> = std::fs::read_dir(corpus())
        .expect("the corpus folder")
        .map(|entry| entry.expect("a corpus entry").path())
        .filter(|p| p.to_string_lossy().ends_with(".input.json"))
        .collect();
    inputs.sort();
    assert!(inputs.len() >= AT_LEAST, "the corpus has {} pairs, fewer than {AT_LEAST}", inputs.len());

    let mut failures = Vec::new();
    for input_path in &inputs {
        let name = input_path.file_name().unwrap().to_string_lossy().replace(".input.json", "");
        let expected_path = input_path.with_file_name(format!("{name}.expected.json"));
        let expected: Value = serde_json::from_str(&read(&expected_path))
            .unwrap_or_else(|e| panic!("{} is not JSON: {e}", expected_path.display()));
        let input: SentenceInput = serde_json::from_str(&read(input_path))
            .unwrap_or_else(|e| panic!("{} is not a sentence input: {e}", input_path.display()));
        let actual = match calculate(&input) {
            Ok(calculation) => serde_json::to_value(&calculation).unwrap(),
            Err(errors) => json!({ "error": errors }),
        };
        if actual != expected {
            failures.push(format!(
                "{name}:\n  expected {}\n  got      {}",
                serde_json::to_string_pretty(&expected).unwrap(),
                serde_json::to_string_pretty(&actual).unwrap()
            ));
        }
    }
    assert!(failures.is_empty(), "{} of {} pairs differ:\n{}", failures.len(), inputs.len(), failures.join("\n"));
}

#[test]
fn every_expected_file_has_its_input() {
    for entry in std::fs::read_dir(corpus()).expect("the corpus folder") {
        let path = entry.expect("a corpus entry").path();
        let text = path.to_string_lossy().to_string();
        if let Some(stem) = text.strip_suffix(".expected.json") {
            assert!(Path::new(&format!("{stem}.input.json")).exists(), "{text} has no input");
        } else {
            assert!(text.ends_with(".input.json"), "{text} is neither an input nor an expected answer");
        }
    }
}
