//! ONNX import of int8 models (issue 13) on the fixtures of `tests/fixtures/int8_import/`
//! (made by `scripts/make_int8_import_fixtures.py` with ONNX Runtime's `quantize_static`):
//! the layers, parameters and weights imported; the models refused, by node and rule; and
//! every imported layer, run by the integer reference (`gspc_runtime::quant::conv2d`) on
//! ONNX Runtime's int8 input of that layer, gives ONNX Runtime's int8 output bit for bit in
//! `"fp32"` mode.

mod common;

use common::{Rng, TempDir, all_convs, gspc, layer_info};
use gspc_codegen::import::onnx::{ModelProto, NodeProto, TensorProto};
use gspc_codegen::import::{self, ImportOptions, Imported};
use gspc_codegen::weights::{self, Weights};
use gspc_codegen::{Activation, Dtype, LayerSpec};
use gspc_runtime::quant::{self, ChannelScale, Requantization};
use prost::Message;
use serde_json::Value;
use std::path::PathBuf;

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/int8_import")
}

fn import_with(name: &str, options: &ImportOptions) -> Result<Imported, gspc_codegen::Error> {
    let bytes = std::fs::read(dir().join(format!("{name}.onnx"))).expect("fixture");
    import::import(&format!("{name}.onnx"), &bytes, options)
}

fn import_all(name: &str) -> Imported {
    import_with(name, &all_convs()).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// ONNX Runtime's recorded values: name -> (element type, values).
fn recorded(name: &str) -> serde_json::Map<String, Value> {
    recorded_at(&dir().join(format!("{name}.json")))
}

fn recorded_at(path: &std::path::Path) -> serde_json::Map<String, Value> {
    let text = std::fs::read_to_string(path).expect("recorded values");
    let v: Value = serde_json::from_str(&text).expect("JSON");
    v["values"].as_object().expect("values").clone()
}

/// A recorded value as int8 (uint8 values shifted by -128, as the import converts them).
fn int8_values(values: &serde_json::Map<String, Value>, name: &str) -> Vec<i8> {
    let v = values
        .get(name)
        .unwrap_or_else(|| panic!("no recorded value {name:?}"));
    let shift = match v["dtype"].as_str() {
        Some("int8") => 0,
        Some("uint8") => 128,
        other => panic!("{name}: dtype {other:?}"),
    };
    v["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|x| i8::try_from(x.as_i64().expect("integer") - shift).expect("in range"))
        .collect()
}

/// The reference's output of one imported layer on `input`, in `mode`.
fn run(l: &LayerSpec, w: &Weights, input: &[i8], mode: Requantization) -> Vec<i8> {
    let q = l.quantization.as_ref().expect("an int8 layer");
    let mut params = q.params();
    params.mode = mode;
    let mut channels = vec![ChannelScale::Fp32(0.0); l.out_channels];
    let requant = params
        .derive(l.activation, &mut channels)
        .expect("valid parameters");
    let Weights::Int8(w) = w else {
        panic!("{}: f32 weights", l.name)
    };
    let mut out = vec![0i8; l.output_len()];
    quant::conv2d(
        &layer_info(l),
        &requant,
        input,
        &w.weights,
        w.bias.as_deref(),
        &mut out,
    )
    .expect("lengths");
    out
}

/// (values, values differing, largest difference) of every layer of a fixture against ONNX
/// Runtime, in `mode`.
fn compare(name: &str, mode: Requantization) -> (usize, usize, i32) {
    compare_imported(&import_all(name), &recorded(name), mode, |_| true)
}

/// (values, values differing, largest difference) of the imported layers `keep` takes, each
/// run on ONNX Runtime's int8 input, against ONNX Runtime's int8 output, in `mode`.
fn compare_imported(
    i: &Imported,
    values: &serde_json::Map<String, Value>,
    mode: Requantization,
    keep: impl Fn(&LayerSpec) -> bool,
) -> (usize, usize, i32) {
    let w = weights::from_safetensors("w.safetensors", &i.weights, &i.spec).expect("weights");
    let (mut n, mut differ, mut worst) = (0, 0, 0);
    for ((l, info), lw) in i.spec.layers.iter().zip(&i.layers).zip(&w.layers) {
        if !keep(l) {
            continue;
        }
        let x = int8_values(values, &info.input);
        let want = int8_values(values, &info.output);
        let got = run(l, lw, &x, mode);
        assert_eq!(got.len(), want.len(), "{}", l.name);
        for (g, w) in got.iter().zip(&want) {
            let d = (i32::from(*g) - i32::from(*w)).abs();
            n += 1;
            differ += usize::from(d != 0);
            worst = worst.max(d);
        }
    }
    (n, differ, worst)
}

#[test]
fn quantized_models_import_as_int8_layers() {
    let qdq = import_all("qnet_qdq");
    let names: Vec<&str> = qdq.spec.layers.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(names, ["stem", "dw", "grouped", "dw5", "head"]);
    let shapes: Vec<String> = qdq
        .spec
        .layers
        .iter()
        .map(|l| {
            format!(
                "{}->{} g{} k{:?} s{:?}",
                l.in_channels, l.out_channels, l.groups, l.kernel, l.stride
            )
        })
        .collect();
    assert_eq!(
        shapes,
        [
            "3->12 g1 k[3, 3] s[2, 2]",
            "12->12 g12 k[3, 3] s[1, 1]",
            "12->9 g3 k[3, 3] s[1, 1]",
            "9->9 g9 k[5, 5] s[2, 2]",
            "9->8 g1 k[1, 1] s[1, 1]",
        ]
    );
    for l in &qdq.spec.layers {
        assert_eq!(l.dtype(), Dtype::Int8, "{}", l.name);
        assert!(l.bias, "{}", l.name);
        let q = l.quantization.as_ref().expect("quantized");
        assert_eq!(q.requantization, Requantization::Fp32);
        assert_eq!(q.weight_scales.len(), l.out_channels);
    }
    let zero_points: Vec<(i32, i32)> = qdq
        .spec
        .layers
        .iter()
        .map(|l| {
            let q = l.quantization.as_ref().expect("quantized");
            (q.input_zero_point, q.output_zero_point)
        })
        .collect();
    assert_eq!(
        zero_points,
        [
            (9, -128),
            (-128, -128),
            (-128, -128),
            (-128, -18),
            (-18, 15)
        ]
    );
    // Each layer's output parameters are the next one's input parameters.
    for pair in qdq.spec.layers.windows(2) {
        let (a, b) = (
            pair[0].quantization.as_ref().expect("q"),
            pair[1].quantization.as_ref().expect("q"),
        );
        assert_eq!(
            (a.output_scale, a.output_zero_point),
            (b.input_scale, b.input_zero_point)
        );
    }
    assert_eq!(qdq.layers[0].input, "input_QuantizeLinear_Output");
    assert_eq!(qdq.layers[4].output, "output_QuantizeLinear_Output");
    assert!(
        qdq.notes
            .iter()
            .any(|n| n.contains("5 int8 layer(s), requantization \"fp32\"")),
        "{:?}",
        qdq.notes
    );
    // The QDQ nodes around each Conv are the layer's: the app runs only the model's first
    // QuantizeLinear and last DequantizeLinear.
    assert!(
        qdq.notes.iter().any(|n| n
            == "the app runs the rest of the graph itself: QuantizeLinear x1, DequantizeLinear x1"),
        "{:?}",
        qdq.notes
    );

    // QOperator (QLinearConv), uint8 activations and a float bias: the same parameters
    // (the same calibration); uint8 zero points shifted by -128.
    for name in ["qnet_qop", "qnet_u8", "qnet_fbias"] {
        let other = import_all(name);
        assert_eq!(other.spec.layers.len(), 5, "{name}");
        for (a, b) in qdq.spec.layers.iter().zip(&other.spec.layers) {
            assert_eq!(a.quantization, b.quantization, "{name}: {}", b.name);
            assert_eq!(
                (
                    a.in_channels,
                    a.out_channels,
                    a.groups,
                    a.kernel,
                    a.stride,
                    a.padding
                ),
                (
                    b.in_channels,
                    b.out_channels,
                    b.groups,
                    b.kernel,
                    b.stride,
                    b.padding
                ),
                "{name}"
            );
        }
    }
    let qop = import_all("qnet_qop");
    assert_eq!(qop.spec.layers[1].name, "dw_conv_quant");
    assert_eq!(
        qop.layers[1].source,
        "graph.node[2] \"/dw/Conv_quant\" (QLinearConv)"
    );
    let u8 = import_all("qnet_u8");
    assert!(
        u8.notes.iter().any(|n| n.starts_with(
            "uint8 activations converted to int8 in stem, dw, grouped, dw5, head: x_i8 = x_u8 - 128"
        )),
        "{:?}",
        u8.notes
    );
    // The same int8 weights and int32 biases, whatever the format.
    let w = |i: &Imported| {
        weights::from_safetensors("w.safetensors", &i.weights, &i.spec)
            .expect("weights")
            .layers
    };
    assert_eq!(w(&qdq), w(&qop));
    assert_eq!(w(&qdq), w(&u8));
    let fbias = import_all("qnet_fbias");
    assert!(
        fbias
            .notes
            .iter()
            .any(|n| n.starts_with("float bias quantized to int32 in stem, dw, grouped, dw5, head")),
        "{:?}",
        fbias.notes
    );
    // Quantized by the importer as ONNX Runtime's quantizer does: the same values, or 1 off.
    for (a, b) in w(&qdq).iter().zip(&w(&fbias)) {
        let (Weights::Int8(a), Weights::Int8(b)) = (a, b) else {
            panic!("int8 weights")
        };
        assert_eq!(a.weights, b.weights);
        for (x, y) in a
            .bias
            .as_ref()
            .expect("bias")
            .iter()
            .zip(b.bias.as_ref().expect("bias"))
        {
            assert!((x - y).abs() <= 1, "{x} {y}");
        }
    }
}

#[test]
fn activations_between_the_conv_and_its_quantize_linear_are_fused() {
    let i = import_all("qnet_relu");
    let acts: Vec<Activation> = i.spec.layers.iter().map(|l| l.activation).collect();
    assert_eq!(
        acts,
        [
            Activation::Relu6,
            Activation::Relu,
            Activation::Relu,
            Activation::None,
            Activation::None
        ]
    );
    assert_eq!(
        i.layers[0].fused.as_deref(),
        Some("graph.node[13] \"/Clip\" (Clip)")
    );
}

#[test]
fn the_requantization_mode_is_an_option() {
    let options = ImportOptions {
        all_convs: true,
        requantization: Some(Requantization::Fixed),
        ..Default::default()
    };
    let i = import_with("qnet_qdq", &options).expect("imports");
    for l in &i.spec.layers {
        let q = l.quantization.as_ref().expect("quantized");
        assert_eq!(q.requantization, Requantization::Fixed);
    }
    assert!(i.spec_json.contains("\"requantization\": \"fixed\""));
}

#[test]
fn imported_layers_give_onnx_runtimes_outputs() {
    // fp32 mode is ONNX Runtime's arithmetic: bit-exact on every layer. ORT runs the QDQ
    // models as QLinearConv.
    for name in ["qnet_qdq", "qnet_qop", "qnet_u8", "qnet_relu"] {
        let (n, differ, worst) = compare(name, Requantization::Fp32);
        assert_eq!(
            (differ, worst),
            (0, 0),
            "{name}: {differ} of {n} values differ"
        );
        assert!(n > 2000, "{name}: {n} values");
        // TFLite's fixed-point arithmetic rounds differently, by at most 1.
        let (_, fixed_differ, worst) = compare(name, Requantization::Fixed);
        assert!(worst <= 1, "{name}: fixed mode off by {worst}");
        eprintln!("{name}: {n} values; fp32 bit-exact; fixed: {fixed_differ} differ by 1");
    }
    // A float bias, quantized by the import as TFLite's converter does: within 1 of ONNX
    // Runtime (bit-exact with onnxruntime 1.32.0 on this fixture).
    let (n, differ, worst) = compare("qnet_fbias", Requantization::Fp32);
    assert!(
        worst <= 1,
        "qnet_fbias: {differ} of {n} differ, by up to {worst}"
    );
    eprintln!("qnet_fbias: {n} values; fp32: {differ} differ by 1");
}

#[test]
fn models_gspc_cannot_represent_are_refused_by_node_and_rule() {
    let msg = |name: &str| {
        import_with(name, &all_convs())
            .expect_err("refused")
            .to_string()
    };
    assert_eq!(
        msg("bad_asym"),
        "bad_asym.onnx: graph.node[4] \"/dw/Conv\" (Conv): the weight zero point of output channel 3 is 7, not 0: asymmetric weights cannot be represented; gspc takes symmetric int8 weights with zero point 0 and values in [-127, 127] (TFLite's int8 spec) (quantize with WeightSymmetric=True, the default)"
    );
    assert_eq!(
        msg("bad_u8w"),
        "bad_u8w.onnx: graph.node[4] \"/dw/Conv\" (Conv): the weights are uint8: gspc takes symmetric int8 weights with zero point 0 and values in [-127, 127] (TFLite's int8 spec); quantize with weight_type=QuantType.QInt8"
    );
    assert_eq!(
        msg("bad_zp5"),
        "bad_zp5.onnx: graph.node[4] \"/dw/Conv\" (Conv): the per-tensor weight zero point is 5, not 0: gspc takes symmetric int8 weights with zero point 0 and values in [-127, 127] (TFLite's int8 spec)"
    );
}

/// An imported int8 model generates with its weights baked in (tests/onnx runs the code
/// against ONNX Runtime).
#[test]
fn an_imported_int8_model_generates_with_baked_weights() {
    let out = tempfile::tempdir().expect("temp dir");
    let o = gspc_codegen::Builder::new()
        .onnx_with(dir().join("qnet_qdq.onnx"), all_convs())
        .out_dir(out.path())
        .cargo_metadata(false)
        .generate()
        .unwrap_or_else(|e| panic!("{e}"));
    let g = &o.generated[0];
    assert!(g.plans.iter().all(|p| p.quant.is_some()));
    assert!(g.weights.is_some());
    assert!(g.code.contains("::gspc_runtime::baked::i32s::<"));
    assert!(
        g.code
            .contains("pub const QLAYERS: &[::gspc_runtime::qlayer::QLayer]")
    );
}

/// torchvision's mobilenet_v2 quantized QDQ (3.9 MB, not committed) and ONNX Runtime's
/// values for one input (33 MB of JSON): made by `scripts/make_int8_import_fixtures.py
/// --mobilenet PATH` (PATH and PATH with `.json`), checked when `GSPC_INT8_MOBILENET=PATH`
/// is set: every Conv imports as an int8 layer, and each, in fp32 mode on ONNX Runtime's
/// input, gives ONNX Runtime's output: bit for bit on the depthwise layers, within 1 (a
/// few values per million) on the dense ones.
#[test]
fn mobilenet_v2_qdq_imports_when_given() {
    let Some(path) = std::env::var_os("GSPC_INT8_MOBILENET") else {
        eprintln!("GSPC_INT8_MOBILENET not set: skipped");
        return;
    };
    let path = std::path::PathBuf::from(path);
    let i = import::import_file(&path, &all_convs()).expect("imports");
    assert_eq!(i.spec.layers.len(), 52);
    assert!(i.spec.layers.iter().all(|l| l.dtype() == Dtype::Int8));
    let depthwise = i
        .spec
        .layers
        .iter()
        .filter(|l| l.groups == l.in_channels && l.groups > 1)
        .count();
    assert_eq!(depthwise, 17);
    let values = recorded_at(&path.with_extension("json"));
    // The depthwise layers: bit for bit.
    let grouped = |l: &LayerSpec| l.groups > 1;
    let (n, differ, worst) = compare_imported(&i, &values, Requantization::Fp32, grouped);
    eprintln!("mobilenet_v2, depthwise layers: {n} values, {differ} differ");
    assert_eq!((differ, worst), (0, 0), "{differ} of {n} values differ");
    // The dense ones: onnxruntime 1.32.0 (x86-64) rounds 5 of their 4.4 million values (in 1x1
    // expansion layers), each within 3e-5 of a tie, the other way (not int16 saturation, nor
    // another order of the f32 scale product); within 1 everywhere.
    let dense = |l: &LayerSpec| l.groups == 1;
    let (n, differ, worst) = compare_imported(&i, &values, Requantization::Fp32, dense);
    eprintln!("mobilenet_v2, dense layers: {n} values, {differ} differ by 1");
    assert!(
        worst <= 1 && differ * 100_000 < n,
        "{differ} of {n} values differ"
    );
}

/// `name`'s model changed by `change`, imported with every conv.
fn import_changed(
    name: &str,
    change: impl FnOnce(&mut ModelProto),
) -> Result<Imported, gspc_codegen::Error> {
    import_changed_with(name, &all_convs(), change)
}

fn import_changed_with(
    name: &str,
    options: &ImportOptions,
    change: impl FnOnce(&mut ModelProto),
) -> Result<Imported, gspc_codegen::Error> {
    let bytes = std::fs::read(dir().join(format!("{name}.onnx"))).expect("fixture");
    let mut m = ModelProto::decode(bytes.as_slice()).expect("decodes");
    change(&mut m);
    import::import(&format!("{name}.onnx"), &m.encode_to_vec(), options)
}

/// The initializer called `name`.
fn init<'a>(m: &'a mut ModelProto, name: &str) -> &'a mut TensorProto {
    m.graph
        .as_mut()
        .expect("graph")
        .initializer
        .iter_mut()
        .find(|t| t.name == name)
        .unwrap_or_else(|| panic!("no initializer {name}"))
}

/// The node called `name`.
fn node<'a>(m: &'a mut ModelProto, name: &str) -> &'a mut NodeProto {
    m.graph
        .as_mut()
        .expect("graph")
        .node
        .iter_mut()
        .find(|n| n.name == name)
        .unwrap_or_else(|| panic!("no node {name}"))
}

fn refusal(r: Result<Imported, gspc_codegen::Error>) -> String {
    match r {
        Ok(i) => panic!("imported: {}", i.spec_json),
        Err(e) => e.to_string(),
    }
}

/// A float tensor's first value (`raw_data` or `float_data`), and a way to set it.
fn first_f32(t: &mut TensorProto) -> &mut [u8] {
    if t.raw_data.is_empty() {
        t.raw_data = t.float_data.iter().flat_map(|v| v.to_le_bytes()).collect();
        t.float_data.clear();
    }
    &mut t.raw_data[..4]
}

#[test]
fn every_rule_names_the_node() {
    let scale = |value: f32| {
        move |m: &mut ModelProto| {
            first_f32(init(m, "dw.weight_scale")).copy_from_slice(&value.to_le_bytes());
        }
    };
    assert_eq!(
        refusal(import_changed("qnet_qdq", scale(-1.0))),
        "qnet_qdq.onnx: graph.node[15] \"/dw/Conv\" (Conv): the weight scale -1 at index 0 is not valid: scales must be finite and above 0"
    );
    assert_eq!(
        refusal(import_changed("qnet_qdq", scale(f32::NAN))),
        "qnet_qdq.onnx: graph.node[15] \"/dw/Conv\" (Conv): the weight scale NaN at index 0 is not valid: scales must be finite and above 0"
    );
    assert_eq!(
        refusal(import_changed("qnet_qop", |m| {
            first_f32(init(m, "input_scale")).copy_from_slice(&0f32.to_le_bytes());
        })),
        "qnet_qop.onnx: graph.node[1] \"/stem/Conv_quant\" (QLinearConv): the input scale 0 is not valid: scales must be finite and above 0"
    );
    assert_eq!(
        refusal(import_changed("qnet_qop", |m| {
            init(m, "dw.weight_quantized").raw_data[5] = 0x80;
        })),
        "qnet_qop.onnx: graph.node[2] \"/dw/Conv_quant\" (QLinearConv): weight value -128 at flat index 5: gspc takes symmetric int8 weights with zero point 0 and values in [-127, 127] (TFLite's int8 spec)"
    );
    assert_eq!(
        refusal(import_changed("qnet_qdq", |m| {
            let first = first_f32(init(m, "grouped.bias_quantized_scale"));
            let doubled = 2.0 * f32::from_le_bytes(first[..].try_into().unwrap());
            first.copy_from_slice(&doubled.to_le_bytes());
        })),
        "qnet_qdq.onnx: graph.node[18] \"/grouped/Conv\" (Conv): the bias scale 0.000012456981 of output channel 0 is not input_scale * weight_scale = 0.0000062284903: gspc's int32 bias has that scale (TFLite's int8 spec)"
    );
    // A Conv with quantized weights that reads a float value, or writes one.
    assert_eq!(
        refusal(import_changed("qnet_qdq", |m| {
            node(m, "/stem/Conv").input[0] = "input".to_string();
        })),
        "qnet_qdq.onnx: graph.node[12] \"/stem/Conv\" (Conv): its weights are quantized but its input \"input\" is float (no DequantizeLinear produces it): gspc's int8 layers read int8; quantize the activations too"
    );
    assert_eq!(
        refusal(import_changed("qnet_qdq", |m| {
            let g = m.graph.as_mut().expect("graph");
            let mut out = g.output[0].clone();
            out.name = "/dw5/Conv_output_0".to_string();
            g.output.push(out);
        })),
        "qnet_qdq.onnx: graph.node[21] \"/dw5/Conv\" (Conv): its output \"/dw5/Conv_output_0\" is float: gspc's int8 layers write int8, so a single QuantizeLinear must read the Conv's output (after at most a Relu or Clip(0, 6))"
    );
    // Per-channel scales along another axis; a weight zero point of another type.
    assert_eq!(
        refusal(import_changed("qnet_qdq", |m| {
            node(m, "dw.weight_DequantizeLinear").attribute[0].i = Some(1);
        })),
        "qnet_qdq.onnx: graph.node[15] \"/dw/Conv\" (Conv): the weights are quantized along axis 1; gspc takes one scale per output channel (axis 0)"
    );
}

#[test]
fn spec_rules_are_blamed_on_the_node() {
    // An output scale so small that no "fixed" shift holds the multiplier (about 2^49).
    let tiny = |m: &mut ModelProto| {
        first_f32(init(m, "output_scale")).copy_from_slice(&1e-20f32.to_le_bytes());
    };
    let r = import_changed("qnet_qdq", tiny);
    let options = ImportOptions {
        all_convs: true,
        requantization: Some(Requantization::Fixed),
        ..Default::default()
    };
    let fixed = import_changed_with("qnet_qdq", &options, tiny);
    // fp32 mode holds the large multiplier; fixed mode does not.
    assert!(r.is_ok(), "{:?}", r.err().map(|e| e.to_string()));
    assert_eq!(
        refusal(fixed),
        "qnet_qdq.onnx: graph.node[24] \"/head/Conv\" (Conv): quantization.weight_scales[0]: output channel 0: the multiplier input_scale * weight_scale / output_scale = 5.7340e14 needs a shift outside [-31, 30] (it must be in about [2^-32, 2^30)) for \"fixed\" requantization (8 of the 8 channels are out of range)"
    );
}

#[test]
fn cli_import_takes_the_requantization_mode() {
    let dir = TempDir::new("int8");
    let (spec, weights) = (dir.arg("q.json"), dir.arg("q.safetensors"));
    let model = "tests/fixtures/int8_import/qnet_qdq.onnx";
    let args = [
        "import",
        model,
        "--all-convs",
        "--requantization",
        "fixed",
        "--out",
        &spec,
        "--weights",
        &weights,
    ];
    let out = gspc(&args).code(0).get_output().stdout.clone();
    let out = String::from_utf8(out).expect("UTF-8");
    assert!(
        out.starts_with("qnet_qdq::stem  graph.node[12] \"/stem/Conv\" (Conv): 3x16x16 -> 12x8x8, groups 1, kernel 3x3, stride 2x2, padding 1x1, dilation 1x1, bias, int8 (fixed)\n"),
        "{out}"
    );
    let options = ImportOptions {
        all_convs: true,
        requantization: Some(Requantization::Fixed),
        ..Default::default()
    };
    let i = import_with("qnet_qdq", &options).expect("imports");
    let written = std::fs::read_to_string(&spec).expect("spec");
    assert_eq!(written, i.spec_json);
    assert_eq!(std::fs::read(&weights).expect("weights"), i.weights);
    gspc(&["check", &spec]).code(0);
    gspc(&["import", model, "--requantization", "exact", "--out", &spec]).code(2);
}

/// Quantized fixtures changed at random (an initializer's byte, data type or dimension, a
/// node's input or attribute): every import is refused with a model error or gives a spec
/// that parses back the same and weights that fit it. No panic, no internal error.
#[test]
fn changed_quantized_models_are_refused_or_imported_consistently() {
    let models: Vec<(String, ModelProto)> = ["qnet_qdq", "qnet_qop", "qnet_u8", "qnet_relu"]
        .iter()
        .map(|name| {
            let bytes = std::fs::read(dir().join(format!("{name}.onnx"))).expect("fixture");
            let m = ModelProto::decode(bytes.as_slice()).expect("decodes");
            (format!("{name}.onnx"), m)
        })
        .collect();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut outcomes = [0usize; 2];
    for _ in 0..3000 {
        let (file, model) = &models[rng.below(models.len())];
        let mut m = model.clone();
        let g = m.graph.as_mut().expect("graph");
        let names: Vec<String> = g
            .node
            .iter()
            .flat_map(|n| n.output.iter().cloned())
            .chain(g.initializer.iter().map(|t| t.name.clone()))
            .collect();
        let t = rng.below(g.initializer.len());
        let t = &mut g.initializer[t];
        match rng.below(5) {
            0 if !t.raw_data.is_empty() => {
                let i = rng.below(t.raw_data.len());
                t.raw_data[i] = rng.next() as u8;
            }
            0 => t.float_data = vec![f32::from_bits(rng.next() as u32); t.float_data.len()],
            1 => t.data_type = [1, 2, 3, 6, 7, 11][rng.below(6)],
            2 if !t.dims.is_empty() => {
                let i = rng.below(t.dims.len());
                t.dims[i] = rng.below(20) as i64 - 2;
            }
            2 => t.dims.push(2),
            3 => {
                let n = rng.below(g.node.len());
                let n = &mut g.node[n];
                if !n.input.is_empty() {
                    let i = rng.below(n.input.len());
                    n.input[i] = names[rng.below(names.len())].clone();
                }
            }
            _ => {
                let n = rng.below(g.node.len());
                if let Some(a) = g.node[n].attribute.first_mut() {
                    a.i = Some(rng.below(5) as i64 - 1);
                }
            }
        }
        match import::import(file, &m.encode_to_vec(), &all_convs()) {
            Ok(i) => {
                outcomes[1] += 1;
                let reparsed = gspc_codegen::spec::parse(file, &i.spec_json).expect("valid");
                assert_eq!(reparsed, i.spec);
                let w = weights::from_safetensors("w.safetensors", &i.weights, &i.spec)
                    .unwrap_or_else(|e| panic!("{file}: imported weights do not fit: {e}"));
                assert_eq!(w.layers.len(), i.spec.layers.len());
            }
            Err(e) => {
                outcomes[0] += 1;
                assert!(matches!(e, gspc_codegen::Error::Model(_)), "{e}");
            }
        }
    }
    assert!(outcomes[0] > 300 && outcomes[1] > 300, "{outcomes:?}");
}

#[test]
fn the_regenerate_line_repeats_the_requantization_mode() {
    // An f32 model (int8 ones do not generate yet): the option is part of the import step.
    let out = tempfile::tempdir().expect("temp dir");
    let options = ImportOptions {
        requantization: Some(Requantization::Fixed),
        ..Default::default()
    };
    let o = gspc_codegen::Builder::new()
        .onnx_with(
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/onnx/fixtures/small_net.onnx"),
            options,
        )
        .out_dir(out.path())
        .cargo_metadata(false)
        .generate()
        .expect("generates");
    let code = &o.generated[0].code;
    let line = code
        .lines()
        .find(|l| l.starts_with("// Regenerate: gspc-codegen import "))
        .expect("a Regenerate line");
    assert!(
        line.contains(" --requantization fixed && gspc-codegen generate "),
        "{line}"
    );
}
