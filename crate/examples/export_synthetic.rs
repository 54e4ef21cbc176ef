//! Writes a detector with synthetic (untrained, deterministic) weights as a safetensors file:
//! the same tensors the PyTorch reference exports (`effyolo_ref.synthetic` +
//! `effyolo_ref.io.export_state(model, path, "f16")`), produced without Python.
//!
//! The browser demo and its end-to-end tests use such a file until trained weights ship:
//! detections are meaningless but deterministic, so the page and the CLI can be compared.
//!
//! ```text
//! cargo run --release --example export_synthetic -- OUT.safetensors [--variant l1|l3|l7]
//!     [--classes FILE] [--f32]
//! ```
//! `--classes FILE` takes one class name per line (e.g. the 80 COCO names); by default the
//! variant's placeholder names are kept. Storage is f16 unless `--f32` is given.

use std::path::PathBuf;
use std::process::ExitCode;

use effyolo::model::weights::{write_safetensors, StorageType};
use effyolo::model::{Detector, ModelConfig};

const USAGE: &str =
    "usage: export_synthetic OUT.safetensors [--variant l1|l3|l7] [--classes FILE] [--f32]";

struct Args {
    out: PathBuf,
    variant: String,
    classes: Option<PathBuf>,
    storage: StorageType,
}

fn parse_args() -> Result<Args, String> {
    let mut out = None;
    let mut variant = "l1".to_string();
    let mut classes = None;
    let mut storage = StorageType::F16;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--variant" => variant = args.next().ok_or("--variant needs a value")?,
            "--classes" => {
                classes = Some(PathBuf::from(args.next().ok_or("--classes needs a file")?))
            }
            "--f32" => storage = StorageType::F32,
            "-h" | "--help" => return Err(String::new()),
            flag if flag.starts_with("--") => return Err(format!("unknown option {flag}")),
            path if out.is_none() => out = Some(PathBuf::from(path)),
            extra => return Err(format!("unexpected argument {extra}")),
        }
    }
    let out = out.ok_or("missing the output path")?;
    Ok(Args {
        out,
        variant,
        classes,
        storage,
    })
}

fn run(args: &Args) -> Result<(), String> {
    let mut config = ModelConfig::variant(&args.variant).map_err(|e| e.to_string())?;
    if let Some(path) = &args.classes {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read class names '{}': {e}", path.display()))?;
        config.class_names = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(String::from)
            .collect();
    }
    let tensors = Detector::synthetic_tensors(&config).map_err(|e| e.to_string())?;
    let bytes = write_safetensors(&tensors, &config, args.storage).map_err(|e| e.to_string())?;
    if let Some(dir) = args.out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create '{}': {e}", dir.display()))?;
    }
    std::fs::write(&args.out, &bytes)
        .map_err(|e| format!("cannot write '{}': {e}", args.out.display()))?;
    eprintln!(
        "wrote {} ({} tensors, {} classes, {:.1} MB)",
        args.out.display(),
        tensors.len(),
        config.class_names.len(),
        bytes.len() as f64 / 1e6
    );
    Ok(())
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(message) => {
            if !message.is_empty() {
                eprintln!("error: {message}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::from(1)
        }
    }
}
