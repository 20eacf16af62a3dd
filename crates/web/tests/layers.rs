//! The web crate's imports run one way: the topic modules and the pages take what handlers share
//! from `request`, and only the crate root reaches `routes`, which merges the topic routers.

use std::path::Path;

fn sources(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn no_module_but_the_crate_root_imports_the_routes_module() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    assert!(files.len() > 10, "the sources were found");
    for file in files {
        let name = file.strip_prefix(&src).unwrap().to_string_lossy().to_string();
        if name == "lib.rs" || name == "routes.rs" {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(!text.contains("crate::routes"), "{name} reaches into routes.rs: take it from crate::request");
    }
}
