//! Draws the weekly trend chart as a PNG: relevant stories per day for each
//! primary tag, this week bold with markers and the week before as a faint
//! line of the same colour, labelled axes, days named in the digest's time
//! zone, sized for a phone (1280×720, the shape Telegram shows uncropped).
//!
//! plotters draws into an RGB buffer (its bitmap backend without the `image`
//! crate) and the `png` crate encodes it. Text is drawn with DejaVu Sans,
//! compiled into the binary (`assets/fonts/`, Bitstream Vera licence beside
//! it): a server has no fonts to rely on, and plotters' `ttf` feature would
//! look for system fonts at run time.

use std::sync::OnceLock;

use anyhow::{Context, anyhow};
use plotters::coord::ranged1d::SegmentValue;
use plotters::prelude::*;
use plotters::style::{FontStyle, register_font};

use super::WeeklyReport;

/// The chart's size in pixels.
pub const WIDTH: u32 = 1280;
pub const HEIGHT: u32 = 720;

/// Each primary tag's colour, in `PRIMARY_GROUPS` order (blue, vermilion:
/// apart for colour-blind readers too). The week before is the same colour
/// washed out ([`faint`]).
pub const SERIES_COLOURS: [(u8, u8, u8); 2] = [(0x1f, 0x5f, 0xbf), (0xd5, 0x4a, 0x12)];

/// The name the compiled-in font is registered under with plotters.
const FONT: &str = "cstowatch-dejavu-sans";
static FONT_BYTES: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");

/// `colour` washed out towards white, for the previous week's line.
pub fn faint((r, g, b): (u8, u8, u8)) -> (u8, u8, u8) {
    let wash = |c: u8| 255 - ((255 - u16::from(c)) * 2 / 5) as u8;
    (wash(r), wash(g), wash(b))
}

fn rgb((r, g, b): (u8, u8, u8)) -> RGBColor {
    RGBColor(r, g, b)
}

/// Registers the compiled-in font once per process.
fn font_ready() -> anyhow::Result<()> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok = *REGISTERED.get_or_init(|| register_font(FONT, FontStyle::Normal, FONT_BYTES).is_ok());
    if ok {
        Ok(())
    } else {
        Err(anyhow!(
            "the chart font compiled into cstowatch is not a usable TrueType font"
        ))
    }
}

/// Renders `report` as a 1280×720 PNG.
pub fn render_png(report: &WeeklyReport) -> anyhow::Result<Vec<u8>> {
    font_ready()?;
    let mut pixels = vec![0u8; (WIDTH * HEIGHT * 3) as usize];
    draw(report, &mut pixels).map_err(|e| anyhow!("cannot draw the weekly chart: {e}"))?;
    let mut png = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut png, WIDTH, HEIGHT);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder
            .write_header()
            .context("cannot encode the weekly chart as PNG")?;
        writer
            .write_image_data(&pixels)
            .context("cannot encode the weekly chart as PNG")?;
    }
    Ok(png)
}

fn draw(report: &WeeklyReport, pixels: &mut [u8]) -> Result<(), Box<dyn std::error::Error>> {
    let root = BitMapBackend::with_buffer(pixels, (WIDTH, HEIGHT)).into_drawing_area();
    root.fill(&WHITE)?;
    let highest = report
        .series
        .iter()
        .flat_map(|s| s.this_week.iter().chain(&s.previous_week))
        .copied()
        .max()
        .unwrap_or(0);
    // Headroom above the highest point keeps the legend off the lines.
    let y_top = (highest + highest / 3 + 2).max(4);
    let days = report.week.days;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!("Relevant stories per day · {}", report.week.title()),
            (FONT, 36).into_font().color(&BLACK),
        )
        .margin(24)
        .x_label_area_size(64)
        .y_label_area_size(72)
        // Segments 0..=6, one per day, each point at its centre.
        .build_cartesian_2d((0u32..6u32).into_segmented(), 0u32..y_top)?;
    let day_label = |value: &SegmentValue<u32>| match value {
        SegmentValue::CenterOf(i) => days
            .get(*i as usize)
            .map(|d| d.strftime("%a %-d %b").to_string())
            .unwrap_or_default(),
        _ => String::new(),
    };
    chart
        .configure_mesh()
        .disable_x_mesh()
        .light_line_style(RGBColor(0xee, 0xee, 0xee))
        .bold_line_style(RGBColor(0xd8, 0xd8, 0xd8))
        .x_labels(7)
        .y_labels((y_top as usize + 1).min(11))
        .x_label_formatter(&day_label)
        .y_label_formatter(&|v| v.to_string())
        .x_desc(format!("Day ({})", report.week.zone_name))
        .y_desc("Stories")
        .label_style((FONT, 22).into_font().color(&RGBColor(0x33, 0x33, 0x33)))
        .axis_desc_style((FONT, 24).into_font().color(&BLACK))
        .draw()?;

    let at = |counts: &[u32; 7]| {
        counts
            .iter()
            .enumerate()
            .map(|(i, &n)| (SegmentValue::CenterOf(i as u32), n))
            .collect::<Vec<_>>()
    };
    // Every faint line first, so none is drawn over this week's.
    for (series, colour) in report.series.iter().zip(SERIES_COLOURS) {
        let washed = rgb(faint(colour));
        let total: u32 = series.previous_week.iter().sum();
        chart
            .draw_series(LineSeries::new(at(&series.previous_week), washed.stroke_width(3)))?
            .label(format!("{}, week before: {total}", series.label))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 32, y)], washed.stroke_width(3)));
    }
    for (series, colour) in report.series.iter().zip(SERIES_COLOURS) {
        let bold = rgb(colour);
        let total: u32 = series.this_week.iter().sum();
        chart
            .draw_series(LineSeries::new(at(&series.this_week), bold.stroke_width(5)))?
            .label(format!("{}: {total} stories", series.label))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 32, y)], bold.stroke_width(5)));
        chart.draw_series(
            at(&series.this_week)
                .into_iter()
                .map(|point| Circle::new(point, 7, bold.filled())),
        )?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .margin(12)
        .legend_area_size(40)
        .background_style(WHITE.mix(0.9))
        .border_style(RGBColor(0xbb, 0xbb, 0xbb))
        .label_font((FONT, 22).into_font().color(&BLACK))
        .draw()?;
    root.present()?;
    Ok(())
}
