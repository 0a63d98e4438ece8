//! Replays the kept fuzz corpus and every input that once found a bug
//! (`fuzz/corpus/TARGET/`, `fuzz/regressions/TARGET/`) through the same functions the
//! fuzz targets call, on stable: a fixed crash stays fixed. Fails naming each file that
//! panics.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz")
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && p.file_name().is_some_and(|n| n != ".gitkeep"))
        .collect();
    files.sort();
    files
}

#[test]
fn every_kept_input_runs_without_a_panic() {
    let mut ran = 0;
    let mut failed = Vec::new();
    for (name, target) in chorus_fuzz::TARGETS {
        let corpus = files(&fuzz_dir().join("corpus").join(name));
        assert!(!corpus.is_empty(), "fuzz/corpus/{name} has seeds");
        let regressions = files(&fuzz_dir().join("regressions").join(name));
        for file in corpus.iter().chain(&regressions) {
            // Gone since the listing: a fuzzer running on the same corpus reduced it.
            let Ok(data) = std::fs::read(file) else {
                continue;
            };
            ran += 1;
            if catch_unwind(AssertUnwindSafe(|| target(&data))).is_err() {
                failed.push(file.display().to_string());
            }
        }
    }
    assert!(failed.is_empty(), "panicked on {failed:#?}");
    assert!(ran >= chorus_fuzz::TARGETS.len());
}

/// Every directory under fuzz/corpus and fuzz/regressions is a target's, and every
/// target has a fuzz target file: none is forgotten by the replay.
#[test]
fn every_directory_is_a_target() {
    let names: Vec<&str> = chorus_fuzz::TARGETS.iter().map(|(n, _)| *n).collect();
    for kind in ["corpus", "regressions"] {
        let Ok(entries) = std::fs::read_dir(fuzz_dir().join(kind)) else {
            continue;
        };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            assert!(
                names.contains(&name.as_str()),
                "fuzz/{kind}/{name} is no target"
            );
        }
    }
    for name in names {
        let target = fuzz_dir().join("fuzz_targets").join(format!("{name}.rs"));
        assert!(target.is_file(), "{} exists", target.display());
    }
}
