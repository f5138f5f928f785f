//! Figures from a run: throughput, latency percentiles and every outcome counted.

use std::collections::BTreeMap;
use std::fmt;

use serde_json::json;

use crate::load::{Outcome, RunResult};

/// The summary of one run.
#[derive(Clone, Debug)]
pub(crate) struct Summary {
    /// `gateway` or `baseline`, plus the round.
    pub(crate) label: String,
    /// Requests started.
    pub(crate) sent: usize,
    /// Prepared but not started (time bound).
    pub(crate) not_sent: usize,
    /// Seconds from the start to the last answer.
    pub(crate) elapsed_s: f64,
    /// Answers (any status) per second.
    pub(crate) throughput: f64,
    /// 2xx answers per second.
    pub(crate) ok_throughput: f64,
    /// 2xx answers.
    pub(crate) ok: usize,
    /// Latency percentiles in milliseconds: p50, p90, p99, max (all started requests).
    pub(crate) latency_ms: [f64; 4],
    /// Service-time percentiles in milliseconds: p50, p90, p99, max.
    pub(crate) service_ms: [f64; 4],
    /// Counts by outcome: `200`, `503`, `connect-error`, `io-error`, `timeout`.
    pub(crate) outcomes: BTreeMap<String, usize>,
}

/// Nearest-rank p50, p90, p99 and max of microsecond values, in milliseconds.
pub(crate) fn percentiles(mut values: Vec<u64>) -> [f64; 4] {
    if values.is_empty() {
        return [0.0; 4];
    }
    values.sort_unstable();
    let at = |q: f64| {
        // Nearest rank.
        let rank = ((q * values.len() as f64).ceil() as usize).clamp(1, values.len());
        values[rank - 1] as f64 / 1000.0
    };
    [at(0.50), at(0.90), at(0.99), at(1.0)]
}

fn outcome_name(outcome: Outcome) -> String {
    match outcome {
        Outcome::Status(code) => code.to_string(),
        Outcome::Connect => "connect-error".into(),
        Outcome::Io => "io-error".into(),
        Outcome::Timeout => "timeout".into(),
    }
}

impl Summary {
    /// Summarises a run.
    pub(crate) fn new(label: &str, run: &RunResult) -> Self {
        let elapsed_s = run.elapsed.as_secs_f64().max(1e-9);
        let mut outcomes = BTreeMap::new();
        let mut ok = 0;
        let mut answered = 0;
        for s in &run.samples {
            *outcomes.entry(outcome_name(s.outcome)).or_insert(0) += 1;
            if let Outcome::Status(code) = s.outcome {
                answered += 1;
                if (200..300).contains(&code) {
                    ok += 1;
                }
            }
        }
        Self {
            label: label.to_owned(),
            sent: run.samples.len(),
            not_sent: run.not_sent,
            elapsed_s,
            throughput: answered as f64 / elapsed_s,
            ok_throughput: ok as f64 / elapsed_s,
            ok,
            latency_ms: percentiles(run.samples.iter().map(|s| s.latency_us).collect()),
            service_ms: percentiles(run.samples.iter().map(|s| s.service_us).collect()),
            outcomes,
        }
    }

    /// Requests that did not get a 2xx (any status, error or timeout).
    pub(crate) fn failed(&self) -> usize {
        self.sent - self.ok
    }

    /// The summary as JSON.
    pub(crate) fn to_json(&self) -> serde_json::Value {
        let ms = |v: [f64; 4]| json!({ "p50": v[0], "p90": v[1], "p99": v[2], "max": v[3] });
        json!({
            "label": self.label,
            "sent": self.sent,
            "not_sent": self.not_sent,
            "ok": self.ok,
            "elapsed_s": self.elapsed_s,
            "throughput_per_s": self.throughput,
            "ok_per_s": self.ok_throughput,
            "latency_ms": ms(self.latency_ms),
            "service_ms": ms(self.service_ms),
            "outcomes": self.outcomes,
        })
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let l = self.latency_ms;
        let s = self.service_ms;
        writeln!(
            f,
            "{:<12} {} sent in {:.2}s: {:.0} answers/s, {:.0} 2xx/s{}",
            self.label,
            self.sent,
            self.elapsed_s,
            self.throughput,
            self.ok_throughput,
            if self.not_sent > 0 {
                format!(" ({} not sent: time bound)", self.not_sent)
            } else {
                String::new()
            }
        )?;
        writeln!(
            f,
            "{:<12} latency ms  p50 {:.2}  p90 {:.2}  p99 {:.2}  max {:.2}",
            "", l[0], l[1], l[2], l[3]
        )?;
        writeln!(
            f,
            "{:<12} service ms  p50 {:.2}  p90 {:.2}  p99 {:.2}  max {:.2}",
            "", s[0], s[1], s[2], s[3]
        )?;
        let outcomes: Vec<String> = self
            .outcomes
            .iter()
            .map(|(k, v)| format!("{k}: {v}"))
            .collect();
        write!(f, "{:<12} outcomes    {}", "", outcomes.join(", "))?;
        if self.failed() > 0 {
            write!(f, "  <-- {} without 2xx", self.failed())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::Sample;
    use std::time::Duration;

    #[test]
    fn non_2xx_and_errors_are_counted_not_hidden() {
        let outcomes = [
            Outcome::Status(200),
            Outcome::Status(200),
            Outcome::Status(503),
            Outcome::Timeout,
        ];
        let run = RunResult {
            samples: outcomes
                .iter()
                .enumerate()
                .map(|(index, &outcome)| Sample {
                    index,
                    latency_us: 1000 * (index as u64 + 1),
                    service_us: 500,
                    outcome,
                })
                .collect(),
            elapsed: Duration::from_secs(2),
            not_sent: 1,
        };
        let s = Summary::new("t", &run);
        assert_eq!((s.sent, s.ok, s.failed(), s.not_sent), (4, 2, 2, 1));
        assert_eq!(s.outcomes["503"], 1);
        assert_eq!(s.outcomes["timeout"], 1);
        assert!((s.ok_throughput - 1.0).abs() < 1e-9);
        assert_eq!(s.latency_ms, [2.0, 4.0, 4.0, 4.0]);
        assert!(s.to_string().contains("2 without 2xx"));
    }
}
