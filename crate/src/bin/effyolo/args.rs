//! Command-line parsing, by hand to keep the tool's dependencies to the image codecs. Every
//! way a command line can be wrong is a [`UsageError`] whose message fits on one line and
//! ends with the synopsis of the command concerned.

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::path::PathBuf;

use effyolo::model::preprocess::{validate_input_size, INPUT_MULTIPLE, MAX_INPUT_SIDE};
use effyolo::model::DetectOptions;

pub const DETECT_SYNOPSIS: &str = "effyolo detect --weights FILE [--size N|HxW] [--conf X] \
                                   [--iou X] [--max-det N] [--out DIR] IMAGE...";
pub const INFO_SYNOPSIS: &str = "effyolo info FILE [--size N|HxW]";
const GENERAL_SYNOPSIS: &str = "effyolo detect|info ... ('effyolo --help' for details)";

/// The text of `effyolo --help`.
pub const HELP: &str = "\
effyolo: object detection with a YOLOv5 head on an EfficientFormer backbone

usage:
  effyolo detect --weights FILE [--size N|HxW] [--conf X] [--iou X] [--max-det N]
                 [--out DIR] IMAGE...
  effyolo info FILE [--size N|HxW]
  effyolo --help

detect   prints one JSON object per image on standard output, one per line:
         {\"image\", \"width\", \"height\", \"detections\": [{\"x1\", \"y1\", \"x2\", \"y2\",
         \"score\", \"class_id\", \"label\"}]}, boxes in image pixels.
info     prints the model's metadata, parameter count and cost at the input size as JSON.

options:
  --weights FILE  safetensors weight file (detect)
  --size N|HxW    network input, square N or height x width, multiples of 32
                  (default: the model's training size)
  --conf X        confidence threshold in [0, 1] (default 0.25)
  --iou X         NMS IoU threshold in [0, 1] (default 0.45)
  --max-det N     most detections per image (default 300)
  --out DIR       also write DIR/<image name>.png with the boxes drawn
  --              everything after it is an image path

Images are decoded from their content (PNG, JPEG). An image that cannot be read or
processed is reported on standard error and the others are still processed; the exit
status is then 1. Missing image files are reported before the model is loaded.
Exit status: 0 success, 1 failure, 2 bad command line.
";

/// A parsed command line.
#[derive(Debug, PartialEq)]
pub enum Command {
    Detect(DetectArgs),
    Info(InfoArgs),
    Help,
}

#[derive(Debug, PartialEq)]
pub struct DetectArgs {
    pub weights: PathBuf,
    /// Network input (height, width); `None` means the model's training size.
    pub size: Option<(usize, usize)>,
    pub options: DetectOptions,
    pub images: Vec<PathBuf>,
    pub out: Option<PathBuf>,
}

#[derive(Debug, PartialEq)]
pub struct InfoArgs {
    pub weights: PathBuf,
    pub size: Option<(usize, usize)>,
}

/// A command line that cannot run: what is wrong, and the synopsis to show with it.
#[derive(Debug, PartialEq)]
pub struct UsageError {
    pub message: String,
    pub synopsis: &'static str,
}

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (usage: {})", self.message, self.synopsis)
    }
}

/// Parses the arguments after the program name.
pub fn parse<I: IntoIterator<Item = OsString>>(args: I) -> Result<Command, UsageError> {
    let mut args = args.into_iter();
    let Some(command) = args.next() else {
        return Err(usage(GENERAL_SYNOPSIS, "missing command".into()));
    };
    match command.to_str() {
        Some("detect") => parse_detect(args),
        Some("info") => parse_info(args),
        Some("-h" | "--help" | "help") => Ok(Command::Help),
        _ => Err(usage(
            GENERAL_SYNOPSIS,
            format!("unknown command '{}'", command.to_string_lossy()),
        )),
    }
}

/// One token of a command's arguments.
enum Token {
    /// A known option and its value.
    Option(&'static str, OsString),
    Positional(OsString),
    Help,
}

/// Splits arguments into options (`--name VALUE` or `--name=VALUE`, for the names in
/// `options`) and positionals; `--` ends option processing.
struct Tokens<I> {
    args: I,
    options: &'static [&'static str],
    synopsis: &'static str,
    only_positionals: bool,
}

impl<I: Iterator<Item = OsString>> Iterator for Tokens<I> {
    type Item = Result<Token, UsageError>;

    fn next(&mut self) -> Option<Self::Item> {
        let arg = self.args.next()?;
        if self.only_positionals || !is_flag(&arg) {
            return Some(Ok(Token::Positional(arg)));
        }
        let flag = arg.to_string_lossy();
        if flag == "--" {
            self.only_positionals = true;
            return self.next();
        }
        if flag == "-h" || flag == "--help" {
            return Some(Ok(Token::Help));
        }
        let (name, inline) = match flag.split_once('=') {
            Some((name, value)) => (name, Some(OsString::from(value))),
            None => (&flag[..], None),
        };
        let Some(&known) = self.options.iter().find(|o| **o == name) else {
            return Some(Err(usage(
                self.synopsis,
                format!("unknown option '{name}'"),
            )));
        };
        let value = match inline.or_else(|| self.args.next()) {
            Some(value) => value,
            None => return Some(Err(usage(self.synopsis, format!("{known} needs a value")))),
        };
        Some(Ok(Token::Option(known, value)))
    }
}

fn is_flag(arg: &OsStr) -> bool {
    let bytes = arg.as_encoded_bytes();
    bytes.len() > 1 && bytes[0] == b'-'
}

fn usage(synopsis: &'static str, message: String) -> UsageError {
    UsageError { message, synopsis }
}

/// Stores an option's value, refusing a second one.
fn set_once<T>(
    slot: &mut Option<T>,
    name: &str,
    value: T,
    synopsis: &'static str,
) -> Result<(), UsageError> {
    if slot.replace(value).is_some() {
        return Err(usage(synopsis, format!("{name} given more than once")));
    }
    Ok(())
}

fn parse_detect<I: Iterator<Item = OsString>>(args: I) -> Result<Command, UsageError> {
    let s = DETECT_SYNOPSIS;
    let tokens = Tokens {
        args,
        options: &[
            "--weights",
            "--size",
            "--conf",
            "--iou",
            "--max-det",
            "--out",
        ],
        synopsis: s,
        only_positionals: false,
    };
    let (mut weights, mut size, mut conf, mut iou, mut max_det, mut out) =
        (None, None, None, None, None, None);
    let mut images = Vec::new();
    for token in tokens {
        match token? {
            Token::Help => return Ok(Command::Help),
            Token::Positional(path) => images.push(PathBuf::from(path)),
            Token::Option(name, value) => match name {
                "--weights" => set_once(&mut weights, name, PathBuf::from(value), s)?,
                "--out" => set_once(&mut out, name, PathBuf::from(value), s)?,
                "--size" => set_once(&mut size, name, parse_size(&value, s)?, s)?,
                "--conf" => set_once(&mut conf, name, parse_unit(name, &value, s)?, s)?,
                "--iou" => set_once(&mut iou, name, parse_unit(name, &value, s)?, s)?,
                _ => set_once(&mut max_det, name, parse_count(name, &value, s)?, s)?,
            },
        }
    }
    let Some(weights) = weights else {
        return Err(usage(s, "detect needs --weights FILE".into()));
    };
    if images.is_empty() {
        return Err(usage(s, "detect needs at least one IMAGE".into()));
    }
    let defaults = DetectOptions::default();
    let options = DetectOptions {
        conf_threshold: conf.unwrap_or(defaults.conf_threshold),
        iou_threshold: iou.unwrap_or(defaults.iou_threshold),
        max_detections: max_det.unwrap_or(defaults.max_detections),
    };
    options.validate().map_err(|e| usage(s, e.to_string()))?;
    Ok(Command::Detect(DetectArgs {
        weights,
        size,
        options,
        images,
        out,
    }))
}

fn parse_info<I: Iterator<Item = OsString>>(args: I) -> Result<Command, UsageError> {
    let s = INFO_SYNOPSIS;
    let tokens = Tokens {
        args,
        options: &["--size"],
        synopsis: s,
        only_positionals: false,
    };
    let (mut weights, mut size) = (None, None);
    for token in tokens {
        match token? {
            Token::Help => return Ok(Command::Help),
            Token::Positional(path) => {
                if weights.replace(PathBuf::from(&path)).is_some() {
                    return Err(usage(
                        s,
                        format!(
                            "unexpected argument '{}': info takes one weight file",
                            path.to_string_lossy()
                        ),
                    ));
                }
            }
            Token::Option(name, value) => set_once(&mut size, name, parse_size(&value, s)?, s)?,
        }
    }
    let Some(weights) = weights else {
        return Err(usage(s, "info needs a weight FILE".into()));
    };
    Ok(Command::Info(InfoArgs { weights, size }))
}

/// `N` (square) or `HxW`, each a positive multiple of 32.
fn parse_size(value: &OsStr, synopsis: &'static str) -> Result<(usize, usize), UsageError> {
    let text = value.to_string_lossy();
    let side = |t: &str| t.trim().parse::<usize>().ok();
    let size = match text.split_once(['x', 'X']) {
        Some((h, w)) => side(h).zip(side(w)),
        None => side(&text).map(|n| (n, n)),
    };
    match size {
        Some(size) if validate_input_size(size).is_ok() => Ok(size),
        _ => Err(usage(
            synopsis,
            format!(
                "--size expects N or HxW with positive multiples of {INPUT_MULTIPLE} up to \
                 {MAX_INPUT_SIDE}, got '{text}'"
            ),
        )),
    }
}

/// A number in [0, 1].
fn parse_unit(name: &str, value: &OsStr, synopsis: &'static str) -> Result<f32, UsageError> {
    let text = value.to_string_lossy();
    match text.trim().parse::<f32>() {
        Ok(v) if (0.0..=1.0).contains(&v) => Ok(v),
        _ => Err(usage(
            synopsis,
            format!("{name} expects a number between 0 and 1, got '{text}'"),
        )),
    }
}

/// A whole number of at least 1.
fn parse_count(name: &str, value: &OsStr, synopsis: &'static str) -> Result<usize, UsageError> {
    let text = value.to_string_lossy();
    match text.trim().parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(usage(
            synopsis,
            format!("{name} expects a whole number of at least 1, got '{text}'"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(args: &[&str]) -> Result<Command, UsageError> {
        parse(args.iter().map(OsString::from))
    }

    fn message(args: &[&str]) -> String {
        run(args).unwrap_err().message
    }

    #[test]
    fn detect_with_defaults() {
        let cmd = run(&["detect", "--weights", "m.safetensors", "a.jpg", "b.png"]).unwrap();
        assert_eq!(
            cmd,
            Command::Detect(DetectArgs {
                weights: "m.safetensors".into(),
                size: None,
                options: DetectOptions::default(),
                images: vec!["a.jpg".into(), "b.png".into()],
                out: None,
            })
        );
    }

    #[test]
    fn detect_with_every_option() {
        let cmd = run(&[
            "detect",
            "a.jpg",
            "--size=320x640",
            "--conf",
            "0.5",
            "--iou=0.6",
            "--max-det",
            "7",
            "--out",
            "shots",
            "--weights=w",
            "--",
            "--odd-name.png",
        ])
        .unwrap();
        let Command::Detect(args) = cmd else {
            panic!("{cmd:?}")
        };
        assert_eq!(args.size, Some((320, 640)));
        assert_eq!(
            args.options,
            DetectOptions {
                conf_threshold: 0.5,
                iou_threshold: 0.6,
                max_detections: 7
            }
        );
        assert_eq!(args.out, Some("shots".into()));
        assert_eq!(args.weights, PathBuf::from("w"));
        assert_eq!(
            args.images,
            [PathBuf::from("a.jpg"), PathBuf::from("--odd-name.png")]
        );
    }

    #[test]
    fn sizes() {
        let size = |v: &str| parse_size(OsStr::new(v), INFO_SYNOPSIS);
        assert_eq!(size("320"), Ok((320, 320)));
        assert_eq!(size("256X416"), Ok((256, 416)));
        for bad in [
            "100", "0", "axb", "320x", "x320", "-32", "320x330", "", "99999",
        ] {
            let err = size(bad).unwrap_err();
            assert!(err.message.contains("multiples of 32"), "{bad}: {err}");
        }
    }

    #[test]
    fn info_and_help() {
        assert_eq!(
            run(&["info", "w.safetensors", "--size", "640"]),
            Ok(Command::Info(InfoArgs {
                weights: "w.safetensors".into(),
                size: Some((640, 640))
            }))
        );
        assert_eq!(run(&["--help"]), Ok(Command::Help));
        assert_eq!(run(&["detect", "-h"]), Ok(Command::Help));
        assert_eq!(run(&["info", "--help"]), Ok(Command::Help));
    }

    #[test]
    fn usage_errors() {
        assert_eq!(message(&[]), "missing command");
        assert!(message(&["train"]).contains("unknown command 'train'"));
        assert!(message(&["detect", "--weights", "w", "--bogus", "a.jpg"])
            .contains("unknown option '--bogus'"));
        assert!(message(&["detect", "a.jpg"]).contains("--weights"));
        assert!(message(&["detect", "--weights", "w"]).contains("IMAGE"));
        assert!(message(&["detect", "a.jpg", "--weights"]).contains("needs a value"));
        assert!(
            message(&["detect", "--weights", "w", "--weights", "v", "a"])
                .contains("more than once")
        );
        assert!(message(&["detect", "--weights", "w", "--conf", "1.5", "a"])
            .contains("between 0 and 1"));
        assert!(
            message(&["detect", "--weights", "w", "--iou", "nan", "a"]).contains("between 0 and 1")
        );
        assert!(
            message(&["detect", "--weights", "w", "--max-det", "0", "a"]).contains("at least 1")
        );
        assert!(message(&["info"]).contains("weight FILE"));
        assert!(message(&["info", "a", "b"]).contains("unexpected argument 'b'"));
        assert!(message(&["info", "a", "--conf", "0.3"]).contains("unknown option"));
        let err = run(&["detect", "--size", "100"]).unwrap_err();
        assert_eq!(err.synopsis, DETECT_SYNOPSIS);
        assert!(!err.to_string().contains('\n'));
    }
}
