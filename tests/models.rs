//! Every layer of every compiled-in model (the specs in `layer-specs/`, or `GSPC_SPECS`),
//! every ISA variant, checked against the naive reference.

mod common;

#[test]
fn every_layer_of_every_model_matches_the_reference() {
    let mut all = Vec::new();
    let mut layers = 0;
    for model in gspc::models::MODELS {
        for layer in model.layers {
            all.push(common::check_layer(model.name, layer));
            layers += 1;
        }
    }
    assert!(layers > 0, "no layers compiled in");
    let runs: usize = all.iter().map(|r| r.ran.len()).sum();
    eprintln!(
        "checked {layers} layers of {} models, {runs} variant runs",
        gspc::models::MODELS.len()
    );
    common::enforce_required(&all);
}
