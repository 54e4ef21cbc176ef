use effyolo::kernels::Parallelism;
use effyolo::ops::attention::{
    gather_attention_bias, multi_head_attention, resample_attention_bias,
};
use effyolo::ops::linear::Linear;
use effyolo::ops::norm::layer_norm;
use effyolo::ops::Activation;
use effyolo::Tensor;
use std::time::Instant;
fn t<F: FnMut()>(name: &str, mut f: F) {
    for _ in 0..3 {
        f();
    }
    let mut v: Vec<f64> = (0..30)
        .map(|_| {
            let s = Instant::now();
            f();
            s.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    v.sort_by(f64::total_cmp);
    println!("{name:20} {:.3} ms", v[15]);
}
fn main() {
    let n = 100;
    let c = 448;
    let x = Tensor::new(&[n, c], effyolo::bench::fill(n * c, 3)).unwrap();
    let g = vec![1.0; c];
    let b = vec![0.0; c];
    let lin = |i: usize, o: usize| {
        Linear::new(
            i,
            o,
            effyolo::bench::fill(i * o, 5)
                .iter()
                .map(|v| v * 1.0)
                .collect(),
            Some(vec![0.1; o]),
        )
        .unwrap()
    };
    let qkv = lin(448, 1536);
    let proj = lin(1024, 448);
    let fc1 = lin(448, 1792);
    let fc2 = lin(1792, 448);
    let table = effyolo::bench::fill(8 * 49, 7);
    for par in [Parallelism::Serial, Parallelism::Threads(2)] {
        println!("{par:?}");
        t("layer_norm", || {
            layer_norm(&x, &g, &b, 1e-5).unwrap();
        });
        let q = qkv.forward(&x, Activation::None, par).unwrap();
        t("qkv", || {
            qkv.forward(&x, Activation::None, par).unwrap();
        });
        t("bias", || {
            let tb = resample_attention_bias(&table, 8, (7, 7), (10, 10)).unwrap();
            gather_attention_bias(&tb, 8, (10, 10)).unwrap();
        });
        let tb = resample_attention_bias(&table, 8, (7, 7), (10, 10)).unwrap();
        let bias = gather_attention_bias(&tb, 8, (10, 10)).unwrap();
        let a = multi_head_attention(&q, 8, 32, 128, &bias, 0.17, par).unwrap();
        t("attention", || {
            multi_head_attention(&q, 8, 32, 128, &bias, 0.17, par).unwrap();
        });
        t("proj", || {
            proj.forward(&a, Activation::None, par).unwrap();
        });
        let h = fc1.forward(&x, Activation::Gelu, par).unwrap();
        t("fc1", || {
            fc1.forward(&x, Activation::Gelu, par).unwrap();
        });
        t("fc2", || {
            fc2.forward(&h, Activation::None, par).unwrap();
        });
    }
}
#[allow(dead_code)]
fn count() {}
