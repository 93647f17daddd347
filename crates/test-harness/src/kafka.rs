//! Reading what was published, the way a consumer would.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

/// One record of a topic.
#[derive(Debug, Clone)]
pub struct Record {
    pub partition: i32,
    pub offset: i64,
    pub key: Option<String>,
    pub payload: Vec<u8>,
    pub headers: HashMap<String, String>,
}

impl Record {
    pub fn json(&self) -> Option<serde_json::Value> {
        serde_json::from_slice(&self.payload).ok()
    }
}

/// Every record of `topic` from the beginning up to its current end (empty if the topic does
/// not exist or holds nothing), sorted by partition and offset.
pub async fn read_topic(brokers: &str, topic: &str) -> Vec<Record> {
    let brokers = brokers.to_owned();
    let topic = topic.to_owned();
    tokio::task::spawn_blocking(move || read_blocking(&brokers, &topic))
        .await
        .unwrap()
}

fn read_blocking(brokers: &str, topic: &str) -> Vec<Record> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", format!("reader-{}", crate::unique_suffix()))
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let Ok(metadata) = consumer.fetch_metadata(Some(topic), Duration::from_secs(10)) else {
        return Vec::new();
    };
    let mut tpl = TopicPartitionList::new();
    let mut ends = HashMap::new();
    for t in metadata.topics().iter().filter(|t| t.error().is_none()) {
        for p in t.partitions() {
            let Ok((_, high)) = consumer.fetch_watermarks(topic, p.id(), Duration::from_secs(10))
            else {
                continue;
            };
            if high > 0 {
                tpl.add_partition_offset(topic, p.id(), Offset::Beginning)
                    .unwrap();
                ends.insert(p.id(), high);
            }
        }
    }
    let mut records = Vec::new();
    if ends.is_empty() {
        return records;
    }
    consumer.assign(&tpl).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !ends.is_empty() {
        assert!(Instant::now() < deadline, "reading {topic} timed out");
        let Some(message) = consumer.poll(Duration::from_millis(200)) else {
            continue;
        };
        let message = message.unwrap();
        let headers = message
            .headers()
            .map(|h| {
                h.iter()
                    .filter_map(|h| {
                        Some((
                            h.key.to_owned(),
                            String::from_utf8_lossy(h.value?).into_owned(),
                        ))
                    })
                    .collect()
            })
            .unwrap_or_default();
        records.push(Record {
            partition: message.partition(),
            offset: message.offset(),
            key: message
                .key()
                .map(|k| String::from_utf8_lossy(k).into_owned()),
            payload: message.payload().unwrap_or_default().to_vec(),
            headers,
        });
        if ends
            .get(&message.partition())
            .is_some_and(|end| message.offset() + 1 >= *end)
        {
            ends.remove(&message.partition());
        }
    }
    records.sort_by_key(|r| (r.partition, r.offset));
    records
}

/// Waits until `topic` holds at least `count` records matching `keep`; returns them.
pub async fn wait_for_records(
    brokers: &str,
    topic: &str,
    count: usize,
    keep: impl Fn(&Record) -> bool,
) -> Vec<Record> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let records: Vec<Record> = read_topic(brokers, topic)
            .await
            .into_iter()
            .filter(|r| keep(r))
            .collect();
        if records.len() >= count || Instant::now() > deadline {
            return records;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Writes one record (the topic must exist) and waits for the broker's acknowledgement.
pub async fn produce(brokers: &str, topic: &str, key: &str, payload: &[u8]) {
    use rdkafka::producer::{FutureProducer, FutureRecord};
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("message.timeout.ms", "20000")
        .create()
        .unwrap();
    producer
        .send(
            FutureRecord::to(topic).key(key).payload(payload),
            Duration::from_secs(20),
        )
        .await
        .map_err(|(e, _)| e)
        .unwrap_or_else(|e| panic!("cannot produce to {topic}: {e}"));
}
