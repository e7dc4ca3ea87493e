//! The arithmetic of learning, pure: pooling one cell under the brand's
//! `[privacy]` rule, the Beta–Binomial posterior of an arm, the choice of
//! the value in force and Thompson sampling's draw.

use std::collections::BTreeMap;

use touchpoint_common::learning::{Arm, ArmFigures};
use touchpoint_common::report::pool::{complement, primary, Dealers, PoolRule, Suppression};
use touchpoint_common::report::stats::Tally;

/// One dealer's counts in one cell.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub sent: u64,
    pub responses: u64,
    pub control: u64,
    pub control_responses: u64,
}

impl Counts {
    pub fn add(&mut self, o: &Counts) {
        self.sent += o.sent;
        self.responses += o.responses;
        self.control += o.control;
        self.control_responses += o.control_responses;
    }

    fn tally(&self) -> Tally {
        Tally {
            sent: self.sent,
            responses: self.responses,
            control: self.control,
            control_responses: self.control_responses,
            ..Tally::default()
        }
    }
}

/// The pooled counts of one cell and its dealers, if the cell passes the
/// rule (`common::report::pool::primary`, unchanged: at least
/// `min_dealers` dealers, none above `max_dealer_share` of its rows);
/// `None` otherwise: nothing of it is used.
pub fn pool_cell(rule: &PoolRule, dealers: &BTreeMap<u32, Counts>) -> Option<(Counts, u32)> {
    let tallies: Vec<Tally> = dealers.values().map(Counts::tally).collect();
    if primary(rule, &tallies).is_some() {
        return None;
    }
    let mut sum = Counts::default();
    for c in dealers.values() {
        sum.add(c);
    }
    let n = tallies.iter().filter(|t| t.exposures() > 0).count() as u32;
    Some((sum, n))
}

/// A cell's dealers as the pooled report's rule reads them.
fn dealers_of(cell: &BTreeMap<u32, Counts>) -> Dealers {
    cell.iter().map(|(d, c)| (*d, c.tally())).collect()
}

fn check(rule: &PoolRule, dealers: &Dealers) -> Option<Suppression> {
    let all: Vec<Tally> = dealers.values().copied().collect();
    primary(rule, &all)
}

/// The cells of one partition (a service and channel's lead arms, or the
/// slot arms of a channel's services pooled: each message is in at most
/// one of them), pooled: each must pass the rule, and so must the failing
/// ones together, since the partition's total is shown elsewhere (the
/// other partitions count the same messages, the slot partitions summed
/// over the services pooled): while they do not, the smallest passing cell is held
/// back too (`common::report::pool::complement`, the pooled report's
/// complementary suppression). `None`: the cell is not used nor shown.
pub fn pool_partition(
    rule: &PoolRule,
    cells: &[BTreeMap<u32, Counts>],
) -> Vec<Option<(Counts, u32)>> {
    let dealers: Vec<Dealers> = cells.iter().map(dealers_of).collect();
    let mut hidden: Vec<Option<Suppression>> = dealers.iter().map(|d| check(rule, d)).collect();
    complement(&|d| check(rule, d), &dealers, &mut hidden);
    cells
        .iter()
        .zip(hidden)
        .map(|(c, h)| match h {
            None => pool_cell(rule, c),
            Some(_) => None,
        })
        .collect()
}

/// The control baselines of one service, one per lead (ascending), pooled.
/// They are no partition: a lead's baseline counts the control members
/// whose window for that lead has closed, so two leads' baselines differ
/// by the members of a band of due days, and subtracting two shown
/// baselines gives that band's counts. So the band between two neighbouring
/// baselines in use (per dealer, the difference of its members) must pass
/// the rule as a cell of its own (a band without a member of any dealer
/// shows no one); while one does not, the smaller of the two baselines is
/// held back. Bands between baselines further apart are unions of
/// neighbouring ones, which pass when those do. A baseline must have
/// control members to be used.
pub fn pool_baselines(
    rule: &PoolRule,
    cells: &[BTreeMap<u32, Counts>],
) -> Vec<Option<(Counts, u32)>> {
    let mut used: Vec<bool> = cells
        .iter()
        .map(|c| pool_cell(rule, c).is_some_and(|(sum, _)| sum.control > 0))
        .collect();
    let members = |c: &BTreeMap<u32, Counts>| c.values().map(|x| x.control).sum::<u64>();
    let band = |a: &BTreeMap<u32, Counts>, b: &BTreeMap<u32, Counts>| -> Dealers {
        let mut out = Dealers::new();
        for d in a.keys().chain(b.keys()) {
            let (x, y) = (
                a.get(d).copied().unwrap_or_default(),
                b.get(d).copied().unwrap_or_default(),
            );
            out.insert(
                *d,
                Tally {
                    control: x.control.abs_diff(y.control),
                    control_responses: x.control_responses.abs_diff(y.control_responses),
                    ..Tally::default()
                },
            );
        }
        out
    };
    loop {
        let shown: Vec<usize> = (0..cells.len()).filter(|&i| used[i]).collect();
        let bad = shown.windows(2).find(|w| {
            let diff = band(&cells[w[0]], &cells[w[1]]);
            diff.values().any(|t| t.control > 0) && check(rule, &diff).is_some()
        });
        match bad {
            None => break,
            Some(w) => {
                let drop = if members(&cells[w[0]]) <= members(&cells[w[1]]) {
                    w[0]
                } else {
                    w[1]
                };
                used[drop] = false;
            }
        }
    }
    cells
        .iter()
        .zip(used)
        .map(|(c, u)| if u { pool_cell(rule, c) } else { None })
        .collect()
}

/// Pseudo-messages the prior is worth: the posterior follows the data
/// once an arm has a few hundred messages, and a handful cannot move it.
pub const PRIOR_STRENGTH: f64 = 20.0;

/// The prior Beta(α, β) every arm starts from: centred on `mean` (the
/// policy's arm's pooled rate) with [`PRIOR_STRENGTH`]; uniform without one.
pub fn prior(mean: Option<f64>) -> (f64, f64) {
    match mean {
        Some(m) => {
            let m = m.clamp(0.001, 0.999);
            (m * PRIOR_STRENGTH, (1.0 - m) * PRIOR_STRENGTH)
        }
        None => (1.0, 1.0),
    }
}

/// An arm's figures: the posterior from the prior and its pooled counts
/// (a cell that fails the rule adds nothing), and the objective
/// (posterior mean − baseline) × value − cost, cents per message.
pub fn arm(
    arm: Arm,
    pooled: Option<(Counts, u32)>,
    prior: (f64, f64),
    baseline: f64,
    value_cents: i64,
    cost_cents: i64,
) -> ArmFigures {
    let (c, dealers) = pooled.unwrap_or_default();
    let alpha = prior.0 + c.responses as f64;
    let beta = prior.1 + (c.sent - c.responses.min(c.sent)) as f64;
    let mean = alpha / (alpha + beta);
    ArmFigures {
        arm,
        passes: pooled.is_some(),
        dealers,
        sent: c.sent,
        responses: c.responses,
        control: c.control,
        control_responses: c.control_responses,
        alpha,
        beta,
        baseline,
        objective: (mean - baseline) * value_cents as f64 - cost_cents as f64,
    }
}

/// How sure learning must be that an arm beats the value in force before
/// it replaces it: its (smoothed) incremental response must exceed the one
/// in force by this many standard deviations of the difference (one-sided
/// 95 %). Without it the best of many thin arms wins by luck (the winner's
/// curse) and the value in force wanders; measured against the value in
/// force (not the policy's), it is also the hysteresis that keeps a
/// learned value, and its version, from flapping between two arms that
/// are about as good. One-sided 90 %: with the smoothed estimates (whose
/// best is far less the luckiest of many thin arms than an independent
/// arm's) 95 % kept the policy's lead through a whole 20-dealer season
/// where the truth's optimum was a step or two away (EVALUATION.md).
pub const EVIDENCE_Z: f64 = 1.282;

/// The standard normal quantile: the z with Φ(z) = `p`, for `p` in
/// (0, 1) (Acklam's rational approximation with its tails, relative error
/// below 1.2e-9; clamped to ±8.3 outside).
pub fn normal_quantile(p: f64) -> f64 {
    const A: [f64; 6] = [
        -3.969_683_028_665_376e1,
        2.209_460_984_245_205e2,
        -2.759_285_104_469_687e2,
        1.383_577_518_672_69e2,
        -3.066_479_806_614_716e1,
        2.506_628_277_459_239,
    ];
    const B: [f64; 5] = [
        -5.447_609_879_822_406e1,
        1.615_858_368_580_409e2,
        -1.556_989_798_598_866e2,
        6.680_131_188_771_972e1,
        -1.328_068_155_288_572e1,
    ];
    const C: [f64; 6] = [
        -7.784_894_002_430_293e-3,
        -3.223_964_580_411_365e-1,
        -2.400_758_277_161_838,
        -2.549_732_539_343_734,
        4.374_664_141_464_968,
        2.938_163_982_698_783,
    ];
    const D: [f64; 4] = [
        7.784_695_709_041_462e-3,
        3.224_671_290_700_398e-1,
        2.445_134_137_142_996,
        3.754_408_661_907_416,
    ];
    const LOW: f64 = 0.024_25;
    let p = p.clamp(1e-16, 1.0 - 1e-16);
    let tail = |q: f64| {
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    };
    if p < LOW {
        tail((-2.0 * p.ln()).sqrt())
    } else if p > 1.0 - LOW {
        -tail((-2.0 * (1.0 - p).ln()).sqrt())
    } else {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    }
}

/// The evidence the first slot learned needs over the rest of its
/// partition, in standard deviations of the difference: one-sided 90 %
/// ([`EVIDENCE_Z`]) for the family of `arms` compared at once (Bonferroni:
/// the best of ten hours is the luckiest of ten, about 1.5 standard
/// deviations above the rest when no hour is better). 1.28 for one arm,
/// 1.64 for two, 2.05 for five weekdays, 2.33 for ten hours.
pub fn first_slot_z(arms: usize) -> f64 {
    normal_quantile(1.0 - 0.10 / arms.max(1) as f64)
}

/// Which lead arms the choice counts: an arm whose cell passes the rule
/// and, while any lead has a control baseline in use, has its own (a
/// baseline of 0 would flatter it). Without any baseline at all (no
/// control group) the arms compare on their response.
pub fn usable_lead(arms: &[ArmFigures]) -> impl Fn(&ArmFigures) -> bool {
    let baselined = arms.iter().any(ArmFigures::has_baseline);
    move |a: &ArmFigures| a.passes && (!baselined || a.has_baseline())
}

/// The prior standard deviation of the lead curve's second difference,
/// in incremental response per grid step squared: from one lead to the
/// next, the slope of the curve changes by about three points, rarely more.
/// The smaller it is, the more neighbouring leads lend each other
/// strength (and the flatter a narrow peak comes out).
pub const CURVATURE_SD: f64 = 0.03;

/// The smoothing penalty in use, 1 / [`CURVATURE_SD`]².
pub const LAMBDA: f64 = 1.0 / (CURVATURE_SD * CURVATURE_SD);

/// The variance of an arm's posterior response rate (Beta).
pub fn posterior_variance(a: &ArmFigures) -> f64 {
    let n = a.alpha + a.beta;
    a.alpha * a.beta / (n * n * (n + 1.0))
}

/// The variance of an arm's control baseline (a binomial share of its
/// `control` members).
fn baseline_variance(a: &ArmFigures) -> f64 {
    if a.control > 0 {
        a.baseline * (1.0 - a.baseline) / a.control as f64
    } else {
        0.0
    }
}

/// The incremental response of each lead of an evenly spaced grid,
/// smoothed over the grid, with its posterior covariance.
#[derive(Clone, Debug, PartialEq)]
pub struct Smoothed {
    pub mean: Vec<f64>,
    pub cov: Vec<Vec<f64>>,
}

/// Borrows strength between neighbouring leads: the true incremental
/// response is a smooth curve over the lead grid, so each lead's estimate
/// is the posterior mean of a Gaussian model whose prior is a second-order
/// random walk over the grid (its second differences are N(0,
/// [`CURVATURE_SD`]²)) and whose data are the arms' own incremental
/// responses (posterior mean − baseline) with their posterior variances.
/// This is the Whittaker–Henderson smoother (Whittaker 1923; Eilers 2003,
/// "A perfect smoother") read as a Bayesian hierarchical model, an
/// intrinsic Gaussian Markov random field (Rue & Held 2005, *Gaussian
/// Markov Random Fields*, ch. 3): mean = (W + λ D′D)⁻¹ W x and covariance
/// (W + λ D′D)⁻¹, W the data precisions, D the second differences,
/// λ = 1 / CURVATURE_SD² ([`LAMBDA`]). It penalises curvature, not level, so a lead
/// with many messages (the policy's) does not pull its neighbours to its
/// own value where the curve is straight.
///
/// `arms` are the grid's leads in order; an arm not `usable` (its cell or
/// its baseline fails the privacy rule) adds no data (weight 0). `None`
/// with fewer than two usable arms (a line through one point is no
/// estimate) or a singular system.
///
/// `lambda` is the penalty: 1 / [`CURVATURE_SD`]² in use, 0 for each arm
/// on its own data.
pub fn smooth(
    arms: &[ArmFigures],
    usable: &dyn Fn(&ArmFigures) -> bool,
    lambda: f64,
) -> Option<Smoothed> {
    let k = arms.len();
    let used = arms.iter().filter(|a| usable(a)).count();
    if used < 2 || (k < 3 && used < k) {
        return None;
    }
    let mut a = vec![vec![0.0; k]; k];
    let mut wx = vec![0.0; k];
    for (i, arm) in arms.iter().enumerate() {
        if usable(arm) {
            let w = 1.0 / posterior_variance(arm).max(1e-12);
            a[i][i] += w;
            wx[i] = w * (arm.mean() - arm.baseline);
        }
    }
    for j in 0..k.saturating_sub(2) {
        let d = [(j, 1.0), (j + 1, -2.0), (j + 2, 1.0)];
        for &(p, x) in &d {
            for &(q, y) in &d {
                a[p][q] += lambda * x * y;
            }
        }
    }
    let cov = invert(a)?;
    let mean = (0..k)
        .map(|i| (0..k).map(|j| cov[i][j] * wx[j]).sum())
        .collect();
    Some(Smoothed { mean, cov })
}

/// The inverse of a small symmetric positive definite matrix
/// (Gauss–Jordan with partial pivoting); `None` when singular.
fn invert(mut a: Vec<Vec<f64>>) -> Option<Vec<Vec<f64>>> {
    let n = a.len();
    let mut inv: Vec<Vec<f64>> = (0..n)
        .map(|i| (0..n).map(|j| if i == j { 1.0 } else { 0.0 }).collect())
        .collect();
    let scale = a
        .iter()
        .flatten()
        .fold(0.0f64, |m, x| m.max(x.abs()))
        .max(1e-300);
    for col in 0..n {
        let pivot = (col..n).max_by(|&x, &y| a[x][col].abs().total_cmp(&a[y][col].abs()))?;
        if a[pivot][col].abs() <= scale * 1e-12 {
            return None;
        }
        a.swap(col, pivot);
        inv.swap(col, pivot);
        let p = a[col][col];
        for j in 0..n {
            a[col][j] /= p;
            inv[col][j] /= p;
        }
        for row in 0..n {
            if row != col {
                let f = a[row][col];
                if f != 0.0 {
                    for j in 0..n {
                        a[row][j] -= f * a[col][j];
                        inv[row][j] -= f * inv[col][j];
                    }
                }
            }
        }
    }
    Some(inv)
}

/// The lead arm to use, of `arms` (the grid's leads in order): the value
/// `in_force` stays unless another usable arm's smoothed incremental
/// response ([`smooth`]) beats its own by [`EVIDENCE_Z`] standard
/// deviations of the difference; of those that do, the best (so the
/// value in force stays when the smoothed best beats it by less: hysteresis). The `policy`
/// arm when the value in force is not usable, and always while the
/// policy's own arm is not usable (nothing to compare with, so no
/// evidence). Ranking by incremental response is ranking by objective:
/// the arms of one channel cost the same and are worth the same.
///
/// The difference's variance: the smoothed estimates' (their covariance
/// counted: neighbours share data), and one baseline's. Two leads'
/// baselines count the same control members over windows a step apart
/// (most of their days shared), so their difference varies far less than
/// two independent baselines would: 2σ²(1 − ρ), at most σ² for a
/// correlation ρ of one half or more.
pub fn best(
    arms: &[ArmFigures],
    usable: &dyn Fn(&ArmFigures) -> bool,
    in_force: Arm,
    policy: Arm,
) -> Arm {
    best_with(arms, usable, in_force, policy, LAMBDA)
}

/// [`best`] with the smoothing penalty `lambda` (0: each arm on its own
/// data, the rule before smoothing).
pub fn best_with(
    arms: &[ArmFigures],
    usable: &dyn Fn(&ArmFigures) -> bool,
    in_force: Arm,
    policy: Arm,
    lambda: f64,
) -> Arm {
    let at = |arm: Arm| arms.iter().position(|a| a.arm == arm && usable(a));
    let Some(p) = at(policy) else {
        return policy;
    };
    let (held, c) = match at(in_force) {
        Some(i) => (in_force, i),
        None => (policy, p),
    };
    let Some(sm) = smooth(arms, usable, lambda) else {
        return held;
    };
    let mut chosen = (held, sm.mean[c]);
    for (i, a) in arms.iter().enumerate() {
        if i == c || !usable(a) {
            continue;
        }
        let gain = sm.mean[i] - sm.mean[c];
        let variance = sm.cov[i][i] + sm.cov[c][c] - 2.0 * sm.cov[i][c]
            + baseline_variance(a).max(baseline_variance(&arms[c]));
        if gain > EVIDENCE_Z * variance.max(0.0).sqrt() && sm.mean[i] > chosen.1 {
            chosen = (a.arm, sm.mean[i]);
        }
    }
    chosen.0
}

/// A deterministic random stream (SplitMix64; Steele, Lea & Flood 2014)
/// seeded from a text: the same occasion and learned version always draw
/// the same numbers.
pub struct Stream(u64);

impl Stream {
    /// A stream of its own, seeded from this one's next number.
    pub fn fork(&mut self) -> Stream {
        Stream(self.next_u64())
    }

    pub fn new(seed: &str, version: u64) -> Self {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in seed.bytes().chain(version.to_be_bytes()) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        Self(h)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in (0, 1).
    pub fn uniform(&mut self) -> f64 {
        ((self.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }

    /// Standard normal (Box–Muller).
    pub fn normal(&mut self) -> f64 {
        let (u, v) = (self.uniform(), self.uniform());
        (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
    }

    /// Gamma(shape, 1) by Marsaglia & Tsang (2000), boosted below 1.
    fn gamma(&mut self, shape: f64) -> f64 {
        if shape < 1.0 {
            let u = self.uniform();
            return self.gamma(shape + 1.0) * u.powf(1.0 / shape);
        }
        let d = shape - 1.0 / 3.0;
        let c = 1.0 / (9.0 * d).sqrt();
        loop {
            let x = self.normal();
            let v = (1.0 + c * x).powi(3);
            if v <= 0.0 {
                continue;
            }
            let u = self.uniform();
            if u.ln() < 0.5 * x * x + d - d * v + d * v.ln() {
                return d * v;
            }
        }
    }

    /// A draw from Beta(α, β).
    pub fn beta(&mut self, alpha: f64, beta: f64) -> f64 {
        let x = self.gamma(alpha.max(1e-3));
        let y = self.gamma(beta.max(1e-3));
        x / (x + y)
    }
}

/// Thompson sampling's choice (Thompson 1933): one draw from each arm's
/// posterior, the arm whose drawn objective is best.
pub fn thompson(
    arms: &[ArmFigures],
    value_cents: i64,
    cost_cents: i64,
    stream: &mut Stream,
) -> Option<Arm> {
    let mut best: Option<(Arm, f64)> = None;
    for a in arms {
        let theta = stream.beta(a.alpha, a.beta);
        let objective = (theta - a.baseline) * value_cents as f64 - cost_cents as f64;
        if best.is_none_or(|(_, o)| objective > o) {
            best = Some((a.arm, objective));
        }
    }
    best.map(|(a, _)| a)
}

/// The lower Cholesky factor L of a small symmetric positive definite
/// matrix (L L′ = `a`). A pivot that rounding left at or just below zero
/// (within 10⁻⁹ of the largest diagonal) gets 10⁻¹² of it; `None` when
/// the matrix is further from positive definite than that, or empty of
/// any variance.
pub fn cholesky(a: &[Vec<f64>]) -> Option<Vec<Vec<f64>>> {
    let n = a.len();
    let scale = (0..n).fold(0.0f64, |m, i| m.max(a[i][i]));
    if !scale.is_finite() || scale <= 0.0 {
        return None;
    }
    let mut l = vec![vec![0.0; n]; n];
    for i in 0..n {
        for j in 0..=i {
            let s: f64 = (0..j).map(|k| l[i][k] * l[j][k]).sum();
            if i == j {
                let d = a[i][i] - s;
                if d.is_nan() || d <= -scale * 1e-9 {
                    return None;
                }
                l[i][i] = d.max(scale * 1e-12).sqrt();
            } else {
                l[i][j] = (a[i][j] - s) / l[j][j];
            }
        }
    }
    Some(l)
}

/// Exploration's lead: Thompson sampling on the smoothed curve, less the
/// lead in force. One draw of the whole incremental-response curve from
/// the smoothed posterior ([`smooth`]: N(mean, cov)), and the lead whose
/// drawn value is best; so a lead is explored as often as it is likely to
/// be the best *given its neighbours*, and a lead the curve already rules
/// out (far down one side of the peak) is hardly drawn, however thin its
/// own cell. Leads without data of their own (not `usable`) have the
/// curve's posterior there, wide where nothing near was sent, so they are
/// drawn while they might be best.
///
/// The lead `in_force` is left out: it has every message that does not
/// explore, and a draw that lands on it adds nothing the decision needs.
/// This is in the spirit of top-two Thompson sampling (Russo 2020,
/// "Simple Bayesian algorithms for best-arm identification", *Operations
/// Research* 68(6)), whose leader is the posterior's sampled best; here the
/// leader is the value in force: the value in force is played by the
/// (100 − `explore_percent`) % of messages, and exploration goes to its
/// challengers, where the next decision ([`best`]) needs the data. The
/// plain draw (the smoothing's system has fewer than two usable arms):
/// [`thompson`] over the arms' own posteriors, less the lead in force.
/// `None` when the grid has no other lead (nothing to explore).
pub fn explore_lead(
    arms: &[ArmFigures],
    usable: &dyn Fn(&ArmFigures) -> bool,
    in_force: Arm,
    value_cents: i64,
    cost_cents: i64,
    stream: &mut Stream,
) -> Option<Arm> {
    let others = || arms.iter().filter(|a| a.arm != in_force);
    // Nothing to explore without another lead.
    others().next()?;
    let curve = smooth(arms, usable, LAMBDA).and_then(|sm| cholesky(&sm.cov).map(|l| (sm.mean, l)));
    match curve {
        Some((mean, l)) => {
            let z: Vec<f64> = (0..mean.len()).map(|_| stream.normal()).collect();
            let mut top: Option<(Arm, f64)> = None;
            for (i, a) in arms.iter().enumerate() {
                if a.arm == in_force {
                    continue;
                }
                let x = mean[i] + (0..=i).map(|j| l[i][j] * z[j]).sum::<f64>();
                if x.is_finite() && top.is_none_or(|(_, t)| x > t) {
                    top = Some((a.arm, x));
                }
            }
            top.map(|(a, _)| a)
        }
        None => {
            let rest: Vec<ArmFigures> = others().cloned().collect();
            thompson(&rest, value_cents, cost_cents, stream)
        }
    }
}

/// How many arms [`explore_slot`] draws over: those other than the one
/// in force, or all when none is left.
pub fn challengers(arms: &[ArmFigures], in_force: Option<Arm>) -> usize {
    match arms.iter().filter(|a| Some(a.arm) != in_force).count() {
        0 => arms.len(),
        n => n,
    }
}

/// Exploration's slot arm of one partition (the weekdays or the hours):
/// [`thompson`] over its arms less the one in force (`in_force`, when a
/// weekday or an hour is: it has every message that does not explore),
/// the top-two rule of [`explore_lead`]. All of them when none is in force
/// or no other is left.
pub fn explore_slot(
    arms: &[ArmFigures],
    in_force: Option<Arm>,
    value_cents: i64,
    stream: &mut Stream,
) -> Option<Arm> {
    let rest: Vec<ArmFigures> = arms
        .iter()
        .filter(|a| Some(a.arm) != in_force)
        .cloned()
        .collect();
    if rest.is_empty() {
        return thompson(arms, value_cents, 0, stream);
    }
    thompson(&rest, value_cents, 0, stream)
}
