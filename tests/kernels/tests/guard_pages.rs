//! Every edge-case and random layer, every variant this CPU runs, the dispatching `run`,
//! `run_split` (2 and 3 parts) and `run_parallel`, with input, packed weights, output and
//! scratch each in a mapping of its own, fenced by `PROT_NONE` guard pages: placed flush
//! against the guard page after it (an overrun faults) and then flush against the one
//! before it (an underrun faults). Input, weights, bias and packed weights are read-only
//! while the kernel runs, so a stray write to them faults too. Results are compared with
//! the reference.
//!
//! A fault kills the test process with SIGSEGV: `GSPC_GUARD_TRACE=1` prints each call to
//! stderr before it is made, naming the layer that faulted.

#[cfg(unix)]
mod guarded;

#[cfg(unix)]
#[test]
fn layers_stay_inside_their_buffers() {
    use gspc_runtime::check;
    let models: Vec<_> = gspc_kernel_tests::models::MODELS.iter().collect();
    let mut all = Vec::new();
    let mut failures = Vec::new();
    for model in &models {
        for layer in model.layers {
            for place in [guarded::Place::End, guarded::Place::Start] {
                match guarded::check_layer(model.name, layer, place) {
                    Ok(c) => all.push(c),
                    Err(e) => failures.push(format!("{}::{e}", model.name)),
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "random seed {}: {} run(s) wrong:\n{}",
        gspc_kernel_tests::RANDOM_SEED,
        failures.len(),
        failures.join("\n")
    );
    let layers: usize = models.iter().map(|m| m.layers.len()).sum();
    assert!(
        layers >= 20 && all.len() == 2 * layers,
        "expected every layer at both places, got {} runs of {layers} layers",
        all.len()
    );
    if let Err(e) = check::enforce_required(&check::required_from_env(), &all) {
        panic!("{e}");
    }
}

#[cfg(not(unix))]
#[test]
fn layers_stay_inside_their_buffers() {
    eprintln!("skipped: guard pages need mmap/mprotect (unix only)");
}
