//! The matcher's speed, measured with criterion: `cargo bench --bench matcher`.
//!
//! - `classify/banking77`: one query at a time on one thread, cycling
//!   through the test rows, on an intent set the size of banking77 (77
//!   intents, 10,003 examples).
//! - `classify/demo`: the same on the demo shop (26 intents in three languages).
//! - `build/banking77`: from the examples to a ready matcher.
//!
//! The data is `../shared/data/intents-bench/banking77/{train,test}.csv`
//! beside the repository (where CI puts the shared folder). When it is not
//! there, a generated set of the same size is used instead (the bench says
//! which), so the bench always runs; its figures are then only comparable
//! with other runs on generated data.

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::Duration;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};

use frontdesk::eval::{read_rows, training_intents};
use frontdesk::intents::IntentSet;
use frontdesk::nlu::{Example, Matcher, MatcherConfig, TrainingIntent};

/// The size of banking77's training set.
const INTENTS: usize = 77;
const EXAMPLES: usize = 10_003;
const QUERIES: usize = 3_080;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// banking77's training intents and test queries, or a generated set of the
/// same size when the files are missing; and which of the two it is.
fn banking77() -> (Vec<TrainingIntent>, Vec<String>, &'static str) {
    let dir = repo().join("../shared/data/intents-bench/banking77");
    match read_set(&dir) {
        Some((training, queries)) => (training, queries, "banking77"),
        None => {
            eprintln!(
                "{} not found: benchmarking a generated set of the same size",
                dir.display()
            );
            let (training, queries) = generated();
            (training, queries, "generated")
        }
    }
}

fn read_set(dir: &Path) -> Option<(Vec<TrainingIntent>, Vec<String>)> {
    let train = read_rows(&dir.join("train.csv")).ok()?;
    let test = read_rows(&dir.join("test.csv")).ok()?;
    let training = training_intents(&train, "en");
    let queries: Vec<String> = test.into_iter().map(|r| r.text).collect();
    (!training.is_empty() && !queries.is_empty()).then_some((training, queries))
}

/// A deterministic stand-in for banking77: each intent has its own topic
/// words, and every sentence mixes two or three of them with words common
/// to all intents, in sentences of 6 to 14 words.
fn generated() -> (Vec<TrainingIntent>, Vec<String>) {
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move |n: usize| {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((state >> 33) as usize) % n
    };
    const SYLLABLES: [&str; 24] = [
        "ka", "ro", "mi", "te", "lu", "sa", "po", "ne", "di", "va", "shi", "qu", "bel", "tor",
        "an", "em", "ur", "ix", "ol", "gra", "pen", "dor", "fi", "zu",
    ];
    let word = |next: &mut dyn FnMut(usize) -> usize| {
        (0..2 + next(2))
            .map(|_| SYLLABLES[next(SYLLABLES.len())])
            .collect::<String>()
    };
    let common: Vec<String> = [
        "my", "the", "i", "how", "can", "card", "account", "is", "why", "do", "what", "money",
        "to", "a", "it", "still", "have", "please", "need", "help",
    ]
    .iter()
    .map(|w| w.to_string())
    .collect();
    let topics: Vec<Vec<String>> = (0..INTENTS)
        .map(|_| (0..8).map(|_| word(&mut next)).collect())
        .collect();
    let sentence = |intent: usize, next: &mut dyn FnMut(usize) -> usize| {
        let len = 6 + next(9);
        let topical = 2 + next(2);
        (0..len)
            .map(|i| {
                if i < topical {
                    topics[intent][next(8)].clone()
                } else {
                    common[next(common.len())].clone()
                }
            })
            .collect::<Vec<_>>()
            .join(" ")
    };
    let mut training: Vec<TrainingIntent> = (0..INTENTS)
        .map(|i| TrainingIntent {
            id: format!("intent_{i}"),
            examples: Vec::new(),
            patterns: Vec::new(),
        })
        .collect();
    for n in 0..EXAMPLES {
        let intent = n % INTENTS;
        let text = sentence(intent, &mut next);
        training[intent].examples.push(Example {
            language: "en".into(),
            text,
        });
    }
    let queries = (0..QUERIES)
        .map(|n| sentence(n % INTENTS, &mut next))
        .collect();
    (training, queries)
}

/// The demo shop's intents and, as queries, its labelled paraphrases.
fn demo() -> (Vec<TrainingIntent>, Vec<String>) {
    let languages = ["en", "es", "it"].map(String::from);
    let intents = IntentSet::load_dir(&repo().join("intents"), &languages)
        .expect("the demo intents load")
        .training_data();
    let queries = read_rows(&repo().join("tests/data/demo-paraphrases.csv"))
        .expect("the demo paraphrases load")
        .into_iter()
        .map(|r| r.text)
        .collect();
    (intents, queries)
}

/// One query at a time, cycling through `queries`.
fn bench_classify(c: &mut Criterion, name: &str, matcher: &Matcher, queries: &[String]) {
    let mut group = c.benchmark_group("classify");
    group.throughput(Throughput::Elements(1));
    let mut i = 0;
    group.bench_function(name, |b| {
        b.iter(|| {
            let q = &queries[i % queries.len()];
            i += 1;
            black_box(matcher.classify(black_box(q), None))
        })
    });
    group.finish();
}

fn benches(c: &mut Criterion) {
    let config = MatcherConfig::default();
    let (training, queries, name) = banking77();
    let matcher = Matcher::build(training.clone(), config);
    bench_classify(c, name, &matcher, &queries);

    let (demo_intents, demo_queries) = demo();
    let demo_matcher = Matcher::build(demo_intents, config);
    bench_classify(c, "demo", &demo_matcher, &demo_queries);

    let mut group = c.benchmark_group("build");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(20))
        .throughput(Throughput::Elements(
            training.iter().map(|i| i.examples.len() as u64).sum(),
        ));
    group.bench_function(name, |b| {
        b.iter_batched(
            || training.clone(),
            |t| black_box(Matcher::build(t, config)),
            BatchSize::LargeInput,
        )
    });
    group.finish();
}

criterion_group!(matcher, benches);
criterion_main!(matcher);
