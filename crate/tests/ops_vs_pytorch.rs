//! Single ops against PyTorch on small golden cases (`tests/fixtures/ops/*.json`, written by
//! `weights/tools/op_fixtures.py`): each case stores its seeded inputs, parameters and
//! PyTorch's output; the Rust op must agree to a max abs error of 1e-5.

use std::path::PathBuf;

use effyolo::kernels::{vecmath, Parallelism};
use effyolo::ops::attention::{
    gather_attention_bias, multi_head_attention, resample_attention_bias,
};
use effyolo::ops::conv::Conv2d;
use effyolo::ops::linear::Linear;
use effyolo::ops::norm::{group_norm_1, layer_norm};
use effyolo::ops::pool::{avg_pool3x3_exclude_pad, max_pool};
use effyolo::ops::Activation;
use effyolo::Tensor;
use serde_json::Value;

const MAX_ABS_ERROR: f32 = 1e-5;

fn load(name: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/ops")
        .join(format!("{name}.json"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (regenerate with weights/tools/op_fixtures.py)",
            path.display()
        )
    });
    serde_json::from_str(&text).unwrap()
}

fn shape(v: &Value) -> Vec<usize> {
    v["shape"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_u64().unwrap() as usize)
        .collect()
}

fn floats(v: &Value) -> Vec<f32> {
    v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

fn tensor(v: &Value) -> Tensor {
    Tensor::new(&shape(v), floats(v)).unwrap()
}

fn param(case: &Value, key: &str) -> f64 {
    case["params"][key].as_f64().unwrap()
}

fn usize_param(case: &Value, key: &str) -> usize {
    case["params"][key].as_u64().unwrap() as usize
}

fn pair_param(case: &Value, key: &str) -> (usize, usize) {
    let v = case["params"][key].as_array().unwrap();
    (
        v[0].as_u64().unwrap() as usize,
        v[1].as_u64().unwrap() as usize,
    )
}

fn activation(case: &Value) -> Activation {
    match case["params"]["activation"].as_str().unwrap() {
        "none" => Activation::None,
        "relu" => Activation::Relu,
        "silu" => Activation::Silu,
        "gelu" => Activation::Gelu,
        other => panic!("unknown activation {other}"),
    }
}

#[track_caller]
fn assert_matches(name: &str, got: &[f32], got_shape: &[usize], case: &Value) {
    let want = &case["output"];
    assert_eq!(got_shape, shape(want), "{name}: output shape");
    let want = floats(want);
    let (worst, at) = got
        .iter()
        .zip(&want)
        .enumerate()
        .map(|(i, (g, w))| ((g - w).abs(), i))
        .fold(
            (0.0f32, 0),
            |a, b| if b.0 > a.0 || b.0.is_nan() { b } else { a },
        );
    assert!(
        worst <= MAX_ABS_ERROR,
        "{name}: max abs error {worst} at index {at} (got {}, want {})",
        got[at],
        want[at]
    );
}

fn check_conv_batch_norm(name: &str) {
    let case = load(name);
    let inputs = &case["inputs"];
    let weight_shape: [usize; 4] = shape(&inputs["weight"]).try_into().unwrap();
    let bias = (!inputs["bias"].is_null()).then(|| floats(&inputs["bias"]));
    let stride = usize_param(&case, "stride");
    let padding = usize_param(&case, "padding");
    let mut conv = Conv2d::new(
        weight_shape,
        floats(&inputs["weight"]),
        bias,
        stride,
        padding,
    )
    .unwrap();
    conv.fold_batch_norm(
        &floats(&inputs["gamma"]),
        &floats(&inputs["beta"]),
        &floats(&inputs["running_mean"]),
        &floats(&inputs["running_var"]),
        param(&case, "eps") as f32,
    )
    .unwrap();
    let y = conv
        .forward(
            &tensor(&inputs["x"]),
            activation(&case),
            Parallelism::Serial,
        )
        .unwrap();
    assert_matches(name, y.data(), y.shape(), &case);
}

#[test]
fn conv3x3_stride2_bias_folded_batch_norm() {
    check_conv_batch_norm("conv3x3_s2_bias_bn");
}

#[test]
fn conv1x1_folded_batch_norm_silu() {
    check_conv_batch_norm("conv1x1_bn_silu");
}

#[test]
fn avg_pool_excluding_padding() {
    let case = load("avg_pool3x3_exclude_pad");
    let y = avg_pool3x3_exclude_pad(&tensor(&case["inputs"]["x"])).unwrap();
    assert_matches("avg_pool3x3_exclude_pad", y.data(), y.shape(), &case);
}

#[test]
fn max_pool_k5_s1_p2() {
    let case = load("max_pool_k5_s1_p2");
    let (k, s, p) = (
        usize_param(&case, "kernel"),
        usize_param(&case, "stride"),
        usize_param(&case, "pad"),
    );
    let x = tensor(&case["inputs"]["x"]);
    let y = max_pool(&x, k, s, p, Parallelism::Serial).unwrap();
    assert_matches("max_pool", y.data(), y.shape(), &case);
    let threaded = max_pool(&x, k, s, p, Parallelism::Threads(2)).unwrap();
    assert_eq!(threaded.data(), y.data(), "max_pool split in two");
}

#[test]
fn group_norm_one_group() {
    let case = load("group_norm_1");
    let inputs = &case["inputs"];
    let y = group_norm_1(
        &tensor(&inputs["x"]),
        &floats(&inputs["gamma"]),
        &floats(&inputs["beta"]),
        param(&case, "eps") as f32,
    )
    .unwrap();
    assert_matches("group_norm_1", y.data(), y.shape(), &case);
}

#[test]
fn layer_norm_last_dim() {
    let case = load("layer_norm");
    let inputs = &case["inputs"];
    let y = layer_norm(
        &tensor(&inputs["x"]),
        &floats(&inputs["gamma"]),
        &floats(&inputs["beta"]),
        param(&case, "eps") as f32,
    )
    .unwrap();
    assert_matches("layer_norm", y.data(), y.shape(), &case);
}

#[test]
fn exact_gelu() {
    let case = load("gelu");
    let x = tensor(&case["inputs"]["x"]);
    let mut y = x.data().to_vec();
    vecmath::gelu(&mut y);
    assert_matches("gelu", &y, x.shape(), &case);
}

#[test]
fn linear_then_gelu() {
    let case = load("linear_gelu");
    let inputs = &case["inputs"];
    let [out_features, in_features] = shape(&inputs["weight"]).try_into().unwrap();
    let fc = Linear::new(
        in_features,
        out_features,
        floats(&inputs["weight"]),
        Some(floats(&inputs["bias"])),
    )
    .unwrap();
    let y = fc
        .forward(
            &tensor(&inputs["x"]),
            activation(&case),
            Parallelism::Serial,
        )
        .unwrap();
    assert_matches("linear_gelu", y.data(), y.shape(), &case);
}

#[test]
fn bilinear_resampling_of_bias_tables() {
    for name in [
        "bias_bilinear_7x7_to_10x10",
        "bias_bilinear_7x7_to_4x6",
        "bias_bilinear_3x5_to_5x5",
    ] {
        let case = load(name);
        let heads = usize_param(&case, "heads");
        let (from, to) = (pair_param(&case, "from"), pair_param(&case, "to"));
        let y =
            resample_attention_bias(&floats(&case["inputs"]["table"]), heads, from, to).unwrap();
        assert_matches(name, &y, &[heads, to.0 * to.1], &case);
    }
}

#[test]
fn attention_with_gathered_bias() {
    let case = load("attention_3x4");
    let grid = pair_param(&case, "grid");
    let heads = usize_param(&case, "heads");
    let (key_dim, val_dim) = (usize_param(&case, "key_dim"), usize_param(&case, "val_dim"));
    let bias = gather_attention_bias(&floats(&case["inputs"]["table"]), heads, grid).unwrap();
    let qkv = tensor(&case["inputs"]["qkv"]);
    let scale = param(&case, "scale") as f32;
    let y = multi_head_attention(
        &qkv,
        heads,
        key_dim,
        val_dim,
        &bias,
        scale,
        Parallelism::Serial,
    )
    .unwrap();
    assert_matches("attention", y.data(), y.shape(), &case);
}
