//! Error kinds: what the library reports for each kind of failure, with its source, and
//! messages that describe values without naming command-line flags.

use gspc_codegen::weights::{self, LayerWeights, ModelWeights};
use gspc_codegen::{Error, FileOp, Options, Setting, Target, generate_baked, read_specs, spec};
use std::error::Error as _;

const TINY: &str = "tests/specs/tiny.json";

fn tiny() -> spec::Spec {
    read_specs(&[TINY]).expect("tiny.json is valid").remove(0)
}

#[test]
fn an_unreadable_spec_keeps_the_io_error_as_its_source() {
    let e = read_specs(&["tests/specs/missing.json"]).expect_err("no such file");
    let Error::Io { file, op, source } = &e else {
        panic!("not an Io error: {e:?}");
    };
    assert_eq!(file, "tests/specs/missing.json");
    assert_eq!(*op, FileOp::ReadSpec);
    assert!(op.is_input());
    assert_eq!(source.kind(), std::io::ErrorKind::NotFound);
    let inner = e.source().expect("a source");
    assert!(
        inner.downcast_ref::<std::io::Error>().is_some(),
        "{inner:?}"
    );
    assert!(
        e.to_string()
            .starts_with("tests/specs/missing.json: cannot read the spec: "),
        "{e}"
    );
}

#[test]
fn weights_that_do_not_fit_are_a_weights_error_naming_file_and_tensor() {
    let s = tiny();
    let options = Options::for_target(Target::from_triple("x86_64-unknown-linux-gnu").unwrap());
    let short = ModelWeights {
        file: "w.safetensors".to_string(),
        layers: vec![
            LayerWeights {
                weights: vec![0.0; 3],
                bias: None,
            }
            .into(),
        ],
    };
    let e = generate_baked(&s, &short, &options).expect_err("one layer of two");
    assert!(matches!(e, Error::Weights(_)), "{e:?}");
    assert_eq!(
        e.messages(),
        [format!(
            "w.safetensors: weights for 1 layers, but {TINY} has 2 layers"
        )]
    );
    let wrong = ModelWeights {
        file: "w.safetensors".to_string(),
        layers: s
            .layers
            .iter()
            .map(|_| {
                LayerWeights {
                    weights: vec![0.0; 3],
                    bias: None,
                }
                .into()
            })
            .collect(),
    };
    let e = generate_baked(&s, &wrong, &options).expect_err("wrong shape");
    assert!(matches!(e, Error::Weights(_)), "{e:?}");
    assert!(
        e.to_string().starts_with("w.safetensors: plain.weight: "),
        "{e}"
    );
    let e = weights::to_safetensors(&[("t".to_string(), vec![2, 2], vec![0.0; 3])])
        .expect_err("3 values for 4");
    assert!(matches!(e, Error::Weights(_)), "{e:?}");
    assert!(e.to_string().starts_with("t: "), "{e}");
}

#[test]
fn setting_errors_name_the_setting_not_a_flag() {
    let e = Target::from_triple("nonsense").expect_err("not a triple");
    assert!(
        matches!(
            e,
            Error::Option {
                setting: Setting::Target,
                ..
            }
        ),
        "{e:?}"
    );
    assert!(
        e.to_string().starts_with("target: \"nonsense\" is not"),
        "{e}"
    );
    let e = gspc_codegen::target::parse_isa("sse9").expect_err("no such ISA");
    assert_eq!(
        e.to_string(),
        "ISA: \"sse9\" is not one of portable, avx2, avx512, neon"
    );
    let e = read_specs::<&str>(&[]).expect_err("nothing to read");
    assert_eq!(e.to_string(), "spec files: none given");
    // A front-end names settings its own way.
    let named = e.messages_naming(|s| format!("<{s}>"));
    assert_eq!(named, ["<spec files>: none given"]);
}

#[test]
fn several_errors_flatten_in_order() {
    let e = read_specs(&["tests/specs/missing.json", "tests/bad-specs/groups.json"])
        .expect_err("two bad files");
    let kinds: Vec<&str> = e
        .errors()
        .iter()
        .map(|e| match e {
            Error::Io { .. } => "io",
            Error::Invalid(_) => "invalid",
            _ => "other",
        })
        .collect();
    assert_eq!(kinds, ["io", "invalid"]);
    assert_eq!(e.messages().len(), e.to_string().lines().count());
}
