//! The `gspc-codegen` binary: exit codes (0 success, 2 bad input, 1 anything else),
//! messages on stderr, and what `generate`, `check` and `plan` print and write.
//!
//! Every command runs in the crate directory, so spec paths such as
//! `tests/bad-specs/groups.json` appear in messages exactly as written here.

mod common;

use std::path::Path;
use std::process::Stdio;

use assert_cmd::assert::Assert;
use assert_cmd::cargo::CommandCargoExt;
use common::{TempDir, crate_dir, gspc};
use predicates::prelude::*;
use std::time::{Duration, SystemTime};

const GOOD: &str = "../layer-specs/resnet34_g8.json";
const X86_64: &str = "x86_64-unknown-linux-gnu";
const AARCH64: &str = "aarch64-unknown-linux-gnu";
const THUMBV7EM: &str = "thumbv7em-none-eabihf";

/// What a run printed on stdout.
fn stdout(r: &Assert) -> &str {
    std::str::from_utf8(&r.get_output().stdout).expect("UTF-8 stdout")
}

/// What a run printed on stderr.
fn stderr(r: &Assert) -> &str {
    std::str::from_utf8(&r.get_output().stderr).expect("UTF-8 stderr")
}

/// The layer names of a spec, through the library (the binary must agree with it).
fn layer_names(spec: &str) -> Vec<String> {
    let text = std::fs::read_to_string(crate_dir().join(spec)).expect("read the spec");
    gspc_codegen::spec::parse(spec, &text)
        .expect("a valid spec")
        .layers
        .into_iter()
        .map(|l| l.name)
        .collect()
}

/// stderr as the binary prints `lines`: one per problem, then a count when there are
/// several.
fn problems(lines: &[&str]) -> String {
    let mut s = lines.join("\n");
    s.push('\n');
    if lines.len() > 1 {
        s.push_str(&format!("gspc-codegen: {} problems\n", lines.len()));
    }
    s
}

// ---------------------------------------------------------------------------------------
// check

#[test]
fn check_accepts_a_good_spec() {
    gspc(&["check", GOOD])
        .code(0)
        .stdout(format!("{GOOD}: ok, model resnet34_g8 with 7 layer(s)\n"))
        .stderr("");
}

#[test]
fn check_accepts_several_good_specs() {
    let other = "../layer-specs/mobilenet_v1_dw.json";
    let n = layer_names(other).len();
    gspc(&["check", GOOD, other]).code(0).stdout(format!(
        "{GOOD}: ok, model resnet34_g8 with 7 layer(s)\n{other}: ok, model mobilenet_v1_dw with {n} layer(s)\n"
    ));
}

/// Every file in `tests/bad-specs/` and the exact messages `check` prints for it.
const BAD_SPECS: &[(&str, &[&str])] = &[
    (
        "tests/bad-specs/malformed.json",
        &["tests/bad-specs/malformed.json:2:13: malformed JSON: expected value"],
    ),
    (
        "tests/bad-specs/groups.json",
        &[
            "tests/bad-specs/groups.json: layers[0].groups: 3 does not divide in_channels = 64",
            "tests/bad-specs/groups.json: layers[0].groups: 3 does not divide out_channels = 64",
        ],
    ),
    (
        "tests/bad-specs/unknown_field.json",
        &[
            "tests/bad-specs/unknown_field.json: layers[0].strides: unknown field (did you mean \"stride\"?)",
        ],
    ),
    (
        "tests/bad-specs/missing_field.json",
        &["tests/bad-specs/missing_field.json: layers[0]: missing field \"stride\""],
    ),
    (
        "tests/bad-specs/hostile_name.json",
        &[
            "tests/bad-specs/hostile_name.json: layers[0].name: \"x; } fn evil() { }\" is not a Rust identifier (ASCII letters, digits and '_', not starting with a digit)",
        ],
    ),
    (
        "tests/bad-specs/path_model.json",
        &[
            "tests/bad-specs/path_model.json: model: \"../escape\" is not a Rust identifier (ASCII letters, digits and '_', not starting with a digit)",
        ],
    ),
    (
        "tests/bad-specs/absurd_size.json",
        &[
            "tests/bad-specs/absurd_size.json: layers[0].in_channels: 1000000 is above the limit of 65536 for channels",
            "tests/bad-specs/absurd_size.json: layers[0].input[0]: 100000 is above the limit of 8192 for the input size",
        ],
    ),
    (
        // The third message blames `padding`, which is [0, 0]: see
        // a_too_large_input_is_not_blamed_on_zero_padding.
        "tests/bad-specs/huge_buffer.json",
        &[
            "tests/bad-specs/huge_buffer.json: layers[0].input: in_channels * H * W = 4398046511104 elements is more than the limit of 268435456 (1 GiB of f32) per buffer",
            "tests/bad-specs/huge_buffer.json: layers[0].out_channels: out_channels * OH * OW = 536870912 elements is more than the limit of 268435456 (1 GiB of f32) per buffer",
        ],
    ),
    (
        "tests/bad-specs/many_problems.json",
        &[
            "tests/bad-specs/many_problems.json: extra: unknown field (known fields: model, layers)",
            "tests/bad-specs/many_problems.json: model: \"fn\" is a Rust keyword and cannot name a module",
            "tests/bad-specs/many_problems.json: layers[0].groups: 3 does not divide in_channels = 64",
            "tests/bad-specs/many_problems.json: layers[0].groups: 3 does not divide out_channels = 64",
            "tests/bad-specs/many_problems.json: layers[1].kernel[0]: 16 is above the limit of 15 for the kernel size",
            "tests/bad-specs/many_problems.json: layers[1].stride[1]: 0 is below the minimum of 1 for the stride",
            "tests/bad-specs/many_problems.json: layers[1].activation: \"gelu\" is not one of \"none\", \"relu\", \"relu6\"",
            "tests/bad-specs/many_problems.json: layers[2]: missing field \"stride\"",
        ],
    ),
    (
        "tests/bad-specs/int8.json",
        &[
            "tests/bad-specs/int8.json: layers[0].quantization.input_scale: -0.1 is not above 0; scales are positive",
            "tests/bad-specs/int8.json: layers[0].quantization.input_zero_point: 200 is outside the int8 range [-128, 127] of a zero point",
            "tests/bad-specs/int8.json: layers[0].quantization.weight_scales: 2 weight scales for out_channels = 8; give one per output channel, or one number for all",
            "tests/bad-specs/int8.json: layers[1].quantization.weight_scales: output channel 0: the multiplier input_scale * weight_scale / output_scale = 1.0000e-11 needs a shift outside [-31, 30] (it must be in about [2^-32, 2^30)) for \"fixed\" requantization (8 of the 8 channels are out of range)",
            "tests/bad-specs/int8.json: layers[2]: missing field \"quantization\" (an int8 layer needs its scales and zero points)",
            "tests/bad-specs/int8.json: layers[3].quantization: quantization parameters are for \"dtype\": \"int8\" layers; this one is f32",
        ],
    ),
];

#[test]
fn check_lists_every_problem_of_each_bad_spec() {
    for (file, lines) in BAD_SPECS {
        gspc(&["check", file])
            .append_context("spec", *file)
            .code(2)
            .stdout("")
            .stderr(problems(lines));
    }
}

#[test]
fn every_file_in_bad_specs_is_listed_and_refused() {
    let dir = crate_dir().join("tests/bad-specs");
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .expect("tests/bad-specs exists")
        .map(|e| {
            let name = e.expect("a directory entry").file_name();
            format!("tests/bad-specs/{}", name.to_string_lossy())
        })
        .collect();
    files.sort();
    let mut listed: Vec<String> = BAD_SPECS.iter().map(|(f, _)| f.to_string()).collect();
    listed.sort();
    assert_eq!(
        files, listed,
        "every bad spec needs its expected messages in BAD_SPECS"
    );
}

#[test]
fn check_lists_the_problems_of_every_file_together() {
    gspc(&[
        "check",
        "tests/bad-specs/groups.json",
        GOOD,
        "tests/bad-specs/malformed.json",
        "tests/bad-specs/missing_field.json",
    ])
    .code(2)
    .stderr(problems(&[
        "tests/bad-specs/groups.json: layers[0].groups: 3 does not divide in_channels = 64",
        "tests/bad-specs/groups.json: layers[0].groups: 3 does not divide out_channels = 64",
        "tests/bad-specs/malformed.json:2:13: malformed JSON: expected value",
        "tests/bad-specs/missing_field.json: layers[0]: missing field \"stride\"",
    ]));
}

#[test]
fn a_missing_spec_file_is_bad_input() {
    for cmd in ["check", "plan"] {
        let r = gspc(&[cmd, "tests/no-such-spec.json"])
            .append_context("command", cmd)
            .code(2);
        assert!(
            stderr(&r).starts_with("tests/no-such-spec.json: cannot read the spec: "),
            "{cmd}: {r}"
        );
        assert_eq!(stderr(&r).lines().count(), 1, "{cmd}: {r}");
    }
    let out = TempDir::new("missing");
    gspc(&[
        "generate",
        "tests/no-such-spec.json",
        "--out",
        &out.arg("o"),
    ])
    .code(2)
    .stderr(predicate::str::starts_with(
        "tests/no-such-spec.json: cannot read the spec: ",
    ));
    assert!(!out.path("o").exists(), "nothing is written on an error");

    // A missing file among bad ones: still bad input, every problem listed.
    let r = gspc(&[
        "check",
        "tests/no-such-spec.json",
        "tests/bad-specs/groups.json",
    ])
    .code(2);
    assert_eq!(stderr(&r).lines().count(), 4, "{r}");
    assert!(stderr(&r).ends_with("gspc-codegen: 3 problems\n"), "{r}");
}

#[test]
fn a_directory_given_as_spec_is_bad_input() {
    let dir = TempDir::new("dir-spec");
    gspc(&["check", &dir.0.path().display().to_string()])
        .code(2)
        .stderr(predicate::str::starts_with(format!(
            "{}: cannot read the spec: ",
            dir.0.path().display()
        )));
}

// ---------------------------------------------------------------------------------------
// generate

#[test]
fn generate_writes_the_model_file_and_one_line_per_layer() {
    let out = TempDir::new("generate");
    let dir = out.arg("kernels");
    let r = gspc(&["generate", GOOD, "--out", &dir, "--target", X86_64])
        .code(0)
        .stderr("");

    let file = out.path("kernels/resnet34_g8.rs");
    let code = std::fs::read_to_string(&file).expect("generate wrote <model>.rs");
    assert!(
        code.starts_with(&format!(
            "// @generated by gspc-codegen {} from {GOOD} -- do not edit.\n",
            gspc_codegen::VERSION
        )),
        "{}",
        code.lines().next().unwrap_or("")
    );

    let names = layer_names(GOOD);
    let lines: Vec<&str> = stdout(&r).lines().collect();
    assert_eq!(lines.len(), names.len() + 1, "{r}");
    for (line, name) in lines.iter().zip(&names) {
        // `resnet34_g8::s1_c64_56  gspc-oc  28.9 MFLOP  portable 8x1 r4 | ...  3240 lines`
        assert!(
            line.starts_with(&format!("resnet34_g8::{name}  ")),
            "{line:?}"
        );
        assert!(line.contains(" MFLOP  "), "{line:?}");
        assert!(line.contains("portable "), "{line:?}");
        assert!(
            line.contains(" | avx2 ") && line.contains(" | avx512 "),
            "{line:?}"
        );
        assert!(line.ends_with(" lines"), "{line:?}");
    }
    assert_eq!(
        lines[names.len()],
        format!("wrote {}", file.display()),
        "{r}"
    );
}

#[test]
fn generating_twice_leaves_the_file_untouched() {
    let out = TempDir::new("twice");
    let dir = out.arg("o");
    let args = ["generate", GOOD, "--out", &dir, "--target", X86_64];
    let r = gspc(&args).code(0);
    let file = out.path("o/resnet34_g8.rs");
    let before = std::fs::read(&file).expect("written");

    // Back-date the file: a rewrite, however fast, would give it a new modification time.
    let old = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000);
    std::fs::File::options()
        .write(true)
        .open(&file)
        .and_then(|f| f.set_modified(old))
        .expect("set the modification time");

    // The same lines both times.
    gspc(&args).code(0).stdout(stdout(&r).to_string());
    let meta = std::fs::metadata(&file).expect("still there");
    assert_eq!(
        meta.modified().expect("mtime"),
        old,
        "the second run rewrote an unchanged file"
    );
    assert_eq!(std::fs::read(&file).expect("still there"), before);
}

#[test]
fn generate_rewrites_a_stale_file() {
    let out = TempDir::new("stale");
    let dir = out.arg("o");
    let args = ["generate", GOOD, "--out", &dir, "--target", X86_64];
    gspc(&args).code(0);
    let file = out.path("o/resnet34_g8.rs");
    let fresh = std::fs::read(&file).expect("written");
    std::fs::write(&file, "// stale\n").expect("overwrite");
    gspc(&args).code(0);
    assert_eq!(std::fs::read(&file).expect("rewritten"), fresh);
}

#[test]
fn generate_for_aarch64_emits_neon_and_no_x86_code() {
    let out = TempDir::new("aarch64");
    let r = gspc(&[
        "generate",
        GOOD,
        "--out",
        &out.arg("o"),
        "--target",
        AARCH64,
    ])
    .code(0);
    let code = std::fs::read_to_string(out.path("o/resnet34_g8.rs")).expect("written");
    assert!(code.contains("pub mod neon"));
    assert!(code.contains("pub mod portable"));
    assert!(!code.contains("avx2"), "aarch64 code mentions avx2");
    assert!(!code.contains("avx512"), "aarch64 code mentions avx512");
    assert!(
        code.contains(&format!(
            "\n// Target: {AARCH64}; variants: portable,neon.\n"
        )),
        "{}",
        code.lines().take(3).collect::<Vec<_>>().join("\n")
    );
    for line in stdout(&r).lines().filter(|l| !l.starts_with("wrote ")) {
        assert!(
            line.contains("portable ") && line.contains(" | neon ") && !line.contains("avx"),
            "{line:?}"
        );
    }
}

#[test]
fn generate_for_thumbv7em_emits_only_portable_code() {
    let out = TempDir::new("thumb");
    let r = gspc(&[
        "generate",
        GOOD,
        "--out",
        &out.arg("o"),
        "--target",
        THUMBV7EM,
    ])
    .code(0);
    let code = std::fs::read_to_string(out.path("o/resnet34_g8.rs")).expect("written");
    assert!(code.contains("pub mod portable"));
    for absent in [
        "pub mod neon",
        "pub mod avx2",
        "pub mod avx512",
        "Isa::Neon",
        "Isa::Avx2",
        "Isa::Avx512",
        "target_feature",
        "unsafe",
    ] {
        assert!(!code.contains(absent), "thumbv7em code has `{absent}`");
    }
    assert!(
        code.contains(&format!("\n// Target: {THUMBV7EM}; variants: portable.\n")),
        "{}",
        code.lines().take(3).collect::<Vec<_>>().join("\n")
    );
    for line in stdout(&r).lines().filter(|l| !l.starts_with("wrote ")) {
        assert!(
            line.contains("  portable ") && !line.contains(" | "),
            "{line:?}"
        );
    }
}

/// Runs the header's `Regenerate:` line of `code` with bash, as a user would paste it, in
/// the crate directory with `<DIR>` replaced by `dir`; returns the code it writes.
fn regenerate(code: &str, dir: &Path, model: &str) -> String {
    let line = code
        .lines()
        .find_map(|l| l.strip_prefix("// Regenerate: gspc-codegen "))
        .expect("a Regenerate line in the header");
    let dir_word = format!("'{}'", dir.display().to_string().replace('\'', r"'\''"));
    let script = format!(
        "exec \"$GSPC_CODEGEN\" {}",
        line.replace("<DIR>", &dir_word)
    );
    assert_cmd::Command::new("bash")
        .args(["-c", &script])
        .env("GSPC_CODEGEN", assert_cmd::cargo::cargo_bin("gspc-codegen"))
        .current_dir(crate_dir())
        .assert()
        .append_context("regenerate", format!("gspc-codegen {line}"))
        .success();
    std::fs::read_to_string(dir.join(format!("{model}.rs"))).expect("written")
}

#[test]
fn the_regenerate_line_of_the_header_reproduces_the_file() {
    // The header's `Regenerate:` command, run as written, gives back the same bytes; and
    // the library's generate_str gives the same code as the binary.
    let spec = "tests/specs/tiny.json";
    let out = TempDir::new("regenerate");
    gspc(&["generate", spec, "--out", &out.arg("a"), "--target", X86_64]).code(0);
    let first = std::fs::read_to_string(out.path("a/tiny.rs")).expect("written");
    let second = regenerate(&first, &out.path("b"), "tiny");
    assert!(first == second, "the Regenerate line gives other code");

    let text = std::fs::read_to_string(crate_dir().join(spec)).expect("read");
    let target = gspc_codegen::Target::from_triple(X86_64).expect("known");
    let lib = gspc_codegen::generate_str(spec, &text, &gspc_codegen::Options::for_target(target))
        .expect("generates");
    assert!(lib.code == first, "the binary and generate_str differ");
}

#[test]
fn int8_twins_are_generated_beside_the_spec_and_their_regenerate_line_names_the_flag() {
    // `--int8-twins` also writes <model>_int8.rs (the same layers in int8); its header's
    // command, run as written, gives back the same bytes.
    let out = TempDir::new("twins");
    gspc(&[
        "generate",
        TINY,
        "--out",
        &out.arg("a"),
        "--target",
        X86_64,
        "--int8-twins",
    ])
    .code(0)
    .stdout(predicates::str::contains("tiny_int8::"));
    assert!(out.path("a/tiny.rs").exists(), "the spec's own file");
    let first = std::fs::read_to_string(out.path("a/tiny_int8.rs")).expect("the twin");
    assert!(first.contains("int8 layer"), "the twin's layers are int8");
    let header = first.lines().nth(2).expect("three header lines");
    assert!(header.ends_with(" --int8-twins"), "{header}");
    let second = regenerate(&first, &out.path("b"), "tiny_int8");
    assert!(first == second, "the Regenerate line gives another twin");
}

#[test]
fn the_regenerate_line_quotes_paths_and_keeps_weights_and_options() {
    // A spec and weights under a directory whose name a shell would split or unquote, with
    // the weights baked and tiles outlined: the line still reproduces the file.
    for name in ["with space", "it's $HOME; `x`", "tab\there"] {
        let dir = TempDir::new("regen-quoted");
        let sub = dir.path(name);
        std::fs::create_dir_all(&sub).expect("mkdir");
        let spec = sub.join("tiny.json");
        std::fs::copy(crate_dir().join(TINY), &spec).expect("copy the spec");
        let w = sub.join("tiny.safetensors");
        std::fs::write(&w, tiny_weights(|_| {})).expect("write");
        gspc(&[
            "generate".as_ref(),
            spec.as_os_str(),
            "--weights".as_ref(),
            w.as_os_str(),
            "--out".as_ref(),
            dir.path("a").as_os_str(),
            "--target".as_ref(),
            X86_64.as_ref(),
            "--outline-tiles".as_ref(),
        ])
        .append_context("directory", format!("{name:?}"))
        .code(0);
        let first = std::fs::read_to_string(dir.path("a/tiny.rs")).expect("written");
        let header = first.lines().nth(2).expect("three header lines");
        assert!(
            header.contains(" --weights ") && header.ends_with(" --outline-tiles"),
            "{header}"
        );
        syn::parse_file(&first).expect("the header stays a comment");
        let second = regenerate(&first, &dir.path("b"), "tiny");
        assert!(
            first == second,
            "{name:?}: the Regenerate line gives other code"
        );
        let bin = |d: &str| std::fs::read(dir.path(d).join("tiny.weights.bin")).expect("read");
        assert_eq!(bin("a"), bin("b"), "{name:?}: other weights");
    }
}

#[test]
fn an_isa_the_target_cannot_run_is_refused() {
    let out = TempDir::new("isa");
    gspc(&[
        "generate",
        GOOD,
        "--out",
        &out.arg("o"),
        "--target",
        AARCH64,
        "--isa",
        "avx2",
    ])
    .code(2)
    .stderr(
        "--isa: avx2 does not run on target aarch64-unknown-linux-gnu (its variants: portable, neon)\n",
    )
    .stdout("");
    assert!(!out.path("o").exists(), "nothing is written on an error");

    gspc(&[
        "plan",
        GOOD,
        "--target",
        THUMBV7EM,
        "--isa",
        "portable,neon",
    ])
    .code(2)
    .stderr(predicate::str::starts_with(
        "--isa: neon does not run on target thumbv7em-none-eabihf",
    ));
}

#[test]
fn an_unknown_isa_is_refused() {
    for list in ["bogus", "avx2,", ""] {
        gspc(&["plan", GOOD, "--target", X86_64, "--isa", list])
            .append_context("--isa", format!("{list:?}"))
            .code(2)
            .stderr(
                predicate::str::starts_with("--isa: ").and(predicate::str::contains(
                    "is not one of portable, avx2, avx512, neon",
                )),
            );
    }
}

#[test]
fn a_bogus_target_is_refused() {
    let out = TempDir::new("target");
    gspc(&[
        "generate",
        GOOD,
        "--out",
        &out.arg("o"),
        "--target",
        "nonsense",
    ])
    .code(2)
    .stderr(
        "--target: \"nonsense\" is not a target triple (e.g. x86_64-unknown-linux-gnu, aarch64-unknown-linux-gnu, thumbv7em-none-eabihf)\n",
    );
    assert!(!out.path("o").exists(), "nothing is written on an error");
    gspc(&["plan", GOOD, "--target", "nonsense"])
        .code(2)
        .stderr(predicate::str::starts_with("--target: \"nonsense\""));
}

#[test]
fn generate_refuses_bad_specs_and_writes_nothing() {
    for (file, lines) in BAD_SPECS {
        let out = TempDir::new("bad");
        gspc(&["generate", file, "--out", &out.arg("o"), "--target", X86_64])
            .append_context("spec", *file)
            .code(2)
            .stdout("")
            .stderr(problems(lines));
        assert!(
            !out.path("o").exists(),
            "{file}: an output directory was made"
        );
    }
    // The hostile model name never became a path.
    assert!(!crate_dir().join("tests/escape.rs").exists());
}

#[test]
fn two_specs_with_the_same_model_name_are_refused() {
    let dir = TempDir::new("same-model");
    let good = std::fs::read(crate_dir().join(GOOD)).expect("read");
    let (a, b) = (dir.arg("a.json"), dir.arg("b.json"));
    std::fs::write(&a, &good).expect("write");
    std::fs::write(&b, &good).expect("write");
    gspc(&["generate", &a, &b, "--out", &dir.arg("o")])
        .code(2)
        .stderr(format!(
            "{b}: model: \"resnet34_g8\" is also the model name in {a}; model names must be unique in one build\n"
        ));
    assert!(!dir.path("o").exists(), "nothing is written on an error");
}

#[test]
fn check_refuses_two_specs_with_the_same_model_name() {
    let dir = TempDir::new("same-model-check");
    let good = std::fs::read(crate_dir().join(GOOD)).expect("read");
    let (a, b) = (dir.arg("a.json"), dir.arg("b.json"));
    std::fs::write(&a, &good).expect("write");
    std::fs::write(&b, &good).expect("write");
    gspc(&["check", &a, &b])
        .code(2)
        .stderr(predicate::str::contains(a.as_str()).and(predicate::str::contains(b.as_str())));
}

#[test]
fn a_too_large_input_is_not_blamed_on_zero_padding() {
    gspc(&["check", "tests/bad-specs/huge_buffer.json"])
        .code(2)
        .stderr(
            predicate::str::contains(": layers[0].input: ")
                .and(predicate::str::contains(": layers[0].padding: ").not()),
        );
}

#[test]
fn an_output_path_that_is_a_file_is_an_error_other_than_bad_input() {
    let dir = TempDir::new("out-file");
    let out = dir.arg("not-a-dir");
    std::fs::write(&out, "x").expect("write");
    gspc(&["generate", GOOD, "--out", &out, "--target", X86_64])
        .code(1)
        .stderr(predicate::str::starts_with(format!(
            "{out}: cannot create the output directory: "
        )));
}

// ---------------------------------------------------------------------------------------
// plan

#[test]
fn plan_prints_a_table_per_model() {
    let r = gspc(&["plan", GOOD, "--target", X86_64]).code(0).stderr("");
    let lines: Vec<&str> = stdout(&r).lines().collect();
    assert_eq!(
        lines[0],
        format!("model resnet34_g8 (resnet34_g8.rs), target {X86_64}")
    );
    let header: Vec<&str> = lines[1]
        .split("  ")
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    for column in [
        "layer",
        "strategy",
        "by",
        "oc_bn",
        "MFLOP",
        "packed B",
        "scratch B",
        "lines",
    ] {
        assert!(
            lines[1].contains(column),
            "no column {column:?} in {:?}",
            lines[1]
        );
    }
    assert!(header.len() >= 6, "{header:?}");

    // The rows agree with the library's plan for the same target.
    let text = std::fs::read_to_string(crate_dir().join(GOOD)).expect("read");
    let target = gspc_codegen::Target::from_triple(X86_64).expect("known");
    let g = gspc_codegen::generate_str(GOOD, &text, &gspc_codegen::Options::for_target(target))
        .expect("generates");
    assert_eq!(lines.len(), 2 + g.plans.len() + 8, "{r}");
    for (i, (p, n)) in g.plans.iter().zip(&g.layer_lines).enumerate() {
        let row: Vec<&str> = lines[2 + i].split_whitespace().collect();
        assert_eq!(row[0], p.layer.name, "{:?}", lines[2 + i]);
        assert_eq!(row[1], p.strategy.as_str(), "{:?}", lines[2 + i]);
        assert_eq!(row[2], p.chosen.as_str(), "by: {:?}", lines[2 + i]);
        assert_eq!(row[3], p.oc_bn.to_string(), "oc_bn: {:?}", lines[2 + i]);
        assert_eq!(
            row[4],
            format!("{:.3}", p.layer.flops() as f64 / 1e6),
            "MFLOP: {:?}",
            lines[2 + i]
        );
        assert_eq!(
            row[5],
            (p.packed_len * 4).to_string(),
            "packed B: {:?}",
            lines[2 + i]
        );
        assert_eq!(
            row[6],
            (p.scratch_len * 4).to_string(),
            "scratch B: {:?}",
            lines[2 + i]
        );
        assert_eq!(row[7], n.to_string(), "lines: {:?}", lines[2 + i]);
        for isa in ["portable", "avx2", "avx512"] {
            assert!(row[8..].contains(&isa), "{isa}: {:?}", lines[2 + i]);
        }
    }
    let total = lines[2 + g.plans.len()];
    assert!(total.starts_with("total: "), "{total:?}");
    for part in [" MFLOP per inference (weighted by count), ", " lines"] {
        assert!(total.contains(part), "{part:?} in {total:?}");
    }
    // The memory plan, in bytes, from the same numbers as the generated constants.
    let memory = &lines[3 + g.plans.len()..];
    assert_eq!(memory[0], "memory plan (bytes):");
    let value = |row: &str, label: &str| -> usize {
        let rest = row
            .trim_start()
            .strip_prefix(label)
            .unwrap_or_else(|| panic!("{label:?} in {row:?}"));
        rest.split_whitespace().next().unwrap().parse().unwrap()
    };
    let max = |f: &dyn Fn(&gspc_codegen::LayerPlan) -> usize| g.plans.iter().map(f).max().unwrap();
    let packed: usize = g.plans.iter().map(|p| p.packed_len * 4).sum();
    assert_eq!(value(memory[1], "packed weights"), packed);
    assert_eq!(
        value(memory[2], "largest layer"),
        max(&|p| 4 * (p.layer.input_len() + p.layer.output_len() + p.scratch_len))
    );
    assert_eq!(
        value(memory[3], "one buffer each"),
        max(&|p| 4 * p.layer.input_len())
            + max(&|p| 4 * p.layer.output_len())
            + max(&|p| 4 * p.scratch_len)
    );
    assert_eq!(
        value(memory[4], "layer chain"),
        2 * max(&|p| 4 * p.layer.input_len().max(p.layer.output_len()))
            + max(&|p| 4 * p.scratch_len)
    );
    assert_eq!(value(memory[5], "generated source"), g.code.len());
    assert_eq!(memory[6], "", "a blank line ends each model");
}

#[test]
fn plan_reports_bad_specs_like_check() {
    gspc(&["plan", "tests/bad-specs/groups.json", "--target", X86_64])
        .code(2)
        .stdout("")
        .stderr(problems(BAD_SPECS[1].1));
}

#[test]
fn a_closed_stdout_does_not_panic() {
    let mut child = std::process::Command::cargo_bin("gspc-codegen")
        .expect("the gspc-codegen binary")
        .current_dir(crate_dir())
        .args(["plan", GOOD, "--target", X86_64])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("runs");
    // Close the reading end before the plan is printed, as `| head -1` does.
    drop(child.stdout.take());
    let out = child.wait_with_output().expect("waits");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_ne!(out.status.code(), Some(101), "{stderr}");
}

// ---------------------------------------------------------------------------------------
// help and usage

#[test]
fn help_of_each_subcommand_names_its_arguments() {
    let cases: [(&str, &[&str]); 3] = [
        (
            "generate",
            &[
                "Usage: gspc-codegen generate",
                "<SPEC>...",
                "--out <DIR>",
                "--target <TRIPLE>",
                "--isa <LIST>",
            ],
        ),
        ("check", &["Usage: gspc-codegen check", "<SPEC>..."]),
        (
            "plan",
            &[
                "Usage: gspc-codegen plan",
                "<SPEC>...",
                "--target <TRIPLE>",
                "--isa <LIST>",
            ],
        ),
    ];
    for (cmd, wanted) in cases {
        for help in [vec![cmd, "--help"], vec!["help", cmd]] {
            let r = gspc(&help)
                .append_context("args", format!("{help:?}"))
                .code(0);
            for w in wanted {
                assert!(stdout(&r).contains(w), "{help:?}: no {w:?} in {r}");
            }
        }
    }
    let r = gspc(&["--help"]).code(0);
    for cmd in ["generate", "check", "plan"] {
        assert!(stdout(&r).contains(&format!("  {cmd} ")), "{cmd}: {r}");
    }
    for code in [
        "Exit codes:",
        "  0  success",
        "  1  an output file",
        "  2  bad input",
    ] {
        assert!(stdout(&r).contains(code), "{code}: {r}");
    }
    gspc(&["--version"])
        .code(0)
        .stdout(format!("gspc-codegen {}\n", gspc_codegen::VERSION));
}

#[test]
fn usage_errors_are_bad_input() {
    for args in [
        vec![],
        vec!["check"],
        vec!["generate", GOOD],
        vec!["frobnicate"],
        vec!["check", GOOD, "--bogus"],
    ] {
        gspc(&args)
            .append_context("args", format!("{args:?}"))
            .code(2)
            .stdout("")
            .stderr(predicate::str::contains("Usage: gspc-codegen"));
    }
}

// ---------------------------------------------------------------------------------------
// generate --weights

const TINY: &str = "tests/specs/tiny.json";

/// Weights for tiny.json: `plain` 4x2x3x3, `biased` 4x2x3x3 + bias 4; `edit` changes them.
fn tiny_weights(edit: impl FnOnce(&mut Vec<(String, Vec<usize>, Vec<f32>)>)) -> Vec<u8> {
    let mut t = vec![
        (
            "plain.weight".to_string(),
            vec![4, 2, 3, 3],
            vec![0.5f32; 72],
        ),
        (
            "biased.weight".to_string(),
            vec![4, 2, 3, 3],
            vec![-1.0f32; 72],
        ),
        (
            "biased.bias".to_string(),
            vec![4],
            vec![1.0f32, 2.0, 3.0, 4.0],
        ),
    ];
    edit(&mut t);
    gspc_codegen::weights::to_safetensors(&t).expect("serializes")
}

#[test]
fn generate_with_weights_bakes_them() {
    let dir = TempDir::new("baked");
    let w = dir.path("tiny.safetensors");
    std::fs::write(&w, tiny_weights(|_| {})).expect("write");
    let out = dir.arg("out");
    let r = gspc(&[
        "generate",
        TINY,
        "--weights",
        &w.display().to_string(),
        "--out",
        &out,
        "--target",
        X86_64,
    ])
    .code(0);
    let bin = dir.path("out/tiny.weights.bin");
    let bytes = std::fs::read(&bin).expect("the weights file is written");
    assert!(
        stdout(&r).ends_with(&format!(
            "wrote {} ({} bytes of packed weights)\n",
            bin.display(),
            bytes.len()
        )),
        "{r}"
    );
    // Each layer's part is 64-byte aligned: plain (72 weights + 4 bias) at 0, biased at 320.
    assert_eq!(bytes.len(), 640);
    let f = |i: usize| f32::from_le_bytes(bytes[4 * i..4 * i + 4].try_into().unwrap());
    assert_eq!(f(0), 0.5);
    assert_eq!(f(72), 0.0, "plain has no bias");
    assert_eq!(f(80), -1.0);
    assert_eq!((f(80 + 72), f(80 + 75)), (1.0, 4.0), "biased's bias");
    let code = std::fs::read_to_string(dir.path("out/tiny.rs")).expect("read");
    assert!(code.contains("include_bytes!(\"tiny.weights.bin\")"));
    let dense: String = code.split_whitespace().collect();
    assert!(dense.contains("f32s::<640,PACKED_LEN,>(&super::WEIGHTS,320)"));
    syn::parse_file(&code).expect("parses");
}

#[test]
fn generate_reports_bad_weights_by_tensor() {
    let dir = TempDir::new("bad-weights");
    let w = dir.path("w.safetensors");
    std::fs::write(
        &w,
        tiny_weights(|t| {
            t[0].1 = vec![4, 4, 3, 3];
            t[0].2 = vec![0.0; 144];
            t.remove(2);
            t.push(("extra.weight".to_string(), vec![1], vec![0.0]));
            t[1].2[5] = f32::NAN;
        }),
    )
    .expect("write");
    let ws = w.display().to_string();
    gspc(&["generate", TINY, "--weights", &ws, "--out", &dir.arg("o")])
        .code(2)
        .stderr(problems(&[
            &format!("{ws}: plain.weight: shape [4, 4, 3, 3], expected [4, 2, 3, 3]"),
            &format!("{ws}: biased.weight: value NaN at flat index 5 is not finite"),
            &format!("{ws}: biased.bias: missing: expected a float32 tensor of shape [4]"),
            &format!(
                "{ws}: extra.weight: matches no layer of model \"tiny\" ({TINY}): tensors are named <layer>.weight and <layer>.bias"
            ),
        ]));
    assert!(!dir.path("o").exists(), "nothing is written on an error");

    // A truncated file, a missing one, and one weights file for two specs.
    let full = tiny_weights(|_| {});
    std::fs::write(&w, &full[..full.len() - 10]).expect("write");
    gspc(&["generate", TINY, "--weights", &ws, "--out", &dir.arg("o")])
        .code(2)
        .stderr(predicate::str::starts_with(format!(
            "{ws}: not a valid safetensors file (truncated or corrupt?): "
        )));
    let missing = dir.arg("missing.safetensors");
    gspc(&[
        "generate",
        TINY,
        "--weights",
        &missing,
        "--out",
        &dir.arg("o"),
    ])
    .code(2)
    .stderr(predicate::str::starts_with(format!(
        "{missing}: cannot read the weights: "
    )));
    gspc(&[
        "generate",
        TINY,
        GOOD,
        "--weights",
        &ws,
        "--out",
        &dir.arg("o"),
    ])
    .code(2)
    .stderr("--weights: 1 weights file(s) for 2 spec(s); give one per spec, in the same order\n");
}

#[test]
fn generate_reads_npy_directories() {
    let dir = TempDir::new("npy");
    let w = dir.path("w");
    std::fs::create_dir_all(&w).expect("mkdir");
    let put = |name: &str, shape: &[usize], n: usize| {
        let data = vec![0.25f32; n];
        std::fs::write(
            w.join(format!("{name}.npy")),
            gspc_codegen::weights::to_npy(shape, &data),
        )
        .expect("write");
    };
    put("plain.weight", &[4, 2, 3, 3], 72);
    put("biased.weight", &[4, 2, 3, 3], 72);
    let ws = w.display().to_string();
    gspc(&["generate", TINY, "--weights", &ws, "--out", &dir.arg("o")])
        .code(2)
        .stderr(format!(
            "{ws}: biased.bias: missing: expected a float32 tensor of shape [4]\n"
        ));
    put("biased.bias", &[4], 4);
    gspc(&["generate", TINY, "--weights", &ws, "--out", &dir.arg("o")]).code(0);
    assert!(dir.path("o/tiny.weights.bin").exists());
}
