//! `effyolo`: the command-line front end of the detector.
//!
//! `effyolo detect` runs the model on image files and prints one JSON object per image (and
//! optionally writes annotated PNGs); `effyolo info` describes a weight file. See
//! `effyolo --help` for the full usage.
//!
//! Failures never panic: each prints one line `error: <message>` on standard error. A bad
//! command line exits with status 2 (the line ends with the command's synopsis); anything
//! else that fails exits with 1. In `detect`, an image that cannot be decoded or processed is
//! reported and skipped, and the exit status is 1 once the remaining images are done.

// The modules live in `effyolo/` so Cargo does not take them for binaries of their own.
#[path = "effyolo/args.rs"]
mod args;
#[path = "effyolo/draw.rs"]
mod draw;
#[path = "effyolo/font.rs"]
mod font;

use std::borrow::Cow;
use std::collections::HashSet;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use effyolo::model::{DetectOptions, Detection, Detector};
use image::{ImageReader, RgbImage};
use serde::Serialize;

use args::{Command, DetectArgs, InfoArgs};

fn main() -> ExitCode {
    match args::parse(std::env::args_os().skip(1)) {
        Err(usage) => {
            report(&usage.to_string());
            ExitCode::from(2)
        }
        Ok(Command::Help) => {
            print!("{}", args::HELP);
            ExitCode::SUCCESS
        }
        Ok(Command::Detect(args)) => exit_status(run_detect(&args)),
        Ok(Command::Info(args)) => exit_status(run_info(&args)),
    }
}

/// How a command ended when it did not simply succeed.
enum Failure {
    /// Stopped early with this message.
    Fatal(String),
    /// Ran to the end, but some items failed (each already reported).
    Partial,
}

fn exit_status(result: Result<(), Failure>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Fatal(message)) => {
            report(&message);
            ExitCode::from(1)
        }
        Err(Failure::Partial) => ExitCode::from(1),
    }
}

/// Prints `error: <message>` on one line, whatever the message contains.
fn report(message: &str) {
    let line: String = message
        .chars()
        .map(|c| if c == '\n' || c == '\r' { ' ' } else { c })
        .collect();
    eprintln!("error: {}", line.trim_end());
}

fn fatal(message: impl Into<String>) -> Failure {
    Failure::Fatal(message.into())
}

fn load_detector(path: &Path) -> Result<Detector, Failure> {
    let bytes = fs::read(path)
        .map_err(|e| fatal(format!("cannot read weights '{}': {e}", path.display())))?;
    Detector::from_safetensors(&bytes)
        .map_err(|e| fatal(format!("cannot load weights '{}': {e}", path.display())))
}

fn write_line(out: &mut impl Write, value: &impl Serialize) -> Result<(), Failure> {
    let json =
        serde_json::to_string(value).map_err(|e| fatal(format!("cannot encode JSON: {e}")))?;
    writeln!(out, "{json}")
        .and_then(|()| out.flush())
        .map_err(|e| fatal(format!("cannot write to standard output: {e}")))
}

#[derive(Serialize)]
struct ImageReport<'a> {
    image: Cow<'a, str>,
    width: u32,
    height: u32,
    detections: Vec<LabelledDetection<'a>>,
}

#[derive(Serialize)]
struct LabelledDetection<'a> {
    #[serde(flatten)]
    detection: &'a Detection,
    label: Cow<'a, str>,
}

fn run_detect(args: &DetectArgs) -> Result<(), Failure> {
    // Missing files are known before the (slow) model load, so say so straight away.
    for path in &args.images {
        check_readable(path)?;
    }
    let detector = load_detector(&args.weights)?;
    let info = detector.info();
    let size = args.size.unwrap_or(info.train_size);
    let out_paths = match &args.out {
        Some(dir) => {
            fs::create_dir_all(dir).map_err(|e| {
                fatal(format!(
                    "cannot create output directory '{}': {e}",
                    dir.display()
                ))
            })?;
            output_paths(dir, &args.images)
                .into_iter()
                .map(Some)
                .collect()
        }
        None => vec![None; args.images.len()],
    };

    let mut stdout = io::stdout().lock();
    let mut failed = false;
    for (path, out_path) in args.images.iter().zip(out_paths) {
        let (mut img, detections) = match detect_image(&detector, path, size, &args.options) {
            Ok(result) => result,
            Err(message) => {
                report(&message);
                failed = true;
                continue;
            }
        };
        let labelled: Vec<LabelledDetection> = detections
            .iter()
            .map(|detection| LabelledDetection {
                detection,
                label: class_label(&info.class_names, detection.class_id),
            })
            .collect();
        let summary = ImageReport {
            image: path.to_string_lossy(),
            width: img.width(),
            height: img.height(),
            detections: labelled,
        };
        write_line(&mut stdout, &summary)?;

        if let Some(out_path) = out_path {
            let tagged: Vec<(Detection, String)> = summary
                .detections
                .iter()
                .map(|d| (d.detection.clone(), tab_text(&d.label, d.detection.score)))
                .collect();
            draw::annotate(&mut img, &tagged);
            if let Err(e) = img.save_with_format(&out_path, image::ImageFormat::Png) {
                report(&format!("cannot write '{}': {e}", out_path.display()));
                failed = true;
            }
        }
    }
    if failed {
        Err(Failure::Partial)
    } else {
        Ok(())
    }
}

fn check_readable(path: &Path) -> Result<(), Failure> {
    match fs::metadata(path) {
        Ok(meta) if meta.is_file() => Ok(()),
        Ok(_) => Err(fatal(format!(
            "cannot read image '{}': not a file",
            path.display()
        ))),
        Err(e) => Err(fatal(format!(
            "cannot read image '{}': {e}",
            path.display()
        ))),
    }
}

/// Decodes one image (format from its content) and runs the detector on it.
fn detect_image(
    detector: &Detector,
    path: &Path,
    size: (usize, usize),
    options: &DetectOptions,
) -> Result<(RgbImage, Vec<Detection>), String> {
    let decode_error =
        |e: &dyn std::fmt::Display| format!("cannot decode image '{}': {e}", path.display());
    let img = ImageReader::open(path)
        .map_err(|e| decode_error(&e))?
        .with_guessed_format()
        .map_err(|e| decode_error(&e))?
        .decode()
        .map_err(|e| decode_error(&e))?
        .to_rgb8();
    let (w, h) = (img.width() as usize, img.height() as usize);
    let detections = detector
        .detect(img.as_raw(), w, h, size, options)
        .map_err(|e| format!("cannot process image '{}': {e}", path.display()))?;
    Ok((img, detections))
}

fn class_label(names: &[String], class_id: usize) -> Cow<'_, str> {
    match names.get(class_id) {
        Some(name) => Cow::Borrowed(name),
        None => Cow::Owned(format!("class {class_id}")),
    }
}

/// The text on a box's tab: label and score in percent.
fn tab_text(label: &str, score: f32) -> String {
    format!("{label} {:.0}%", score * 100.0)
}

/// `DIR/<stem>.png` for each image; a stem already used gets `-2`, `-3`, ... appended so
/// no image overwrites another's output.
fn output_paths(dir: &Path, images: &[PathBuf]) -> Vec<PathBuf> {
    let mut used = HashSet::new();
    images
        .iter()
        .map(|image| {
            let stem = image
                .file_stem()
                .map_or(Cow::Borrowed("image"), |s| s.to_string_lossy());
            let mut name = format!("{stem}.png");
            let mut n = 2;
            while !used.insert(name.clone()) {
                name = format!("{stem}-{n}.png");
                n += 1;
            }
            dir.join(name)
        })
        .collect()
}

#[derive(Serialize)]
struct InfoReport<'a> {
    variant: &'a str,
    widths: [usize; 4],
    depths: [usize; 4],
    mhsa_blocks: usize,
    width_multiple: f32,
    depth_multiple: f32,
    train_size: [usize; 2],
    classes: usize,
    class_names: &'a [String],
    anchors: &'a [[[f32; 2]; 3]; 3],
    mean: [f32; 3],
    std: [f32; 3],
    parameters: usize,
    /// The input size the cost is given for, (height, width).
    size: [usize; 2],
    macs: MacReport,
    gmac: f64,
}

#[derive(Serialize)]
struct MacReport {
    backbone: u64,
    neck: u64,
    head: u64,
    total: u64,
}

fn run_info(args: &InfoArgs) -> Result<(), Failure> {
    let detector = load_detector(&args.weights)?;
    let info = detector.info();
    let size = args.size.unwrap_or(info.train_size);
    let macs = detector.mac_count(size).map_err(|e| fatal(e.to_string()))?;
    let report = InfoReport {
        variant: &info.variant,
        widths: info.widths,
        depths: info.depths,
        mhsa_blocks: info.mhsa_blocks,
        width_multiple: info.width_multiple,
        depth_multiple: info.depth_multiple,
        train_size: [info.train_size.0, info.train_size.1],
        classes: info.class_names.len(),
        class_names: &info.class_names,
        anchors: &info.anchors,
        mean: info.mean,
        std: info.std,
        parameters: detector.parameter_count(),
        size: [size.0, size.1],
        macs: MacReport {
            backbone: macs.backbone,
            neck: macs.neck,
            head: macs.head,
            total: macs.total(),
        },
        // Three decimals are plenty for a cost figure.
        gmac: (macs.total() as f64 / 1e6).round() / 1e3,
    };
    write_line(&mut io::stdout().lock(), &report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_names_are_unique() {
        let images: Vec<PathBuf> = ["a/cat.jpg", "b/cat.png", "cat-2", "dog.jpeg", "/"]
            .iter()
            .map(PathBuf::from)
            .collect();
        let names: Vec<PathBuf> = output_paths(Path::new("out"), &images);
        let want = [
            "cat.png",
            "cat-2.png",
            "cat-2-2.png",
            "dog.png",
            "image.png",
        ];
        assert_eq!(
            names,
            want.iter()
                .map(|n| Path::new("out").join(n))
                .collect::<Vec<_>>()
        );
    }

    #[test]
    fn labels_and_tabs() {
        let names = vec!["person".to_string()];
        assert_eq!(class_label(&names, 0), "person");
        assert_eq!(class_label(&names, 5), "class 5");
        assert_eq!(tab_text("person", 0.8749), "person 87%");
        assert_eq!(tab_text("cat", 1.0), "cat 100%");
    }

    #[test]
    fn detections_serialise_with_their_label() {
        let detection = Detection {
            x1: 1.0,
            y1: 2.5,
            x2: 3.0,
            y2: 4.0,
            score: 0.25,
            class_id: 2,
        };
        let json = serde_json::to_string(&LabelledDetection {
            detection: &detection,
            label: "car".into(),
        })
        .unwrap();
        assert_eq!(
            json,
            r#"{"x1":1.0,"y1":2.5,"x2":3.0,"y2":4.0,"score":0.25,"class_id":2,"label":"car"}"#
        );
    }
}
