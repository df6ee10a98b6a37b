//! Trend fitting over a series' recent history: steady climb, step, spike,
//! flat, falling; the onset of a rise and the time to exhaustion.
//!
//! Pure arithmetic over points; no decisions about causes.

use chrono::TimeDelta;

use super::input::Point;
use crate::model::Time;

/// The jump search looks at this many points at most.
const MAX_JUMP_POINTS: usize = 240;
/// A rise within this span counts as one jump.
pub const JUMP_SPAN: TimeDelta = TimeDelta::minutes(30);
/// A rise that happened within this long before the alert is a spike.
pub const SPIKE_WINDOW: TimeDelta = TimeDelta::hours(1);

/// The shape of a series' recent history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// Fewer than three points: nothing to fit.
    Insufficient,
    Flat,
    Falling,
    /// Rising steadily (a good linear fit over at least 30 minutes).
    Climb,
    /// One sudden rise long enough ago that the level stayed.
    Step,
    /// One sudden rise shortly before the alert.
    Spike,
    /// Up and down without a clear shape.
    Noisy,
}

/// The fitted trend of a series.
#[derive(Debug, Clone, PartialEq)]
pub struct Trend {
    pub shape: Shape,
    /// Least-squares slope, per hour.
    pub slope_per_hour: f64,
    /// Coefficient of determination of the linear fit.
    pub r2: f64,
    /// Where the rise began (the first point of a climb, the point before
    /// the jump of a step or spike).
    pub onset: Point,
    /// The point the jump reached (step and spike).
    pub jump_to: Option<Point>,
    pub last: Point,
    /// Time until the series reaches its limit at the fitted slope.
    pub exhaustion: Option<TimeDelta>,
}

/// Fits a trend to points (oldest first). `limit` is the value at which
/// the resource is exhausted (100 for a percentage), when there is one.
pub fn fit(points: &[Point], limit: Option<f64>) -> Trend {
    let first = points.first().copied().unwrap_or(Point {
        at: Time::default(),
        value: 0.0,
    });
    let last = points.last().copied().unwrap_or(first);
    let mut t = Trend {
        shape: Shape::Insufficient,
        slope_per_hour: 0.0,
        r2: 0.0,
        onset: first,
        jump_to: None,
        last,
        exhaustion: None,
    };
    if points.len() == 2 && last.value > first.value * 1.3 && last.value - first.value > 1e-9 {
        // Two points: only a large rise says anything (a jump between them).
        t.jump_to = Some(last);
        t.shape = if last.at - first.at <= SPIKE_WINDOW {
            Shape::Spike
        } else {
            Shape::Step
        };
        return t;
    }
    if points.len() < 3 {
        return t;
    }
    let n = points.len() as f64;
    let xs: Vec<f64> = points
        .iter()
        .map(|p| (p.at - first.at).num_milliseconds() as f64 / 3_600_000.0)
        .collect();
    let mx = xs.iter().sum::<f64>() / n;
    let my = points.iter().map(|p| p.value).sum::<f64>() / n;
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (x, p) in xs.iter().zip(points) {
        sxy += (x - mx) * (p.value - my);
        sxx += (x - mx) * (x - mx);
        syy += (p.value - my) * (p.value - my);
    }
    if sxx > 0.0 {
        t.slope_per_hour = sxy / sxx;
        t.r2 = if syy > 0.0 {
            (sxy * sxy) / (sxx * syy)
        } else {
            0.0
        };
    }
    let (min, max) = points.iter().fold((f64::MAX, f64::MIN), |(lo, hi), p| {
        (lo.min(p.value), hi.max(p.value))
    });
    let range = max - min;
    if range <= 1e-9 * max.abs().max(1.0) {
        t.shape = Shape::Flat;
        return t;
    }
    // The largest rise within any 30 minutes: a jump, even when sampled
    // several times on the way up.
    let mut gaps: Vec<TimeDelta> = points.windows(2).map(|w| w[1].at - w[0].at).collect();
    gaps.sort();
    let usual_gap = gaps[gaps.len() / 2];
    // Rises within the span, over at most MAX_JUMP_POINTS points (a dense
    // series is thinned evenly, keeping its last point).
    let step = points.len().div_ceil(MAX_JUMP_POINTS);
    let idx: Vec<usize> = (0..points.len())
        .filter(|i| i % step == 0 || *i == points.len() - 1)
        .collect();
    let mut biggest = f64::MIN;
    each_rise(points, &idx, usual_gap * 2 * step as i32, |_, _, d| {
        biggest = biggest.max(d);
    });
    // The quickest of the rises nearly as big as the biggest.
    let (mut from, mut to, mut jump) = (0, 0, f64::MIN);
    let mut quickest = TimeDelta::MAX;
    each_rise(points, &idx, usual_gap * 2 * step as i32, |i, j, d| {
        let took = points[j].at - points[i].at;
        if d >= 0.9 * biggest && took < quickest {
            (from, to, jump, quickest) = (i, j, d, took);
        }
    });
    let span = last.at - first.at;
    // Sudden means the rise took a small part of the history seen: a
    // steady climb over all of it is a climb at any time scale.
    let quick = (points[to].at - points[from].at) * 3 <= span;
    if quick && jump >= 0.6 * range && last.value >= points[from].value + 0.5 * jump {
        t.onset = points[from];
        t.jump_to = Some(points[to]);
        t.shape = if last.at - points[from].at <= SPIKE_WINDOW {
            Shape::Spike
        } else {
            Shape::Step
        };
    } else if t.slope_per_hour > 0.0
        // Half an hour of history, or enough points to see a shape (a
        // compressed clock, a fast leak).
        && (span >= TimeDelta::minutes(30) || points.len() >= 10)
        && last.value > first.value
        && (t.r2 >= 0.6 || rising_thirds(points, range))
    {
        t.shape = Shape::Climb;
    } else if t.slope_per_hour < 0.0 && t.r2 >= 0.6 {
        t.shape = Shape::Falling;
    } else {
        t.shape = Shape::Noisy;
    }
    if let Some(limit) = limit
        && t.slope_per_hour > 0.0
        && last.value < limit
    {
        let hours = (limit - last.value) / t.slope_per_hour;
        if hours.is_finite() && hours < 24.0 * 365.0 {
            t.exhaustion = Some(TimeDelta::milliseconds((hours * 3_600_000.0) as i64));
        }
    }
    t
}

/// A noisy climb (a sawtooth of garbage collection, say): the mean of each
/// third of the points is higher than the one before, by a fair share of
/// the range overall.
fn rising_thirds(points: &[Point], range: f64) -> bool {
    if points.len() < 6 {
        return false;
    }
    let n = points.len() / 3;
    let mean = |s: &[Point]| s.iter().map(|p| p.value).sum::<f64>() / s.len() as f64;
    let (a, b, c) = (
        mean(&points[..n]),
        mean(&points[n..2 * n]),
        mean(&points[2 * n..]),
    );
    a < b && b < c && c - a >= 0.4 * range
}

/// Calls `f(from, to, rise)` for every pair of the indexed points within
/// `JUMP_SPAN`; adjacent points always count (a sparse series shows a step
/// as one interval) unless their gap exceeds `max_gap`.
fn each_rise(
    points: &[Point],
    idx: &[usize],
    max_gap: TimeDelta,
    mut f: impl FnMut(usize, usize, f64),
) {
    for (a, &i) in idx.iter().enumerate() {
        for (b, &j) in idx[a + 1..].iter().enumerate() {
            let gap = points[j].at - points[i].at;
            if gap > JUMP_SPAN && !(b == 0 && gap <= max_gap) {
                break;
            }
            f(i, j, points[j].value - points[i].value);
        }
    }
}
