//! Detection post-processing, as YOLOv5 v7.0 does it at inference: decode the Detect head's
//! raw logits into boxes, keep the confident ones, run class-aware non-maximum suppression and
//! map the survivors from network input pixels back to image pixels.
//!
//! The three steps are separate functions ([`decode`], [`non_max_suppression`],
//! [`scale_boxes`]) mirroring YOLOv5's `Detect.forward`, `non_max_suppression` and
//! `scale_boxes`, so each can be checked against the Python reference on its own;
//! [`decode_and_nms`] chains them. All arithmetic is f32 in the reference's operation order.
//!
//! Decoding is where the time goes (every anchor of every cell), so it reads the objectness
//! logit first and skips a cell's box and class maths unless `sigmoid(obj) > conf`; with the
//! usual low objectness prior that rejects almost every cell after one `exp`.

use std::collections::HashMap;

use serde::Serialize;

use crate::error::{Error, Result};
use crate::model::preprocess::Letterbox;
use crate::tensor::Tensor;

/// YOLOv5's `max_nms`: candidates beyond this many (by score) never reach NMS.
pub const MAX_NMS_CANDIDATES: usize = 30_000;

/// Anchors per head level.
pub const ANCHORS_PER_LEVEL: usize = 3;

/// Thresholds and limits of one detection call.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DetectOptions {
    /// Minimum objectness and class score (exclusive), in [0, 1].
    pub conf_threshold: f32,
    /// NMS suppresses a box whose IoU with a kept box of its class exceeds this, in [0, 1].
    pub iou_threshold: f32,
    /// Most detections returned, at least 1.
    pub max_detections: usize,
}

impl Default for DetectOptions {
    /// YOLOv5's `detect.py` defaults: conf 0.25, IoU 0.45, 300 detections.
    fn default() -> Self {
        DetectOptions {
            conf_threshold: 0.25,
            iou_threshold: 0.45,
            max_detections: 300,
        }
    }
}

impl DetectOptions {
    /// Checks that both thresholds lie in [0, 1] and that at least one detection is allowed.
    pub fn validate(&self) -> Result<()> {
        let unit = |v: f32| (0.0..=1.0).contains(&v);
        if !unit(self.conf_threshold) {
            return Err(Error::InvalidInput(format!(
                "confidence threshold {} must be between 0 and 1",
                self.conf_threshold
            )));
        }
        if !unit(self.iou_threshold) {
            return Err(Error::InvalidInput(format!(
                "IoU threshold {} must be between 0 and 1",
                self.iou_threshold
            )));
        }
        if self.max_detections == 0 {
            return Err(Error::InvalidInput(
                "max detections must be at least 1".into(),
            ));
        }
        Ok(())
    }
}

/// One detected object: a box (corners, x right and y down), its score (objectness times
/// class probability) and its class index. [`decode`] and [`non_max_suppression`] produce
/// boxes in network input pixels, [`scale_boxes`] and [`decode_and_nms`] in image pixels.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Detection {
    pub x1: f32,
    pub y1: f32,
    pub x2: f32,
    pub y2: f32,
    pub score: f32,
    pub class_id: usize,
}

impl Detection {
    fn area(&self) -> f32 {
        (self.x2 - self.x1) * (self.y2 - self.y1)
    }

    /// Intersection over union, with `area` this box's own area (the NMS loop reuses it).
    fn iou(&self, area: f32, other: &Detection) -> f32 {
        let w = (self.x2.min(other.x2) - self.x1.max(other.x1)).max(0.0);
        let h = (self.y2.min(other.y2) - self.y1.max(other.y1)).max(0.0);
        let inter = w * h;
        inter / (area + other.area() - inter)
    }
}

/// The full YOLOv5 inference tail: [`decode`], sort by score, [`non_max_suppression`],
/// [`scale_boxes`]. Returns at most `options.max_detections` boxes in image pixels, best
/// first. Arguments are as for [`decode`].
pub fn decode_and_nms(
    head_outputs: &[Tensor],
    anchors: &[[[f32; 2]; ANCHORS_PER_LEVEL]],
    strides: &[f32],
    num_classes: usize,
    options: &DetectOptions,
    letterbox: &Letterbox,
) -> Result<Vec<Detection>> {
    options.validate()?;
    if !(letterbox.scale.is_finite() && letterbox.scale > 0.0) {
        return Err(Error::InvalidInput(format!(
            "letterbox scale {} must be positive",
            letterbox.scale
        )));
    }
    let mut candidates = decode(
        head_outputs,
        anchors,
        strides,
        num_classes,
        options.conf_threshold,
    )?;
    // Stable, so equal scores keep the flattened (level, anchor, y, x) order.
    candidates.sort_by(|a, b| b.score.total_cmp(&a.score));
    candidates.truncate(MAX_NMS_CANDIDATES);
    let mut kept = non_max_suppression(&candidates, options.iou_threshold, options.max_detections);
    scale_boxes(&mut kept, letterbox);
    Ok(kept)
}

/// Decodes the Detect head's raw logits into candidate boxes in network input pixels.
///
/// `head_outputs` holds one (3 * (num_classes + 5), ny, nx) tensor per level, viewed as
/// (anchor, [x, y, w, h, obj, cls...], ny, nx); `anchors` (pixels) and `strides` give one
/// entry per level. With `s = sigmoid(logit)`: `cx = (2 s_x + (x - 0.5)) * stride`,
/// `w = (2 s_w)^2 * anchor_w` (likewise y, h); a cell is a candidate when `s_obj > conf`,
/// its class is the first best of `s_obj * s_cls`, and it is kept when that score `> conf`.
/// Candidates come out in YOLOv5's flattened order: level, anchor, y, x.
pub fn decode(
    head_outputs: &[Tensor],
    anchors: &[[[f32; 2]; ANCHORS_PER_LEVEL]],
    strides: &[f32],
    num_classes: usize,
    conf_threshold: f32,
) -> Result<Vec<Detection>> {
    if head_outputs.is_empty()
        || anchors.len() != head_outputs.len()
        || strides.len() != head_outputs.len()
    {
        return Err(Error::Shape(format!(
            "detect head has {} outputs but {} anchor sets and {} strides: one of each per level",
            head_outputs.len(),
            anchors.len(),
            strides.len()
        )));
    }
    if num_classes == 0 {
        return Err(Error::InvalidInput(
            "the model must have at least one class".into(),
        ));
    }
    if let Some(s) = strides.iter().find(|s| !(s.is_finite() && **s > 0.0)) {
        return Err(Error::InvalidInput(format!(
            "head stride {s} must be positive"
        )));
    }
    let outputs = num_classes + 5;
    let mut candidates = Vec::new();
    for (level, head) in head_outputs.iter().enumerate() {
        let (channels, ny, nx) = head.chw("detect head output")?;
        if channels != ANCHORS_PER_LEVEL * outputs {
            return Err(Error::Shape(format!(
                "detect head level {level} has {channels} channels but {ANCHORS_PER_LEVEL} \
                 anchors x ({num_classes} classes + 5) = {} were expected",
                ANCHORS_PER_LEVEL * outputs
            )));
        }
        let stride = strides[level];
        let plane = ny * nx;
        if plane == 0 {
            continue;
        }
        for (a, anchor_data) in head.data().chunks_exact(outputs * plane).enumerate() {
            let [anchor_w, anchor_h] = anchors[level][a];
            let channel = |k: usize| &anchor_data[k * plane..(k + 1) * plane];
            let (tx, ty, tw, th, tobj) =
                (channel(0), channel(1), channel(2), channel(3), channel(4));
            for (p, &obj_logit) in tobj.iter().enumerate() {
                let obj = sigmoid(obj_logit);
                if !exceeds(obj, conf_threshold) {
                    continue;
                }
                let mut class_id = 0;
                let mut score = f32::NAN;
                for k in 0..num_classes {
                    let s = obj * sigmoid(anchor_data[(5 + k) * plane + p]);
                    if k == 0 || s > score {
                        class_id = k;
                        score = s;
                    }
                }
                if !exceeds(score, conf_threshold) {
                    continue;
                }
                let (x, y) = ((p % nx) as f32, (p / nx) as f32);
                let cx = (sigmoid(tx[p]) * 2.0 + (x - 0.5)) * stride;
                let cy = (sigmoid(ty[p]) * 2.0 + (y - 0.5)) * stride;
                let (gw, gh) = (sigmoid(tw[p]) * 2.0, sigmoid(th[p]) * 2.0);
                let (w, h) = (gw * gw * anchor_w, gh * gh * anchor_h);
                candidates.push(Detection {
                    x1: cx - w / 2.0,
                    y1: cy - h / 2.0,
                    x2: cx + w / 2.0,
                    y2: cy + h / 2.0,
                    score,
                    class_id,
                });
            }
        }
    }
    Ok(candidates)
}

/// Greedy class-aware NMS over candidates sorted by descending score: a box is kept unless
/// its IoU with an already kept box of the same class exceeds `iou_threshold`. Stops after
/// `max_detections` boxes (later boxes could not change the earlier ones).
pub fn non_max_suppression(
    sorted: &[Detection],
    iou_threshold: f32,
    max_detections: usize,
) -> Vec<Detection> {
    let mut kept: Vec<Detection> = Vec::new();
    // Kept boxes (index into `kept`, area) per class.
    let mut by_class: HashMap<usize, Vec<(usize, f32)>> = HashMap::new();
    for candidate in sorted {
        if kept.len() >= max_detections {
            break;
        }
        let same_class = by_class.entry(candidate.class_id).or_default();
        let suppressed = same_class
            .iter()
            .any(|&(k, area)| kept[k].iou(area, candidate) > iou_threshold);
        if !suppressed {
            same_class.push((kept.len(), candidate.area()));
            kept.push(candidate.clone());
        }
    }
    kept
}

/// Maps boxes from network input pixels to image pixels, undoing the letterbox
/// (`(v - pad) / scale`) and clipping to the image.
pub fn scale_boxes(detections: &mut [Detection], letterbox: &Letterbox) {
    let scale = letterbox.scale as f32;
    let (pad_x, pad_y) = (letterbox.pad_x as f32, letterbox.pad_y as f32);
    let (w, h) = (letterbox.src_w as f32, letterbox.src_h as f32);
    for d in detections {
        d.x1 = ((d.x1 - pad_x) / scale).clamp(0.0, w);
        d.y1 = ((d.y1 - pad_y) / scale).clamp(0.0, h);
        d.x2 = ((d.x2 - pad_x) / scale).clamp(0.0, w);
        d.y2 = ((d.y2 - pad_y) / scale).clamp(0.0, h);
    }
}

/// `value > threshold`, so false for NaN: a NaN logit never becomes a detection.
fn exceeds(value: f32, threshold: f32) -> bool {
    value > threshold
}

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Logit of a low objectness: no candidate.
    const OFF: f32 = -20.0;

    /// Heads for `grids` (ny, nx) with every logit `OFF`.
    fn quiet_heads(num_classes: usize, grids: &[(usize, usize)]) -> Vec<Tensor> {
        grids
            .iter()
            .map(|&(ny, nx)| {
                let shape = [ANCHORS_PER_LEVEL * (num_classes + 5), ny, nx];
                Tensor::new(&shape, vec![OFF; shape.iter().product()]).unwrap()
            })
            .collect()
    }

    /// Sets the logits of one anchor of one cell: box `[tx, ty, tw, th]`, objectness, and
    /// class logits (any class not listed stays `OFF`).
    fn set_cell(
        head: &mut Tensor,
        anchor: usize,
        y: usize,
        x: usize,
        bbox: [f32; 4],
        obj: f32,
        classes: &[(usize, f32)],
    ) {
        let (c, ny, nx) = head.chw("test").unwrap();
        let outputs = c / ANCHORS_PER_LEVEL;
        let data = head.data_mut();
        let mut put = |k: usize, v: f32| data[((anchor * outputs + k) * ny + y) * nx + x] = v;
        for (k, v) in bbox.into_iter().enumerate() {
            put(k, v);
        }
        put(4, obj);
        for &(class, v) in classes {
            put(5 + class, v);
        }
    }

    fn identity_letterbox(w: usize, h: usize) -> Letterbox {
        Letterbox {
            scale: 1.0,
            pad_x: 0,
            pad_y: 0,
            new_w: w,
            new_h: h,
            src_w: w,
            src_h: h,
        }
    }

    fn boxed(x1: f32, y1: f32, x2: f32, y2: f32, score: f32, class_id: usize) -> Detection {
        Detection {
            x1,
            y1,
            x2,
            y2,
            score,
            class_id,
        }
    }

    const ANCHORS: [[[f32; 2]; 3]; 3] = [
        [[10.0, 13.0], [16.0, 30.0], [33.0, 23.0]],
        [[30.0, 61.0], [62.0, 45.0], [59.0, 119.0]],
        [[116.0, 90.0], [156.0, 198.0], [373.0, 326.0]],
    ];
    const STRIDES: [f32; 3] = [8.0, 16.0, 32.0];

    #[test]
    fn zero_logits_give_an_anchor_sized_box_on_the_cell_centre() {
        // sigmoid(0) = 0.5: centre (x + 0.5) * stride, size (2 * 0.5)^2 * anchor = anchor.
        let mut heads = quiet_heads(4, &[(8, 8), (4, 4), (2, 2)]);
        set_cell(&mut heads[0], 0, 2, 1, [0.0; 4], 5.0, &[(2, 5.0), (3, 1.0)]);
        set_cell(&mut heads[2], 1, 1, 0, [0.0; 4], 4.0, &[(0, 3.0)]);
        let opts = DetectOptions::default();
        let dets = decode_and_nms(
            &heads,
            &ANCHORS,
            &STRIDES,
            4,
            &opts,
            &identity_letterbox(64, 64),
        )
        .unwrap();
        let s5 = sigmoid(5.0);
        assert_eq!(dets[0], boxed(7.0, 13.5, 17.0, 26.5, s5 * s5, 2));
        // 156x198 centred on (16, 48): clipped to the 64x64 image.
        assert_eq!(
            dets[1],
            boxed(0.0, 0.0, 64.0, 64.0, sigmoid(4.0) * sigmoid(3.0), 0)
        );
        assert_eq!(dets.len(), 2);
    }

    #[test]
    fn box_offsets_and_sizes_follow_yolov5() {
        let mut heads = quiet_heads(1, &[(4, 4)]);
        set_cell(
            &mut heads[0],
            2,
            3,
            2,
            [2.0, -1.0, 1.5, -0.5],
            6.0,
            &[(0, 6.0)],
        );
        let dets = decode(&heads, &ANCHORS[..1], &STRIDES[..1], 1, 0.25).unwrap();
        let cx = (sigmoid(2.0) * 2.0 + 1.5) * 8.0;
        let cy = (sigmoid(-1.0) * 2.0 + 2.5) * 8.0;
        let (gw, gh) = (sigmoid(1.5) * 2.0, sigmoid(-0.5) * 2.0);
        let (w, h) = (gw * gw * 33.0, gh * gh * 23.0);
        let score = sigmoid(6.0) * sigmoid(6.0);
        assert_eq!(
            dets,
            vec![boxed(
                cx - w / 2.0,
                cy - h / 2.0,
                cx + w / 2.0,
                cy + h / 2.0,
                score,
                0
            )]
        );
    }

    #[test]
    fn thresholds_apply_to_objectness_and_to_the_class_score() {
        let mut heads = quiet_heads(2, &[(2, 2)]);
        // Confident object, unsure class: 0.9 * 0.2 < 0.25.
        set_cell(
            &mut heads[0],
            0,
            0,
            0,
            [0.0; 4],
            2.2,
            &[(0, -1.4), (1, -1.5)],
        );
        // Objectness below the threshold, however certain the class.
        set_cell(&mut heads[0], 1, 0, 1, [0.0; 4], -1.2, &[(1, 9.0)]);
        let dets = decode(&heads, &ANCHORS[..1], &STRIDES[..1], 2, 0.25).unwrap();
        assert!(dets.is_empty(), "{dets:?}");
        // Ties between classes go to the first.
        set_cell(&mut heads[0], 2, 1, 1, [0.0; 4], 3.0, &[(0, 2.0), (1, 2.0)]);
        let dets = decode(&heads, &ANCHORS[..1], &STRIDES[..1], 2, 0.25).unwrap();
        assert_eq!(dets.len(), 1);
        assert_eq!(dets[0].class_id, 0);
    }

    #[test]
    fn nothing_confident_gives_no_detections() {
        let heads = quiet_heads(80, &[(40, 40), (20, 20), (10, 10)]);
        let dets = decode_and_nms(
            &heads,
            &ANCHORS,
            &STRIDES,
            80,
            &DetectOptions::default(),
            &identity_letterbox(320, 320),
        )
        .unwrap();
        assert!(dets.is_empty());
    }

    #[test]
    fn nms_suppresses_within_a_class_only() {
        // Two anchors of one cell with equal anchor sizes and slightly different offsets:
        // heavily overlapping boxes.
        let anchors = [[[20.0, 20.0], [20.0, 20.0], [20.0, 20.0]]];
        let mut heads = quiet_heads(3, &[(4, 4)]);
        set_cell(&mut heads[0], 0, 1, 1, [0.0; 4], 4.0, &[(1, 4.0)]);
        set_cell(
            &mut heads[0],
            1,
            1,
            1,
            [0.1, 0.0, 0.0, 0.0],
            3.0,
            &[(1, 4.0)],
        );
        set_cell(
            &mut heads[0],
            2,
            1,
            1,
            [0.0, 0.1, 0.0, 0.0],
            2.0,
            &[(2, 4.0)],
        );
        let lb = identity_letterbox(32, 32);
        let dets = decode_and_nms(
            &heads,
            &anchors,
            &STRIDES[..1],
            3,
            &DetectOptions::default(),
            &lb,
        )
        .unwrap();
        let classes: Vec<usize> = dets.iter().map(|d| d.class_id).collect();
        assert_eq!(classes, [1, 2]);
        assert!(dets[0].score > dets[1].score);

        // With IoU threshold 1 nothing is suppressed.
        let opts = DetectOptions {
            iou_threshold: 1.0,
            ..DetectOptions::default()
        };
        let dets = decode_and_nms(&heads, &anchors, &STRIDES[..1], 3, &opts, &lb).unwrap();
        assert_eq!(dets.len(), 3);
    }

    #[test]
    fn nms_threshold_is_exclusive() {
        // Two 10x10 boxes overlapping by 5x10: IoU = 50 / 150 = 1/3.
        let a = boxed(0.0, 0.0, 10.0, 10.0, 0.9, 0);
        let b = boxed(5.0, 0.0, 15.0, 10.0, 0.8, 0);
        let iou = a.iou(a.area(), &b);
        assert_eq!(iou, 50.0 / 150.0);
        assert_eq!(
            non_max_suppression(&[a.clone(), b.clone()], iou, 10).len(),
            2
        );
        assert_eq!(
            non_max_suppression(&[a.clone(), b.clone()], 0.3, 10),
            vec![a.clone()]
        );
        // Disjoint boxes survive even at threshold 0; a degenerate box (0/0) is kept.
        let far = boxed(20.0, 20.0, 30.0, 30.0, 0.7, 0);
        let point = boxed(40.0, 40.0, 40.0, 40.0, 0.6, 0);
        let dup = point.clone();
        assert_eq!(non_max_suppression(&[a, far, point, dup], 0.0, 10).len(), 4);
    }

    #[test]
    fn max_detections_keeps_the_best() {
        let mut heads = quiet_heads(1, &[(8, 8)]);
        for i in 0..6 {
            set_cell(
                &mut heads[0],
                0,
                i,
                i,
                [0.0; 4],
                1.0 + i as f32,
                &[(0, 8.0)],
            );
        }
        let opts = DetectOptions {
            max_detections: 2,
            ..DetectOptions::default()
        };
        let dets = decode_and_nms(
            &heads,
            &ANCHORS[..1],
            &STRIDES[..1],
            1,
            &opts,
            &identity_letterbox(64, 64),
        )
        .unwrap();
        assert_eq!(dets.len(), 2);
        assert_eq!((dets[0].x1, dets[1].x1), (5.5 * 8.0 - 5.0, 4.5 * 8.0 - 5.0));
    }

    #[test]
    fn equal_scores_keep_the_flattened_order() {
        // Same logits on level 1 (first) and level 0 (later in the loop but earlier in order).
        let mut heads = quiet_heads(1, &[(4, 4), (2, 2)]);
        set_cell(&mut heads[1], 0, 1, 1, [0.0; 4], 3.0, &[(0, 3.0)]);
        set_cell(&mut heads[0], 2, 3, 3, [0.0; 4], 3.0, &[(0, 3.0)]);
        set_cell(&mut heads[0], 0, 3, 3, [0.0; 4], 3.0, &[(0, 3.0)]);
        let dets = decode_and_nms(
            &heads,
            &ANCHORS[..2],
            &STRIDES[..2],
            1,
            &DetectOptions::default(),
            &identity_letterbox(99, 99),
        )
        .unwrap();
        let widths: Vec<f32> = dets.iter().map(|d| d.x2 - d.x1).collect();
        assert_eq!(widths, [10.0, 33.0, 30.0]);
    }

    #[test]
    fn boxes_map_back_through_the_letterbox() {
        // 640x480 into 320x320: scale 0.5, 40 rows of padding on top.
        let lb = Letterbox::fit(640, 480, (320, 320)).unwrap();
        let image_box = [100.0f32, 50.0, 300.0, 250.0];
        let r = lb.scale as f32;
        let to_input = |v: f32, pad: usize| v * r + pad as f32;
        let mut dets = vec![boxed(
            to_input(image_box[0], lb.pad_x),
            to_input(image_box[1], lb.pad_y),
            to_input(image_box[2], lb.pad_x),
            to_input(image_box[3], lb.pad_y),
            0.5,
            3,
        )];
        scale_boxes(&mut dets, &lb);
        assert_eq!([dets[0].x1, dets[0].y1, dets[0].x2, dets[0].y2], image_box);

        // Parts in the padding or past the image are clipped.
        let mut dets = vec![boxed(-10.0, 10.0, 330.0, 300.0, 0.5, 0)];
        scale_boxes(&mut dets, &lb);
        assert_eq!(
            [dets[0].x1, dets[0].y1, dets[0].x2, dets[0].y2],
            [0.0, 0.0, 640.0, 480.0]
        );
    }

    #[test]
    fn rejects_inconsistent_heads() {
        let lb = identity_letterbox(32, 32);
        let opts = DetectOptions::default();
        let heads = quiet_heads(2, &[(4, 4)]);
        let wrong = decode_and_nms(&heads, &ANCHORS[..1], &STRIDES[..1], 3, &opts, &lb);
        assert!(matches!(wrong, Err(Error::Shape(m)) if m.contains("21 channels")));
        let missing_level = decode_and_nms(&heads, &ANCHORS[..2], &STRIDES[..1], 2, &opts, &lb);
        assert!(matches!(missing_level, Err(Error::Shape(_))));
        assert!(matches!(
            decode_and_nms(&[], &[], &[], 2, &opts, &lb),
            Err(Error::Shape(_))
        ));
        let flat = [Tensor::zeros(&[21, 16])];
        assert!(matches!(
            decode_and_nms(&flat, &ANCHORS[..1], &STRIDES[..1], 2, &opts, &lb),
            Err(Error::Shape(_))
        ));
        let empty = quiet_heads(2, &[(0, 4)]);
        let nothing = decode_and_nms(&empty, &ANCHORS[..1], &STRIDES[..1], 2, &opts, &lb);
        assert_eq!(nothing, Ok(vec![]));
        let no_classes = decode_and_nms(
            &quiet_heads(0, &[(4, 4)]),
            &ANCHORS[..1],
            &STRIDES[..1],
            0,
            &opts,
            &lb,
        );
        assert!(matches!(no_classes, Err(Error::InvalidInput(_))));
    }

    #[test]
    fn options_are_validated() {
        assert!(DetectOptions::default().validate().is_ok());
        let edge = DetectOptions {
            conf_threshold: 0.0,
            iou_threshold: 1.0,
            max_detections: 1,
        };
        assert!(edge.validate().is_ok());
        let base = DetectOptions::default();
        for bad in [
            DetectOptions {
                conf_threshold: 1.5,
                ..base
            },
            DetectOptions {
                conf_threshold: f32::NAN,
                ..base
            },
            DetectOptions {
                iou_threshold: -0.1,
                ..base
            },
            DetectOptions {
                iou_threshold: f32::INFINITY,
                ..base
            },
            DetectOptions {
                max_detections: 0,
                ..base
            },
        ] {
            let err = bad.validate().unwrap_err();
            assert!(matches!(err, Error::InvalidInput(_)), "{err}");
            let heads = quiet_heads(1, &[(1, 1)]);
            let lb = identity_letterbox(32, 32);
            assert!(decode_and_nms(&heads, &ANCHORS[..1], &STRIDES[..1], 1, &bad, &lb).is_err());
        }
    }
}
