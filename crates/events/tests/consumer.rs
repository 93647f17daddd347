//! The consumer runner against the real broker, Redis and Postgres.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use chrono::{TimeZone, Utc};
use common::{Fixture, RecordingHandler, content_topic, drain, fixture, read_topic, relay};
use contracts::{EventType, TopicName};
use events::{ConsumerRunner, EventHandler};
use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};
use tokio_util::sync::CancellationToken;

const GROUP: &str = "testers";

fn runner(fx: &Fixture, handler: Arc<dyn EventHandler>) -> ConsumerRunner {
    ConsumerRunner::new(
        &fx.config(),
        GROUP,
        &[TopicName::CONTENT_EVENTS],
        fx.redis.clone(),
        &fx.redis_prefix,
        handler,
    )
    .unwrap()
}

struct Running {
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl Running {
    fn start(runner: ConsumerRunner) -> Self {
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(runner.run(shutdown.clone()));
        Self { shutdown, task }
    }

    async fn stop(self) {
        self.shutdown.cancel();
        self.task.await.unwrap();
    }
}

async fn publish(
    fx: &Fixture,
    n: usize,
    at: chrono::DateTime<Utc>,
) -> Vec<contracts::EventEnvelope> {
    let appended = fx.append(n, 5, at).await;
    drain(fx, &relay(fx, &fx.config())).await;
    appended
}

/// Sets the group's committed offsets back to the beginning of `topic`.
async fn reset_offsets(fx: &Fixture, topic: &str) {
    let brokers = fx.config().kafka.brokers;
    let group = format!("{}{GROUP}", fx.prefix());
    let topic = topic.to_owned();
    tokio::task::spawn_blocking(move || {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &brokers)
            .set("group.id", &group)
            .set("enable.auto.commit", "false")
            .create()
            .unwrap();
        let metadata = consumer
            .fetch_metadata(Some(&topic), Duration::from_secs(10))
            .unwrap();
        let mut tpl = TopicPartitionList::new();
        for p in metadata.topics()[0].partitions() {
            tpl.add_partition_offset(&topic, p.id(), Offset::Offset(0))
                .unwrap();
        }
        consumer.commit(&tpl, CommitMode::Sync).unwrap();
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn redelivered_messages_change_nothing() {
    let fx = fixture(&[]).await;
    let at = Utc::now();
    let events = publish(&fx, 200, at).await;
    let handler = RecordingHandler::new(fx.db.clone());

    let running = Running::start(runner(&fx, handler.clone()));
    fx.eventually(Duration::from_secs(60), "200 effects", || async {
        fx.effects().await.len() == 200
    })
    .await;
    running.stop().await;

    // Force every message to be delivered again.
    reset_offsets(&fx, &content_topic(&fx.prefix(), at)).await;
    let running = Running::start(runner(&fx, handler.clone()));
    tokio::time::sleep(Duration::from_secs(5)).await;
    running.stop().await;

    let effects = fx.effects().await;
    assert_eq!(effects.len(), 200);
    assert!(
        effects.values().all(|n| *n == 1),
        "each effect exactly once"
    );
    let ids: HashSet<_> = events.iter().map(|e| e.event_id).collect();
    assert_eq!(effects.keys().copied().collect::<HashSet<_>>(), ids);
    let metrics = telemetry::prometheus().render();
    assert!(metrics.contains(r#"outcome="duplicate""#), "{metrics}");
}

#[tokio::test]
async fn a_new_days_topic_is_consumed_without_a_restart() {
    let fx = fixture(&[]).await;
    let handler = RecordingHandler::new(fx.db.clone());
    let day1 = Utc.with_ymd_and_hms(2026, 11, 24, 23, 59, 59).unwrap();
    let day2 = Utc.with_ymd_and_hms(2026, 11, 25, 0, 0, 1).unwrap();
    publish(&fx, 10, day1).await;
    let running = Running::start(runner(&fx, handler.clone()));
    fx.eventually(Duration::from_secs(60), "day 1 consumed", || async {
        fx.effects().await.len() == 10
    })
    .await;
    // The next day's topic is created only now, after the consumer subscribed.
    publish(&fx, 10, day2).await;
    fx.eventually(Duration::from_secs(60), "day 2 consumed", || async {
        fx.effects().await.len() == 20
    })
    .await;
    running.stop().await;
}

#[tokio::test]
async fn poison_goes_to_dead_letters_at_once_later_messages_flow_and_redrive_replays_after_a_fix() {
    let fx = fixture(&[]).await;
    let at = Utc::now();
    let before = publish(&fx, 3, at).await;
    // Garbage straight onto the day's topic, then an event the handler cannot use yet.
    let config = fx.config();
    let producer: FutureProducer = config.kafka.client_config().create().unwrap();
    let topic = content_topic(&fx.prefix(), at);
    producer
        .send(
            FutureRecord::to(&topic).key("post:1").payload("{not json"),
            Duration::from_secs(5),
        )
        .await
        .unwrap();
    producer
        .send(
            FutureRecord::to(&topic)
                .key("post:1")
                .payload(r#"{"event_type":"POST_EXPLODE"}"#),
            Duration::from_secs(5),
        )
        .await
        .unwrap();
    let handler = RecordingHandler::new(fx.db.clone());
    *handler.reject.lock().unwrap() = Some(EventType::PostCreate);
    let mut rejected =
        contracts::EventEnvelope::new(EventType::PostCreate, 7, 1, serde_json::json!({}));
    rejected.occurred_at = at;
    let txn = sea_orm::TransactionTrait::begin(&fx.db).await.unwrap();
    events::append(&txn, &rejected, "post:1").await.unwrap();
    txn.commit().await.unwrap();
    let after = publish(&fx, 3, at).await;

    let runner = runner(&fx, handler.clone());
    let redriver = runner.redriver();
    let running = Running::start(runner);
    fx.eventually(Duration::from_secs(60), "valid events handled", || async {
        fx.effects().await.len() == before.len() + after.len()
    })
    .await;
    running.stop().await;

    let dead = read_topic(&config.kafka.brokers, redriver.topic()).await;
    assert_eq!(
        dead.len(),
        1,
        "only the parseable dead letter reads back as an event"
    );
    assert_eq!(dead[0].2.event_id, rejected.event_id);

    // The fix ships: the handler now accepts POST_CREATE. Re-drive replays it; the garbage
    // fails again and stays dead.
    *handler.reject.lock().unwrap() = None;
    let report = redriver.redrive().await.unwrap();
    assert_eq!(report.replayed, 1);
    assert_eq!(report.failed_again, 2);
    assert_eq!(fx.effects().await.get(&rejected.event_id), Some(&1));
    // A second re-drive only sees what failed again.
    let report = redriver.redrive().await.unwrap();
    assert_eq!((report.replayed, report.failed_again), (0, 2));
}

#[tokio::test]
async fn retryable_failures_are_retried_then_dead_lettered_without_blocking_others() {
    let fx = fixture(&[("CONSUMER_MAX_ATTEMPTS", "3")]).await;
    let at = Utc::now();
    let events = publish(&fx, 20, at).await;
    let handler = RecordingHandler::new(fx.db.clone());
    handler
        .fail_first
        .lock()
        .unwrap()
        .insert(events[0].event_id, 2);
    *handler.always_fail.lock().unwrap() = Some(events[1].event_id);
    let runner = runner(&fx, handler.clone());
    let topic = runner.redriver().topic().to_owned();
    let running = Running::start(runner);
    fx.eventually(Duration::from_secs(60), "19 effects", || async {
        fx.effects().await.len() == 19
    })
    .await;
    let dead = read_topic(&fx.config().kafka.brokers, &topic).await;
    running.stop().await;
    let effects = fx.effects().await;
    assert_eq!(
        effects.get(&events[0].event_id),
        Some(&1),
        "flaky event handled once after retries"
    );
    assert!(!effects.contains_key(&events[1].event_id));
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].2.event_id, events[1].event_id);
}

#[tokio::test]
async fn an_unavailable_store_pauses_consumption_and_loses_nothing() {
    let fx = fixture(&[]).await;
    let at = Utc::now();
    publish(&fx, 30, at).await;
    let handler = RecordingHandler::new(fx.db.clone());
    handler.unavailable.store(true, Ordering::SeqCst);
    let runner = runner(&fx, handler.clone());
    let topic = runner.redriver().topic().to_owned();
    let running = Running::start(runner);
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(fx.effects().await.len(), 0);
    handler.unavailable.store(false, Ordering::SeqCst);
    fx.eventually(
        Duration::from_secs(60),
        "all 30 handled once the store is back",
        || async { fx.effects().await.len() == 30 },
    )
    .await;
    running.stop().await;
    assert!(fx.effects().await.values().all(|n| *n == 1));
    let dead = read_topic(&fx.config().kafka.brokers, &topic).await;
    assert!(dead.is_empty(), "an outage is not a reason to dead-letter");
}

#[tokio::test]
async fn the_trace_continues_from_the_request_into_the_consumer() {
    let fx = fixture(&[]).await;
    let at = Utc::now();
    let trace_id = "0af7651916cd43dd8448eb211c80319c";
    let request = tracing::info_span!("http_request");
    telemetry::set_parent_from(
        &request,
        &format!("00-{trace_id}-b7ad6b7169203331-01"),
        None,
    );
    {
        let _entered = request.enter();
        let event =
            contracts::EventEnvelope::new(EventType::PostCreate, 7, 9, serde_json::json!({}))
                .with_trace(None);
        let mut event = event;
        event.occurred_at = at;
        let txn = sea_orm::TransactionTrait::begin(&fx.db).await.unwrap();
        events::append(&txn, &event, "post:9").await.unwrap();
        txn.commit().await.unwrap();
    }
    drain(&fx, &relay(&fx, &fx.config())).await;
    let handler = RecordingHandler::new(fx.db.clone());
    let running = Running::start(runner(&fx, handler.clone()));
    fx.eventually(Duration::from_secs(60), "handled", || async {
        fx.effects().await.len() == 1
    })
    .await;
    running.stop().await;
    assert_eq!(
        handler.trace_ids.lock().unwrap().as_slice(),
        [trace_id.to_owned()]
    );
}

/// The child half of the crash test: consumes with offsets never committed while running,
/// and aborts the whole process in the middle of handling the 11th event.
#[tokio::test]
#[ignore = "run as a child process by consumer_crash_before_commit_loses_and_duplicates_nothing"]
async fn crash_child() {
    let Ok(spec) = std::env::var("CRASH_CHILD_SPEC") else {
        return;
    };
    let spec: serde_json::Value = serde_json::from_str(&spec).unwrap();
    let env: Vec<(String, String)> = serde_json::from_value(spec["env"].clone()).unwrap();
    let fx = common::fixture_from(env).await;
    struct AbortingHandler {
        inner: Arc<RecordingHandler>,
        handled: std::sync::atomic::AtomicUsize,
    }
    #[async_trait::async_trait]
    impl EventHandler for AbortingHandler {
        async fn handle(
            &self,
            event: &contracts::EventEnvelope,
            record: &events::RecordInfo,
        ) -> Result<(), events::HandlerError> {
            if self.handled.fetch_add(1, Ordering::SeqCst) == 10 {
                std::process::abort(); // dies after 10 handled, before any commit
            }
            self.inner.handle(event, record).await
        }
    }
    let handler = Arc::new(AbortingHandler {
        inner: RecordingHandler::new(fx.db.clone()),
        handled: Default::default(),
    });
    let running = Running::start(runner(&fx, handler));
    tokio::time::sleep(Duration::from_secs(60)).await;
    running.stop().await;
    panic!("the child should have aborted");
}

#[tokio::test]
async fn consumer_crash_before_commit_loses_and_duplicates_nothing() {
    let fx = fixture(&[("KAFKA_AUTO_COMMIT_INTERVAL_MS", "3600000")]).await;
    let at = Utc::now();
    publish(&fx, 50, at).await;
    let spec = serde_json::json!({ "env": fx.env.vars().iter().collect::<Vec<_>>() });
    let status = tokio::process::Command::new(std::env::current_exe().unwrap())
        .args(["crash_child", "--exact", "--ignored", "--nocapture"])
        .env("CRASH_CHILD_SPEC", spec.to_string())
        .status()
        .await
        .unwrap();
    assert!(!status.success(), "the child must die");
    assert_eq!(
        fx.effects().await.len(),
        10,
        "the child handled 10 before dying"
    );

    let handler = RecordingHandler::new(fx.db.clone());
    let running = Running::start(runner(&fx, handler));
    fx.eventually(Duration::from_secs(60), "all 50 handled", || async {
        fx.effects().await.len() == 50
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    running.stop().await;
    let effects = fx.effects().await;
    assert_eq!(effects.len(), 50, "nothing lost");
    assert!(
        effects.values().all(|n| *n == 1),
        "nothing duplicated: {effects:?}"
    );
}
