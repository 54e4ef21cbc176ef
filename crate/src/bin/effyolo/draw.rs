//! Annotated output images: each detection becomes a 2-pixel rectangle in its class colour
//! with a filled label tab (`person 87%`) set in the built-in bitmap font. All drawing is
//! clipped to the image, so boxes touching or leaving the border are safe.

use effyolo::model::Detection;
use image::{Rgb, RgbImage};

use crate::font;

/// Rectangle line width in pixels.
pub const LINE_WIDTH: i64 = 2;

/// YOLOv5's annotation palette (`utils/plots.py`), indexed by class id modulo its length, so
/// colours match the reference tooling's plots.
const PALETTE: [[u8; 3]; 20] = [
    [0xFF, 0x38, 0x38],
    [0xFF, 0x9D, 0x97],
    [0xFF, 0x70, 0x1F],
    [0xFF, 0xB2, 0x1D],
    [0xCF, 0xD2, 0x31],
    [0x48, 0xF9, 0x0A],
    [0x92, 0xCC, 0x17],
    [0x3D, 0xDB, 0x86],
    [0x1A, 0x93, 0x34],
    [0x00, 0xD4, 0xBB],
    [0x2C, 0x99, 0xA8],
    [0x00, 0xC2, 0xFF],
    [0x34, 0x45, 0x93],
    [0x64, 0x73, 0xFF],
    [0x00, 0x18, 0xEC],
    [0x84, 0x38, 0xFF],
    [0x52, 0x00, 0x85],
    [0xCB, 0x38, 0xFF],
    [0xFF, 0x95, 0xC8],
    [0xFF, 0x37, 0xC7],
];

/// The colour of a class's boxes.
pub fn class_colour(class_id: usize) -> Rgb<u8> {
    Rgb(PALETTE[class_id % PALETTE.len()])
}

/// Draws detections (best first, as detection returns them) with their label texts; the
/// best ends up on top.
pub fn annotate(img: &mut RgbImage, detections: &[(Detection, String)]) {
    for (detection, label) in detections.iter().rev() {
        draw_detection(img, detection, label);
    }
}

/// Draws one box (image pixel coordinates) and its label tab.
pub fn draw_detection(img: &mut RgbImage, detection: &Detection, label: &str) {
    let colour = class_colour(detection.class_id);
    // Coordinates are clamped just past the border (NaN becomes 0) so the integer maths
    // below cannot overflow; `fill_rect` clips the rest.
    let pixel = |v: f32, limit: u32| v.round().clamp(-1.0, limit as f32 + 1.0) as i64;
    let x1 = pixel(detection.x1, img.width());
    let y1 = pixel(detection.y1, img.height());
    let x2 = (pixel(detection.x2, img.width()) - 1).max(x1);
    let y2 = (pixel(detection.y2, img.height()) - 1).max(y1);
    fill_rect(img, x1, y1, x2 + 1, y1 + LINE_WIDTH, colour);
    fill_rect(img, x1, y2 + 1 - LINE_WIDTH, x2 + 1, y2 + 1, colour);
    fill_rect(img, x1, y1, x1 + LINE_WIDTH, y2 + 1, colour);
    fill_rect(img, x2 + 1 - LINE_WIDTH, y1, x2 + 1, y2 + 1, colour);

    let scale = font_scale(img);
    let (text_w, text_h) = font::text_size(label);
    let tab_w = i64::from(text_w) * scale + 2 * scale;
    let tab_h = i64::from(text_h) * scale + 2 * scale;
    // Above the box when there is room, otherwise just inside its top edge; shifted left
    // rather than running off the right border.
    let tab_x = x1.min(i64::from(img.width()) - tab_w).max(0);
    let tab_y = if y1 >= tab_h { y1 - tab_h } else { y1.max(0) };
    fill_rect(img, tab_x, tab_y, tab_x + tab_w, tab_y + tab_h, colour);
    draw_text(
        img,
        tab_x + scale,
        tab_y + scale,
        label,
        scale,
        text_colour(colour),
    );
}

/// Font pixels per glyph cell: 1 up to 800 pixels on the long side, then one more per 800.
fn font_scale(img: &RgbImage) -> i64 {
    (1 + i64::from(img.width().max(img.height())) / 800).min(4)
}

/// Black on light tabs, white on dark ones.
fn text_colour(background: Rgb<u8>) -> Rgb<u8> {
    let [r, g, b] = background.0.map(f32::from);
    if 0.299 * r + 0.587 * g + 0.114 * b > 140.0 {
        Rgb([0, 0, 0])
    } else {
        Rgb([255, 255, 255])
    }
}

fn draw_text(img: &mut RgbImage, x: i64, y: i64, text: &str, scale: i64, colour: Rgb<u8>) {
    for (i, c) in text.chars().enumerate() {
        let left = x + i as i64 * i64::from(font::ADVANCE) * scale;
        for (row, bits) in font::glyph(c).into_iter().enumerate() {
            for col in 0..font::GLYPH_WIDTH {
                if bits & (1 << (font::GLYPH_WIDTH - 1 - col)) != 0 {
                    let px = left + i64::from(col) * scale;
                    let py = y + row as i64 * scale;
                    fill_rect(img, px, py, px + scale, py + scale, colour);
                }
            }
        }
    }
}

/// Fills columns `x0..x1` and rows `y0..y1`, clipped to the image.
fn fill_rect(img: &mut RgbImage, x0: i64, y0: i64, x1: i64, y1: i64, colour: Rgb<u8>) {
    let clip = |v: i64, limit: u32| v.clamp(0, i64::from(limit)) as u32;
    let (x0, x1) = (clip(x0, img.width()), clip(x1, img.width()));
    let (y0, y1) = (clip(y0, img.height()), clip(y1, img.height()));
    for y in y0..y1 {
        for x in x0..x1 {
            img.put_pixel(x, y, colour);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GREY: Rgb<u8> = Rgb([90, 90, 90]);

    fn detection(x1: f32, y1: f32, x2: f32, y2: f32, class_id: usize) -> Detection {
        Detection {
            x1,
            y1,
            x2,
            y2,
            score: 0.5,
            class_id,
        }
    }

    #[test]
    fn draws_a_two_pixel_frame_and_a_tab_above() {
        let mut img = RgbImage::from_pixel(100, 80, GREY);
        draw_detection(&mut img, &detection(20.0, 30.0, 60.0, 70.0, 1), "a 1%");
        let colour = class_colour(1);
        for (x, y) in [(20, 30), (21, 31), (59, 69), (58, 50), (40, 68)] {
            assert_eq!(*img.get_pixel(x, y), colour, "({x}, {y})");
        }
        for (x, y) in [(22, 32), (40, 50), (57, 67), (60, 50), (19, 50)] {
            assert_eq!(*img.get_pixel(x, y), GREY, "({x}, {y})");
        }
        // Tab: 4 glyphs -> 23 + 2 wide, 8 + 2 high, ending on the box's top edge.
        assert_eq!(*img.get_pixel(20, 20), colour);
        assert_eq!(*img.get_pixel(44, 29), colour);
        assert_eq!(*img.get_pixel(45, 25), GREY);
        assert_eq!(*img.get_pixel(20, 19), GREY);
        // Some text pixels in the contrast colour ('a' starts on its third row).
        assert_eq!(*img.get_pixel(22, 23), text_colour(colour));
    }

    #[test]
    fn label_moves_inside_at_the_top_and_left_at_the_right_edge() {
        let mut img = RgbImage::from_pixel(40, 40, GREY);
        draw_detection(&mut img, &detection(30.0, 0.0, 40.0, 20.0, 0), "dog 50%");
        let colour = class_colour(0);
        // 7 glyphs: tab 43 wide does not fit, so it starts at 0, inside the box's top.
        assert_eq!(*img.get_pixel(0, 0), colour);
        assert_eq!(*img.get_pixel(0, 9), colour);
        assert_eq!(*img.get_pixel(0, 10), GREY);
    }

    #[test]
    fn out_of_range_boxes_are_clipped() {
        let mut img = RgbImage::from_pixel(16, 16, GREY);
        for d in [
            detection(-50.0, -50.0, 500.0, 500.0, 3),
            detection(f32::NAN, f32::INFINITY, f32::NEG_INFINITY, 1e30, 7),
            detection(100.0, 100.0, 120.0, 120.0, 99),
        ] {
            draw_detection(&mut img, &d, "x");
        }
        annotate(
            &mut img,
            &[(detection(2.0, 2.0, 2.0, 2.0, 0), String::new())],
        );
    }

    #[test]
    fn colours_cycle_through_the_palette() {
        assert_eq!(class_colour(0), Rgb([0xFF, 0x38, 0x38]));
        assert_eq!(class_colour(21), class_colour(1));
        assert_eq!(text_colour(Rgb([255, 255, 255])), Rgb([0, 0, 0]));
        assert_eq!(text_colour(Rgb([0, 0, 0x80])), Rgb([255, 255, 255]));
    }
}
