//! Snapshots of the code generated for `tests/specs/tiny.json` on three fixed targets, and
//! checks of the generated code that hold whatever the snapshot says.
//!
//! The emitter changes often: after an intended change, refresh the snapshots with
//!
//! ```text
//! UPDATE_SNAPSHOTS=1 cargo test -p gspc-codegen --test snapshot
//! ```
//!
//! and review the diff of `tests/snapshots/` like any other change.

use gspc_codegen::{Generated, Options, Target, generate_str};
use std::io::Write;
use std::path::{Path, PathBuf};

/// The name the spec is given in messages and in the generated header: fixed, so the
/// snapshot does not depend on where the repository is checked out.
const SPEC_NAME: &str = "tests/specs/tiny.json";

const X86_64: &str = "x86_64-unknown-linux-gnu";
const AARCH64: &str = "aarch64-unknown-linux-gnu";
const THUMBV7EM: &str = "thumbv7em-none-eabihf";

fn crate_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn generate(triple: &str) -> Generated {
    let path = crate_dir().join(SPEC_NAME);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let target = Target::from_triple(triple).expect("a known triple");
    generate_str(SPEC_NAME, &text, &Options::for_target(target))
        .unwrap_or_else(|e| panic!("{SPEC_NAME} for {triple}:\n{e}"))
}

/// Compares `actual` with the stored snapshot, or rewrites the snapshot when
/// `UPDATE_SNAPSHOTS=1`.
fn check_snapshot(name: &str, actual: &str) {
    let path: PathBuf = crate_dir().join("tests/snapshots").join(name);
    // Not through print!, which the test harness captures: updating should be visible.
    let mut stderr = std::io::stderr();
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some_and(|v| v == "1") {
        let old = std::fs::read_to_string(&path).ok();
        if old.as_deref() == Some(actual) {
            let _ = writeln!(stderr, "snapshot {} is up to date", path.display());
        } else {
            std::fs::create_dir_all(path.parent().expect("has a parent"))
                .expect("create tests/snapshots");
            std::fs::write(&path, actual)
                .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
            let _ = writeln!(
                stderr,
                "UPDATE_SNAPSHOTS=1: rewrote snapshot {}",
                path.display()
            );
        }
        return;
    }
    let expected = match std::fs::read_to_string(&path) {
        // A checkout that turned line endings into CRLF is still the same snapshot.
        Ok(s) => s.replace("\r\n", "\n"),
        Err(e) => panic!(
            "cannot read the snapshot {}: {e}\n\
             create it with: UPDATE_SNAPSHOTS=1 cargo test -p gspc-codegen --test snapshot",
            path.display()
        ),
    };
    if expected == actual {
        return;
    }
    let (exp, act): (Vec<&str>, Vec<&str>) = (expected.lines().collect(), actual.lines().collect());
    let Some(first) = (0..exp.len().max(act.len())).find(|&i| exp.get(i) != act.get(i)) else {
        panic!(
            "the generated code differs from the snapshot {} only in the newline at the end of the file \
             (snapshot ends with a newline: {}, generated: {})\n\
             if the change is intended, run: UPDATE_SNAPSHOTS=1 cargo test -p gspc-codegen --test snapshot",
            path.display(),
            expected.ends_with('\n'),
            actual.ends_with('\n'),
        );
    };
    let show = |l: Option<&&str>| match l {
        Some(s) => format!("{s:?}"),
        None => "(end of file)".to_string(),
    };
    panic!(
        "the generated code differs from the snapshot {} at line {}:\n  \
         snapshot:  {}\n  generated: {}\n\
         ({} lines in the snapshot, {} generated)\n\
         if the change is intended, run: UPDATE_SNAPSHOTS=1 cargo test -p gspc-codegen --test snapshot",
        path.display(),
        first + 1,
        show(exp.get(first)),
        show(act.get(first)),
        exp.len(),
        act.len(),
    );
}

#[test]
fn snapshot_x86_64() {
    check_snapshot("tiny_x86_64.rs", &generate(X86_64).code);
}

#[test]
fn snapshot_aarch64() {
    check_snapshot("tiny_aarch64.rs", &generate(AARCH64).code);
}

#[test]
fn snapshot_thumbv7em() {
    check_snapshot("tiny_thumbv7em.rs", &generate(THUMBV7EM).code);
}

#[test]
fn generation_is_deterministic() {
    for triple in [X86_64, AARCH64, THUMBV7EM] {
        assert!(
            generate(triple).code == generate(triple).code,
            "two runs for {triple} differ"
        );
    }
}

#[test]
fn generated_code_parses() {
    for triple in [X86_64, AARCH64, THUMBV7EM] {
        let g = generate(triple);
        if let Err(e) = syn::parse_file(&g.code) {
            panic!("the code generated for {triple} does not parse: {e}");
        }
    }
}

#[test]
fn header_names_the_generator_spec_and_target() {
    for (triple, isas) in [
        (X86_64, "portable,avx2,avx512"),
        (AARCH64, "portable,neon"),
        (THUMBV7EM, "portable"),
    ] {
        let g = generate(triple);
        let mut lines = g.code.lines();
        assert_eq!(
            lines.next(),
            Some(
                format!(
                    "// @generated by gspc-codegen {} from {SPEC_NAME} -- do not edit.",
                    gspc_codegen::VERSION
                )
                .as_str()
            )
        );
        assert_eq!(
            lines.next(),
            Some(format!("// Target: {triple}; variants: {isas}.").as_str())
        );
        assert_eq!(
            lines.next(),
            Some(
                format!(
                    "// Regenerate: gspc-codegen generate {SPEC_NAME} --out <DIR> --target {triple} --isa {isas}"
                )
                .as_str()
            )
        );
        assert_eq!(g.model, "tiny");
        assert_eq!(g.file_name, "tiny.rs");
        assert_eq!(g.plans.len(), 2);
        assert_eq!(g.layer_lines.len(), 2);
        assert!(g.layer_lines.iter().all(|&n| n > 0), "{:?}", g.layer_lines);
    }
}

/// Whether `code` holds `item` as a whole line, ignoring indentation.
fn has_line_starting(code: &str, item: &str) -> bool {
    code.lines().any(|l| l.trim_start().starts_with(item))
}

#[test]
fn every_api_constant_is_present() {
    for triple in [X86_64, AARCH64, THUMBV7EM] {
        let code = generate(triple).code;
        let model = [
            "pub const NAME: &str",
            "pub const SPEC_FILE: &str",
            "pub const MAX_SCRATCH_LEN: usize",
            "pub const MAX_INPUT_LEN: usize",
            "pub const MAX_OUTPUT_LEN: usize",
            "pub const TOTAL_PACKED_LEN: usize",
            "pub const LAYERS: &[::gspc_runtime::Layer]",
            "pub const MODEL: ::gspc_runtime::Model",
        ];
        for item in model {
            assert!(has_line_starting(&code, item), "{triple}: no `{item}`");
        }
        // Once per layer.
        let layer = [
            "pub const INPUT_LEN: usize",
            "pub const OUTPUT_LEN: usize",
            "pub const WEIGHTS_LEN: usize",
            "pub const PACKED_LEN: usize",
            "pub const SCRATCH_LEN: usize",
            "pub const INFO: ::gspc_runtime::LayerInfo",
            "pub const LAYER: ::gspc_runtime::Layer",
        ];
        for item in layer {
            let n = code
                .lines()
                .filter(|l| l.trim_start().starts_with(item))
                .count();
            assert_eq!(
                n, 2,
                "{triple}: `{item}` appears {n} times, not once per layer"
            );
        }
        for name in ["plain", "biased"] {
            assert!(
                has_line_starting(&code, &format!("pub mod {name} {{")),
                "{triple}: no module for layer {name}"
            );
        }
    }
}

#[test]
fn the_constants_match_the_spec() {
    // plain: 4 -> 4 channels, groups 2, 3x3, stride 1, padding 1, input 4x5 -> output 4x5.
    // biased: the same with stride 2 -> output (4 + 2 - 3) / 2 + 1 = 2 by (5 + 2 - 3) / 2 + 1 = 3.
    let code = generate(X86_64).code;
    for want in [
        "pub const INPUT_LEN: usize = 80;",   // 4 * 4 * 5
        "pub const OUTPUT_LEN: usize = 80;",  // plain: 4 * 4 * 5
        "pub const OUTPUT_LEN: usize = 24;",  // biased: 4 * 2 * 3
        "pub const WEIGHTS_LEN: usize = 72;", // 4 * (4 / 2) * 3 * 3
        "pub const MAX_INPUT_LEN: usize = 80;",
        "pub const MAX_OUTPUT_LEN: usize = 80;",
        "output: [4, 5],",
        "output: [2, 3],",
        "activation: ::gspc_runtime::Activation::Relu,",
        "bias: true,",
    ] {
        assert!(has_line_starting(&code, want), "no `{want}`");
    }
}

#[test]
fn isa_variants_match_the_target() {
    let x86 = generate(X86_64).code;
    assert!(x86.contains("#[target_feature(enable = \"avx2,fma\")]"));
    assert!(x86.contains("pub mod avx2"));
    assert!(x86.contains("pub mod avx512"));
    assert!(x86.contains("pub mod portable"));
    assert!(!x86.contains("pub mod neon"));

    let arm = generate(AARCH64).code;
    assert!(arm.contains("pub mod neon"));
    assert!(arm.contains("pub mod portable"));
    assert!(!arm.contains("avx"), "aarch64 code mentions avx");

    let thumb = generate(THUMBV7EM).code;
    assert!(thumb.contains("pub mod portable"));
    for absent in [
        "pub mod neon",
        "pub mod avx",
        "target_feature",
        "Isa::Neon",
        "Isa::Avx",
    ] {
        assert!(!thumb.contains(absent), "thumbv7em code has `{absent}`");
    }
}

#[test]
fn every_unsafe_block_has_a_safety_comment() {
    for triple in [X86_64, AARCH64, THUMBV7EM] {
        let code = generate(triple).code;
        let lines: Vec<&str> = code.lines().collect();
        let mut blocks = 0;
        for (i, line) in lines.iter().enumerate() {
            let text = line.split("//").next().unwrap_or("");
            if !text
                .split(|c: char| !c.is_alphanumeric() && c != '_')
                .any(|w| w == "unsafe")
            {
                continue;
            }
            // `unsafe fn` / `unsafe impl` are not blocks; anything else with `unsafe`
            // must be a block opened on this line.
            let words: Vec<&str> = text.split_whitespace().collect();
            let at = words.iter().position(|w| *w == "unsafe");
            if let Some(next) = at.and_then(|p| words.get(p + 1))
                && (*next == "fn" || *next == "impl" || *next == "extern")
            {
                continue;
            }
            assert!(
                text.contains("unsafe {"),
                "{triple}: line {}: `unsafe` not followed by a block on the same line: {line:?}",
                i + 1
            );
            blocks += 1;
            // The comment may sit above the block's attributes (`#[allow(unused_unsafe)]`).
            let before = lines[..i]
                .iter()
                .rev()
                .map(|l| l.trim_start())
                .find(|l| !l.starts_with("#["))
                .unwrap_or("");
            assert!(
                before.starts_with("// SAFETY: "),
                "{triple}: line {}: unsafe block without a `// SAFETY:` comment on the line before:\n  {}\n  {}",
                i + 1,
                before,
                line.trim_start()
            );
        }
        if triple == THUMBV7EM {
            assert_eq!(blocks, 0, "portable-only code needs no unsafe");
        }
    }
}

#[test]
fn a_newline_in_the_spec_path_cannot_inject_code() {
    let text = std::fs::read_to_string(crate_dir().join(SPEC_NAME)).expect("read");
    let target = Target::from_triple(X86_64).expect("known");
    let file = "dir\npub fn injected() {}\n/tiny.json";
    let g = generate_str(file, &text, &Options::for_target(target)).expect("generates");
    let injected: Vec<(usize, &str)> = g
        .code
        .lines()
        .enumerate()
        .filter(|(_, l)| l.trim_start().starts_with("pub fn injected"))
        .map(|(i, l)| (i + 1, l))
        .collect();
    assert!(
        injected.is_empty(),
        "the path became code at (line, text) {injected:?}"
    );
    if let Err(e) = syn::parse_file(&g.code) {
        panic!("the generated code does not parse: {e}");
    }
}
