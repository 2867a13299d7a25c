//! Metric families built at scrape time from state the broker already keeps (offsets,
//! channel counts, client counts): nothing is stored twice, nothing updated per request.

use prometheus::proto::{self, LabelPair, Metric, MetricFamily, MetricType};

/// One counter or gauge family with its samples, each with the same label names.
pub struct Family {
    family: MetricFamily,
}

impl Family {
    pub fn counter(name: &str, help: &str) -> Family {
        Family::new(name, help, MetricType::COUNTER)
    }

    pub fn gauge(name: &str, help: &str) -> Family {
        Family::new(name, help, MetricType::GAUGE)
    }

    fn new(name: &str, help: &str, kind: MetricType) -> Family {
        let mut family = MetricFamily::default();
        family.set_name(name.to_string());
        family.set_help(help.to_string());
        family.set_field_type(kind);
        Family { family }
    }

    /// Adds one sample; `labels` are (name, value) pairs.
    pub fn add(&mut self, labels: &[(&str, &str)], value: f64) {
        let mut metric = Metric::from_label(label_pairs(labels));
        match self.family.get_field_type() {
            MetricType::COUNTER => {
                let mut counter = proto::Counter::default();
                counter.set_value(value);
                metric.set_counter(counter);
            }
            _ => {
                let mut gauge = proto::Gauge::default();
                gauge.set_value(value);
                metric.set_gauge(gauge);
            }
        }
        self.family.mut_metric().push(metric);
    }

    /// Appends the family to `out` unless it has no sample (the text encoder refuses empty
    /// families, and an absent series is what Prometheus expects for, say, no topics).
    pub fn finish(self, out: &mut Vec<MetricFamily>) {
        if !self.family.get_metric().is_empty() {
            out.push(self.family);
        }
    }
}

/// Figures of a histogram kept elsewhere (the log's fsync buckets).
pub struct HistogramFigures<'a> {
    pub count: u64,
    pub sum: f64,
    pub bounds: &'a [f64],
    /// Cumulative count per bound; the `+Inf` bucket is `count`.
    pub cumulative: &'a [u64],
}

/// A histogram family with one unlabelled sample.
pub fn histogram(name: &str, help: &str, figures: HistogramFigures<'_>) -> MetricFamily {
    let buckets = figures
        .bounds
        .iter()
        .zip(figures.cumulative)
        .map(|(bound, count)| {
            let mut bucket = proto::Bucket::default();
            bucket.set_upper_bound(*bound);
            bucket.set_cumulative_count(*count);
            bucket
        })
        .collect();
    let mut histogram = proto::Histogram::default();
    histogram.set_sample_count(figures.count);
    histogram.set_sample_sum(figures.sum);
    histogram.set_bucket(buckets);
    let mut metric = Metric::default();
    metric.set_histogram(histogram);
    let mut family = MetricFamily::default();
    family.set_name(name.to_string());
    family.set_help(help.to_string());
    family.set_field_type(MetricType::HISTOGRAM);
    family.mut_metric().push(metric);
    family
}

fn label_pairs(labels: &[(&str, &str)]) -> Vec<LabelPair> {
    labels
        .iter()
        .map(|(name, value)| {
            let mut pair = LabelPair::default();
            pair.set_name(name.to_string());
            pair.set_value(value.to_string());
            pair
        })
        .collect()
}
