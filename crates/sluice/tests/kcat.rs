//! Proves kcat (librdkafka) can produce 100,000 keyed messages with headers under every codec and read them back byte-for-byte, and that `kcat -L` (plain and JSON) lists topics and partitions.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{run_ok, unique_topic, Broker};

/// Messages per codec: large enough to span many batches and (compressed) fetch responses.
const MESSAGE_COUNT: usize = 100_000;
/// Bound for one kcat run over all messages on a loaded 2-core machine.
const KCAT_TIMEOUT: Duration = Duration::from_secs(240);

/// Characters used to build values; includes the key delimiter and multi-byte UTF-8 on purpose.
const ALPHABET: &[char] = &[
    'a', 'b', 'c', 'x', 'y', 'z', 'A', 'Q', 'Z', '0', '7', '9', ' ', ':', ';', ',', '.', '!', '?', '-', '_', '=', '+',
    '/', '{', '}', '"', '\'', 'é', 'ü', 'ß', '漢', '字', '🦀',
];

fn key(i: usize) -> String {
    format!("k{i:06}-{}", i % 97)
}

fn value(i: usize) -> String {
    let len = (i * 7919) % 300;
    let mut v = format!("v{i:06}:");
    v.extend((0..len).map(|j| ALPHABET[(i + j * 31) % ALPHABET.len()]));
    v
}

fn headers_for(codec: &str) -> String {
    format!("app=sluice,codec={codec}")
}

/// Kafka's compression id in RecordBatch attributes (bits 0-2).
fn codec_id(codec: &str) -> i16 {
    match codec {
        "none" => 0,
        "gzip" => 1,
        "snappy" => 2,
        "lz4" => 3,
        "zstd" => 4,
        other => panic!("unknown codec {other}"),
    }
}

fn round_trip(codec: &str) {
    let broker = Broker::start(&[]);
    let topic = unique_topic(&format!("kcat-{codec}"));

    let input_path = broker.temp_dir().join("input.txt");
    {
        let mut f = std::io::BufWriter::new(std::fs::File::create(&input_path).unwrap());
        for i in 0..MESSAGE_COUNT {
            writeln!(f, "{}:{}", key(i), value(i)).unwrap();
        }
        f.flush().unwrap();
    }

    let produced = run_ok(
        Command::new("kcat")
            .args(["-P", "-b", &broker.bootstrap(), "-t", &topic, "-K:"])
            .args(["-H", "app=sluice", "-H", &format!("codec={codec}")])
            // `-X compression.codec` rather than `-z`: Debian's kcat 1.7.1 rejects `-z zstd`
            // (it sets the topic-level property) although its librdkafka has zstd.
            .args(["-X", &format!("compression.codec={codec}")])
            .args(["-X", "broker.address.family=v4"])
            .args(["-X", "linger.ms=20"])
            .stdin(Stdio::from(std::fs::File::open(&input_path).unwrap())),
        KCAT_TIMEOUT,
    );
    let produce_err = String::from_utf8_lossy(&produced.stderr);
    assert!(
        !produce_err.contains("% ERROR") && !produce_err.contains("Delivery failed"),
        "kcat -P ({codec}) reported errors:\n{}",
        common::tail(&produced.stderr, 4000)
    );

    let consumed = run_ok(
        Command::new("kcat")
            .args(["-C", "-b", &broker.bootstrap(), "-t", &topic])
            .args(["-o", "beginning", "-e", "-q"])
            .args(["-X", "broker.address.family=v4"])
            .args(["-f", "%k\\t%s\\t%h\\t%p\\t%o\\n"])
            .stdin(Stdio::null()),
        KCAT_TIMEOUT,
    );
    let text = String::from_utf8(consumed.stdout).expect("kcat output is UTF-8");
    let lines: Vec<&str> = text.split_terminator('\n').collect();
    assert_eq!(
        lines.len(),
        MESSAGE_COUNT,
        "codec {codec}: consumed {} lines, expected {MESSAGE_COUNT}; stderr: {}",
        lines.len(),
        common::tail(&consumed.stderr, 2000)
    );
    // The broker stores and serves producer batches verbatim: fetched batches still carry the
    // producer's codec (librdkafka sends a batch uncompressed when compression would not shrink
    // it, so only "some batch has it, none has another codec" is required).
    let records = common::raw::fetch_raw_records(&broker, &topic, 0, 0);
    let codecs: Vec<i16> = common::raw::batch_attributes(&records).iter().map(|a| a & 0x7).collect();
    assert!(!codecs.is_empty(), "codec {codec}: no complete batch in raw fetch");
    assert!(
        codecs.iter().all(|c| *c == 0 || *c == codec_id(codec))
            && (codec == "none" || codecs.contains(&codec_id(codec))),
        "codec {codec}: compression ids of fetched batches {codecs:?}, expected {} \
         (note: librdkafka sends lz4 uncompressed unless the broker lists FindCoordinator in \
         ApiVersions; zstd needs Produce v7+)",
        codec_id(codec)
    );

    let want_headers = headers_for(codec);
    for (i, line) in lines.iter().enumerate() {
        let fields: Vec<&str> = line.split('\t').collect();
        assert_eq!(fields.len(), 5, "codec {codec}: malformed line {i}: {line:?}");
        assert_eq!(fields[0], key(i), "codec {codec}: key at offset {i}");
        assert_eq!(fields[1], value(i), "codec {codec}: value at offset {i}");
        assert_eq!(fields[2], want_headers, "codec {codec}: headers at offset {i}");
        assert_eq!(fields[3], "0", "codec {codec}: partition at line {i}");
        assert_eq!(fields[4], i.to_string(), "codec {codec}: offset at line {i}");
    }
}

#[test]
fn codec_none_round_trip() {
    round_trip("none");
}

#[test]
fn codec_gzip_round_trip() {
    round_trip("gzip");
}

#[test]
fn codec_snappy_round_trip() {
    round_trip("snappy");
}

#[test]
fn codec_lz4_round_trip() {
    round_trip("lz4");
}

#[test]
fn codec_zstd_round_trip() {
    round_trip("zstd");
}

#[test]
fn list_metadata_plain_and_json() {
    let broker = Broker::start(&["--default-partitions", "3"]);
    let topic = unique_topic("kcat-list");

    // Auto-create the topic by producing to it, one message per partition.
    let input = "a:1\nb:2\nc:3\n";
    let path = broker.temp_dir().join("few.txt");
    std::fs::write(&path, input).unwrap();
    run_ok(
        Command::new("kcat")
            .args(["-P", "-b", &broker.bootstrap(), "-t", &topic, "-K:"])
            .args(["-X", "broker.address.family=v4"])
            .stdin(Stdio::from(std::fs::File::open(&path).unwrap())),
        Duration::from_secs(60),
    );

    let plain = run_ok(
        Command::new("kcat")
            .args(["-L", "-b", &broker.bootstrap()])
            .args(["-X", "broker.address.family=v4"])
            .stdin(Stdio::null()),
        Duration::from_secs(60),
    );
    let plain = String::from_utf8_lossy(&plain.stdout).into_owned();
    let header = format!("topic \"{topic}\" with 3 partitions:");
    assert!(plain.contains(&header), "kcat -L lacks {header:?}:\n{plain}");
    for p in 0..3 {
        assert!(plain.contains(&format!("partition {p}, leader")), "kcat -L lacks partition {p}:\n{plain}");
    }
    assert!(
        plain.contains(&format!(":{}", broker.port())),
        "kcat -L does not show a broker on port {}:\n{plain}",
        broker.port()
    );

    let json = run_ok(
        Command::new("kcat")
            .args(["-L", "-J", "-b", &broker.bootstrap()])
            .args(["-X", "broker.address.family=v4"])
            .stdin(Stdio::null()),
        Duration::from_secs(60),
    );
    let md: serde_json::Value = serde_json::from_slice(&json.stdout).expect("kcat -L -J prints one JSON document");
    let brokers = md["brokers"].as_array().expect("brokers array");
    assert_eq!(brokers.len(), 1, "one broker expected: {md}");
    let name = brokers[0]["name"].as_str().expect("broker name");
    assert!(
        name == format!("127.0.0.1:{}", broker.port()) || name == format!("localhost:{}", broker.port()),
        "advertised broker address {name:?} is not this broker's loopback address"
    );
    let topics = md["topics"].as_array().expect("topics array");
    let t = topics
        .iter()
        .find(|t| t["topic"] == topic.as_str())
        .unwrap_or_else(|| panic!("topic {topic} missing from kcat -L -J: {md}"));
    let mut parts: Vec<i64> = t["partitions"]
        .as_array()
        .expect("partitions array")
        .iter()
        .map(|p| p["partition"].as_i64().expect("partition id"))
        .collect();
    parts.sort();
    assert_eq!(parts, vec![0, 1, 2], "partitions of {topic}: {t}");
    assert!(t.get("error").is_none(), "topic {topic} reported an error in metadata: {t}");

    // And the three messages are all there (one consume across all partitions, with JSON envelope).
    let consumed = run_ok(
        Command::new("kcat")
            .args(["-C", "-J", "-b", &broker.bootstrap(), "-t", &topic])
            .args(["-o", "beginning", "-e", "-q"])
            .args(["-X", "broker.address.family=v4"])
            .stdin(Stdio::null()),
        Duration::from_secs(60),
    );
    let mut got: Vec<(String, String)> = String::from_utf8_lossy(&consumed.stdout)
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("JSON envelope line");
            (v["key"].as_str().unwrap_or_default().to_string(), v["payload"].as_str().unwrap_or_default().to_string())
        })
        .collect();
    got.sort();
    let want: Vec<(String, String)> =
        [("a", "1"), ("b", "2"), ("c", "3")].iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    assert_eq!(got, want, "messages read back with kcat -C -J");
}
