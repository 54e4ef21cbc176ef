//! Weight loading: safetensors files (f32 or f16) or synthetic weights, validated as a whole.
//!
//! The model asks for every tensor by its PyTorch state-dict name and expected shape through a
//! [`Loader`]. The loader never stops at the first problem: it collects missing, mis-shaped,
//! wrongly typed and non-finite tensors, and the names nobody asked for, and reports them all in
//! one line, so a user fixing a converter sees everything that is wrong at once.

use std::collections::{BTreeSet, HashMap};

use safetensors::{Dtype, SafeTensors};

use crate::error::{Error, Result};
use crate::model::config::ModelConfig;
use crate::model::synthetic;

/// Where tensors come from.
pub trait TensorSource {
    /// Every tensor name the source holds.
    fn names(&self) -> Vec<String>;
    /// The shape of tensor `name`, without reading its values.
    fn shape(&self, name: &str) -> Option<Vec<usize>>;
    /// The tensor's shape and f32 values; `Ok(None)` when absent; `Err` with a reason when present
    /// but unreadable (unsupported dtype).
    fn read(&self, name: &str) -> std::result::Result<Option<(Vec<usize>, Vec<f32>)>, String>;
}

/// A parsed safetensors file borrowed from its bytes.
pub struct SafetensorsSource<'a> {
    tensors: SafeTensors<'a>,
}

impl<'a> SafetensorsSource<'a> {
    /// Parses the header and the model configuration in `__metadata__`.
    pub fn parse(bytes: &'a [u8]) -> Result<(Self, ModelConfig)> {
        if bytes.len() < 8 {
            return Err(Error::WeightFormat(format!(
                "{} bytes is too short for a safetensors file (truncated?)",
                bytes.len()
            )));
        }
        let (_, meta) = SafeTensors::read_metadata(bytes).map_err(describe_safetensors_error)?;
        let tensors = SafeTensors::deserialize(bytes).map_err(describe_safetensors_error)?;
        let md: HashMap<String, String> = meta.metadata().clone().unwrap_or_default();
        let config = ModelConfig::from_metadata(&md)?;
        Ok((SafetensorsSource { tensors }, config))
    }
}

fn describe_safetensors_error(e: safetensors::SafeTensorError) -> Error {
    use safetensors::SafeTensorError as E;
    let what = match e {
        E::HeaderTooLarge | E::HeaderTooSmall | E::InvalidHeaderLength => {
            "header length is invalid (not a safetensors file, or truncated)".to_string()
        }
        E::InvalidHeader | E::InvalidHeaderStart | E::InvalidHeaderDeserialization => {
            "header is not valid safetensors JSON (not a safetensors file?)".to_string()
        }
        E::MetadataIncompleteBuffer | E::InvalidOffset(_) => {
            "tensor data extends past the end of the file (truncated?)".to_string()
        }
        other => format!("{other}"),
    };
    Error::WeightFormat(what)
}

impl TensorSource for SafetensorsSource<'_> {
    fn names(&self) -> Vec<String> {
        self.tensors.names().into_iter().cloned().collect()
    }

    fn shape(&self, name: &str) -> Option<Vec<usize>> {
        self.tensors.tensor(name).ok().map(|v| v.shape().to_vec())
    }

    fn read(&self, name: &str) -> std::result::Result<Option<(Vec<usize>, Vec<f32>)>, String> {
        let view = match self.tensors.tensor(name) {
            Ok(v) => v,
            Err(_) => return Ok(None),
        };
        let bytes = view.data();
        let values: Vec<f32> = match view.dtype() {
            Dtype::F32 => bytes
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect(),
            Dtype::F16 => bytes
                .chunks_exact(2)
                .map(|b| f16_to_f32(u16::from_le_bytes([b[0], b[1]])))
                .collect(),
            other => return Err(format!("{name} has dtype {other:?} (expected F32 or F16)")),
        };
        Ok(Some((view.shape().to_vec(), values)))
    }
}

/// IEEE 754 half -> single, exact (including subnormals, infinities and NaN).
pub fn f16_to_f32(h: u16) -> f32 {
    let sign = ((h >> 15) as u32) << 31;
    let exp = ((h >> 10) & 0x1f) as u32;
    let frac = (h & 0x3ff) as u32;
    let bits = match (exp, frac) {
        (0, 0) => sign,
        (0, f) => {
            // Subnormal half: value = f * 2^-24; normalise into an f32.
            let shift = f.leading_zeros() - 21; // bring the leading 1 to bit 10
            let f = (f << shift) & 0x3ff;
            let e = 127 - 15 - shift + 1;
            sign | (e << 23) | (f << 13)
        }
        (0x1f, f) => sign | 0x7f80_0000 | (f << 13),
        (e, f) => sign | ((e + 127 - 15) << 23) | (f << 13),
    };
    f32::from_bits(bits)
}

/// Hands out tensors by name and shape and keeps the books on what went wrong.
pub struct Loader<'a> {
    source: Option<&'a dyn TensorSource>,
    requested: BTreeSet<String>,
    /// (name, shape) of every request, in order.
    shapes: Vec<(String, Vec<usize>)>,
    missing: Vec<String>,
    misshaped: Vec<String>,
    unreadable: Vec<String>,
    non_finite: Vec<String>,
}

impl<'a> Loader<'a> {
    pub fn new(source: &'a dyn TensorSource) -> Self {
        Self::with_source(Some(source))
    }

    /// A loader that generates every requested tensor from the shared hash formula
    /// (`weights/effyolo_ref/synthetic.py`): for latency measurements of untrained variants and
    /// for parity tests without stored weights.
    pub fn synthetic() -> Self {
        Self::with_source(None)
    }

    fn with_source(source: Option<&'a dyn TensorSource>) -> Self {
        Loader {
            source,
            requested: BTreeSet::new(),
            shapes: Vec::new(),
            missing: Vec::new(),
            misshaped: Vec::new(),
            unreadable: Vec::new(),
            non_finite: Vec::new(),
        }
    }

    /// The tensor `name` with `shape`, or zeros (and a recorded problem) when it cannot be had.
    pub fn tensor(&mut self, name: &str, shape: &[usize]) -> Vec<f32> {
        self.requested.insert(name.to_string());
        self.shapes.push((name.to_string(), shape.to_vec()));
        let n: usize = shape.iter().product();
        let Some(source) = self.source else {
            return synthetic::tensor(name, shape);
        };
        match source.read(name) {
            Ok(Some((found, values))) => {
                if found != shape {
                    self.misshaped
                        .push(format!("{name} is {found:?}, expected {shape:?}"));
                } else if values.iter().any(|v| !v.is_finite()) {
                    self.non_finite.push(name.to_string());
                } else {
                    return values;
                }
            }
            Ok(None) => self.missing.push(name.to_string()),
            Err(reason) => self.unreadable.push(reason),
        }
        vec![0.0; n]
    }

    /// (name, shape) of every tensor requested so far.
    pub fn requested(&self) -> &[(String, Vec<usize>)] {
        &self.shapes
    }

    /// Succeeds when every requested tensor was found intact and nothing was left unused.
    pub fn finish(self) -> Result<()> {
        let unused: Vec<String> = match self.source {
            Some(s) => s
                .names()
                .into_iter()
                .filter(|n| !self.requested.contains(n))
                .collect(),
            None => Vec::new(),
        };
        let mut parts = Vec::new();
        let mut list = |label: &str, items: &[String]| {
            if !items.is_empty() {
                const SHOWN: usize = 6;
                let mut s = format!(
                    "{label} ({}): {}",
                    items.len(),
                    items[..items.len().min(SHOWN)].join(", ")
                );
                if items.len() > SHOWN {
                    s.push_str(&format!(", and {} more", items.len() - SHOWN));
                }
                parts.push(s);
            }
        };
        list("missing", &self.missing);
        list("mis-shaped", &self.misshaped);
        list("wrong dtype", &self.unreadable);
        list("NaN or infinite values in", &self.non_finite);
        list("unused", &unused);
        if parts.is_empty() {
            Ok(())
        } else {
            Err(Error::WeightMismatch(parts.join("; ")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn f16_round_trip() {
        for h in (0u16..=0xffff).filter(|h| (h >> 10) & 0x1f != 0x1f) {
            assert_eq!(f32_to_f16(f16_to_f32(h)), h, "{h:#06x}");
        }
        assert_eq!(f32_to_f16(1.0 + 2f32.powi(-11)), 0x3c00); // tie to even
        assert_eq!(f32_to_f16(1e6), 0x7c00);
    }

    #[test]
    fn f16_conversion_is_exact() {
        assert_eq!(f16_to_f32(0x3c00), 1.0);
        assert_eq!(f16_to_f32(0xc000), -2.0);
        assert_eq!(f16_to_f32(0x7bff), 65504.0);
        assert_eq!(f16_to_f32(0x0001), 2f32.powi(-24));
        assert_eq!(f16_to_f32(0x03ff), 1023.0 * 2f32.powi(-24));
        assert_eq!(f16_to_f32(0x3555), 0.333_251_95);
        assert!(f16_to_f32(0x7c00).is_infinite());
        assert!(f16_to_f32(0x7e00).is_nan());
        assert_eq!(f16_to_f32(0x8000).to_bits(), 0x8000_0000);
    }
}

/// Storage type of a written weight file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StorageType {
    F32,
    F16,
}

/// Serialises named f32 tensors and a configuration to safetensors bytes.
pub fn write_safetensors(
    tensors: &[(String, Vec<usize>, Vec<f32>)],
    config: &ModelConfig,
    storage: StorageType,
) -> Result<Vec<u8>> {
    let buffers: Vec<(String, Vec<usize>, Vec<u8>)> = tensors
        .iter()
        .map(|(name, shape, values)| {
            let bytes = match storage {
                StorageType::F32 => values.iter().flat_map(|v| v.to_le_bytes()).collect(),
                StorageType::F16 => values
                    .iter()
                    .flat_map(|v| f32_to_f16(*v).to_le_bytes())
                    .collect(),
            };
            (name.clone(), shape.clone(), bytes)
        })
        .collect();
    let dtype = match storage {
        StorageType::F32 => Dtype::F32,
        StorageType::F16 => Dtype::F16,
    };
    let views = buffers
        .iter()
        .map(|(name, shape, bytes)| {
            safetensors::tensor::TensorView::new(dtype, shape.clone(), bytes)
                .map(|v| (name.clone(), v))
                .map_err(|e| Error::WeightFormat(format!("{name}: {e}")))
        })
        .collect::<Result<Vec<_>>>()?;
    safetensors::serialize(views, &Some(config.to_metadata()))
        .map_err(|e| Error::WeightFormat(format!("serialisation failed: {e}")))
}

/// IEEE 754 single -> half, round to nearest even (overflow to infinity).
pub fn f32_to_f16(x: f32) -> u16 {
    let bits = x.to_bits();
    let sign = ((bits >> 16) & 0x8000) as u16;
    let exp = ((bits >> 23) & 0xff) as i32;
    let frac = bits & 0x7f_ffff;
    if exp == 0xff {
        return sign | 0x7c00 | if frac != 0 { 0x200 } else { 0 };
    }
    let e = exp - 127 + 15;
    if e >= 0x1f {
        return sign | 0x7c00;
    }
    if e <= 0 {
        if e < -10 {
            return sign;
        }
        // Subnormal: shift the full mantissa (with its implicit 1) into place, rounding to even.
        let m = frac | 0x80_0000;
        let shift = (14 - e) as u32;
        let half = 1 << (shift - 1);
        let rest = m & ((1 << shift) - 1);
        let mut v = m >> shift;
        if rest > half || (rest == half && v & 1 == 1) {
            v += 1;
        }
        return sign | v as u16;
    }
    let mut v = ((e as u32) << 10) | (frac >> 13);
    let rest = frac & 0x1fff;
    if rest > 0x1000 || (rest == 0x1000 && v & 1 == 1) {
        v += 1; // may carry into the exponent, which is the correct rounding
    }
    sign | v as u16
}
