//! Pictures for reports: line charts as PNG or SVG (plotters, the bundled DejaVu font, PNG
//! written here), for `citytwin compare`, `citytwin plot` and the examples.

/// A chart that could not be drawn.
#[derive(Debug, thiserror::Error)]
#[error("drawing {what}: {message}")]
pub struct ChartError {
    /// The chart's title.
    pub what: String,
    /// What went wrong.
    pub message: String,
}

/// What a line chart shows: `title` on top, `x_desc` and `y_desc` on the axes, one line per
/// named series of (x, y) points.
pub struct LineChart<'a> {
    /// Caption.
    pub title: &'a str,
    /// The x axis's description.
    pub x_desc: &'a str,
    /// The y axis's description.
    pub y_desc: &'a str,
    /// (name, points) per line.
    pub lines: &'a [(&'a str, &'a [(f64, f64)])],
}

/// The charts' size, pixels.
const SIZE: (u32, u32) = (900, 440);

/// A line chart as a PNG image.
pub fn line_chart(chart: &LineChart) -> Result<Vec<u8>, ChartError> {
    let (w, h) = SIZE;
    let mut rgb = vec![255u8; (w * h * 3) as usize];
    {
        let root = plotters::prelude::BitMapBackend::with_buffer(&mut rgb, (w, h));
        draw(chart, root)?;
    }
    Ok(encode_png(w, h, &rgb))
}

/// A line chart as an SVG document.
pub fn line_chart_svg(chart: &LineChart) -> Result<String, ChartError> {
    let mut svg = String::new();
    {
        let root = plotters::prelude::SVGBackend::with_string(&mut svg, SIZE);
        draw(chart, root)?;
    }
    Ok(svg)
}

/// Draw a line chart on any plotters backend.
fn draw<DB: plotters::prelude::DrawingBackend>(
    c: &LineChart,
    backend: DB,
) -> Result<(), ChartError> {
    use plotters::prelude::*;
    const COLOURS: [RGBColor; 6] = [
        RGBColor(31, 119, 180),
        RGBColor(214, 39, 40),
        RGBColor(44, 160, 44),
        RGBColor(255, 127, 14),
        RGBColor(148, 103, 189),
        RGBColor(140, 86, 75),
    ];
    register_font();
    let (mut x0, mut x1, mut y0, mut y1) =
        (f64::INFINITY, f64::NEG_INFINITY, 0.0f64, f64::NEG_INFINITY);
    for &(x, y) in c.lines.iter().flat_map(|(_, s)| s.iter()) {
        if !(x.is_finite() && y.is_finite()) {
            continue;
        }
        x0 = x0.min(x);
        x1 = x1.max(x);
        y0 = y0.min(y);
        y1 = y1.max(y);
    }
    if !x0.is_finite() {
        (x0, x1) = (0.0, 1.0);
    }
    if !x1.is_finite() || x1 <= x0 {
        x1 = x0 + 1.0;
    }
    if !y1.is_finite() || y1 <= y0 {
        y1 = y0 + 1.0;
    }
    y1 += 0.05 * (y1 - y0);
    let err = |e: &dyn std::fmt::Display| ChartError {
        what: c.title.to_string(),
        message: e.to_string(),
    };
    let root = backend.into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(c.title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(70)
        .build_cartesian_2d(x0..x1, y0..y1)
        .map_err(|e| err(&e))?;
    chart
        .configure_mesh()
        .x_desc(c.x_desc)
        .y_desc(c.y_desc)
        .y_label_formatter(&|v| crate::fmt_value(*v))
        .label_style(("sans-serif", 13))
        .draw()
        .map_err(|e| err(&e))?;
    for (i, (name, s)) in c.lines.iter().enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        chart
            .draw_series(LineSeries::new(
                s.iter()
                    .copied()
                    .filter(|p| p.0.is_finite() && p.1.is_finite()),
                colour.stroke_width(2),
            ))
            .map_err(|e| err(&e))?
            .label(*name)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 18, y)], colour.stroke_width(3))
            });
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font(("sans-serif", 13))
        .draw()
        .map_err(|e| err(&e))?;
    root.present().map_err(|e| err(&e))?;
    Ok(())
}

/// The charts' font (DejaVu Sans, `assets/fonts/`) as plotters' `sans-serif`, registered once.
pub fn register_font() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        const FONT: &[u8] = include_bytes!("../assets/fonts/DejaVuSans.ttf");
        // The font is built in and valid; a failure here would only lose the labels.
        let _ =
            plotters::style::register_font("sans-serif", plotters::style::FontStyle::Normal, FONT);
    });
}

/// An 8-bit RGB image (`w × h`, rows top to bottom) as PNG (no filtering; zlib from
/// miniz_oxide).
pub fn encode_png(w: u32, h: u32, rgb: &[u8]) -> Vec<u8> {
    fn crc32(bytes: &[u8]) -> u32 {
        let mut c = 0xFFFF_FFFFu32;
        for &b in bytes {
            c ^= b as u32;
            for _ in 0..8 {
                c = if c & 1 != 0 {
                    0xEDB8_8320 ^ (c >> 1)
                } else {
                    c >> 1
                };
            }
        }
        !c
    }
    fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        let mut body = kind.to_vec();
        body.extend_from_slice(data);
        out.extend_from_slice(&body);
        out.extend_from_slice(&crc32(&body).to_be_bytes());
    }
    let row = w as usize * 3;
    let mut raw = Vec::with_capacity((row + 1) * h as usize);
    for line in rgb.chunks(row) {
        raw.push(0); // filter: none
        raw.extend_from_slice(line);
    }
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&w.to_be_bytes());
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]); // 8-bit, truecolour, deflate, no filter, no interlace
    chunk(&mut out, b"IHDR", &ihdr);
    chunk(
        &mut out,
        b"IDAT",
        &miniz_oxide::deflate::compress_to_vec_zlib(&raw, 6),
    );
    chunk(&mut out, b"IEND", &[]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn png_is_well_formed() {
        // The CRC of "IEND" is fixed by the PNG spec.
        let png = encode_png(2, 1, &[255, 0, 0, 0, 0, 255]);
        assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"));
        assert!(png.ends_with(&[0, 0, 0, 0, b'I', b'E', b'N', b'D', 0xAE, 0x42, 0x60, 0x82]));
        let idat = png.windows(4).position(|w| w == b"IDAT").unwrap();
        let len = u32::from_be_bytes(png[idat - 4..idat].try_into().unwrap()) as usize;
        let raw =
            miniz_oxide::inflate::decompress_to_vec_zlib(&png[idat + 4..idat + 4 + len]).unwrap();
        assert_eq!(raw, vec![0, 255, 0, 0, 0, 0, 255]);
    }
}
