//! The special functions the models need: `ln Γ` (statrs) and Gauss's hypergeometric ₂F₁.

pub(crate) use statrs::function::gamma::ln_gamma;

/// `ln B(a, b)`, the log of the Beta function.
pub(crate) fn ln_beta(a: f64, b: f64) -> f64 {
    ln_gamma(a) + ln_gamma(b) - ln_gamma(a + b)
}

/// Gauss's hypergeometric function ₂F₁(a, b; c; z) for 0 ≤ z < 1, by its power series
/// Σₖ (a)ₖ(b)ₖ / ((c)ₖ k!) zᵏ (Abramowitz & Stegun 15.1.1), summed until a term is below 1e-15
/// of the sum. The series converges geometrically in z; BG/NBD calls it with
/// z = t / (α + T + t) < 1, which for a horizon of a year and a customer of a year is about ½.
pub(crate) fn hyp2f1(a: f64, b: f64, c: f64, z: f64) -> f64 {
    debug_assert!((0.0..1.0).contains(&z), "hyp2f1 needs 0 <= z < 1, got {z}");
    series(a, b, c, z)
}

fn series(a: f64, b: f64, c: f64, z: f64) -> f64 {
    let mut term = 1.0;
    let mut sum = 1.0;
    for k in 0..1_000_000 {
        let k = f64::from(k);
        term *= (a + k) * (b + k) / ((c + k) * (k + 1.0)) * z;
        sum += term;
        if term.abs() <= 1e-15 * sum.abs() {
            break;
        }
    }
    sum
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-12 * b.abs().max(1.0)
    }

    #[test]
    fn hyp2f1_meets_closed_forms() {
        // A&S 15.1.3: ₂F₁(1, 1; 2; z) = −ln(1 − z) / z.
        for z in [0.01, 0.3, 0.5, 0.9, 0.99] {
            assert!(close(hyp2f1(1.0, 1.0, 2.0, z), -(1.0f64 - z).ln() / z), "z = {z}");
        }
        // A&S 15.1.8: ₂F₁(a, b; b; z) = (1 − z)^(−a).
        for (a, b, z) in [(0.5, 3.0, 0.2), (2.243, 4.426, 0.47), (7.0, 1.5, 0.8)] {
            assert!(close(hyp2f1(a, b, b, z), (1.0f64 - z).powf(-a)), "a = {a}, z = {z}");
        }
        // A&S 15.1.4: ₂F₁(½, 1; 3/2; z²) = artanh(z) / z.
        for z in [0.1f64, 0.6, 0.95] {
            assert!(close(hyp2f1(0.5, 1.0, 1.5, z * z), z.atanh() / z), "z = {z}");
        }
        assert_eq!(hyp2f1(3.0, 4.0, 5.0, 0.0), 1.0);
    }

    #[test]
    fn ln_beta_of_integers() {
        // B(2, 3) = 1! 2! / 4! = 1/12.
        assert!(close(ln_beta(2.0, 3.0), (1.0f64 / 12.0).ln()));
    }
}
