//! Topic retention, against a private memory-engine broker (tansu's sqlite engine deletes
//! every topic on DeleteTopics).
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;

use chrono::NaiveDate;
use contracts::TopicName;
use events::TopicSettings;
use events::topics::TopicAdmin;
use service_runtime::ServiceName;
use service_runtime::kafka::KafkaSettings;
use test_harness::{Engine, TansuBroker};

#[tokio::test]
async fn retention_deletes_only_dated_topics_older_than_n_days() {
    let broker = TansuBroker::start(Engine::Memory).await;
    let env: HashMap<String, String> = [
        ("KAFKA_BROKERS", broker.brokers()),
        ("KAFKA_TOPIC_PREFIX", "r-".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let kafka = KafkaSettings::from_env(&env, ServiceName::Content).unwrap();
    let admin = TopicAdmin::new(&kafka, TopicSettings::from_env(&env).unwrap()).unwrap();
    let today = NaiveDate::from_ymd_opt(2026, 11, 25).unwrap();
    let mut topics: Vec<String> = (0..=10)
        .map(|back| admin.topic("content-events", today - chrono::Duration::days(back)))
        .collect();
    let unrelated = vec![
        "r-content-events-dlt".to_owned(),
        "r-member-events-20200101".to_owned(), // another name: not ours to delete
        "content-events-20200101".to_owned(),  // another prefix
        "r-content-events-2020010".to_owned(), // not a date
    ];
    topics.extend(unrelated.clone());
    admin.ensure(&topics).await.unwrap();

    let deleted = admin
        .delete_older_than(&[TopicName::CONTENT_EVENTS], today, 7)
        .await
        .unwrap();
    let mut expected: Vec<String> = (8..=10)
        .map(|back| admin.topic("content-events", today - chrono::Duration::days(back)))
        .collect();
    let mut deleted_sorted = deleted.clone();
    deleted_sorted.sort();
    expected.sort();
    assert_eq!(deleted_sorted, expected);

    let remaining = admin.list().await.unwrap();
    for back in 0..=7 {
        assert!(
            remaining
                .contains(&admin.topic("content-events", today - chrono::Duration::days(back)))
        );
    }
    for topic in &unrelated {
        assert!(remaining.contains(topic), "{topic} must survive");
    }

    // Even a retention of 0 days keeps today's and yesterday's topics.
    admin
        .delete_older_than(&[TopicName::CONTENT_EVENTS], today, 0)
        .await
        .unwrap();
    let remaining = admin.list().await.unwrap();
    assert!(remaining.contains(&admin.topic("content-events", today)));
    assert!(remaining.contains(&admin.topic("content-events", today - chrono::Duration::days(1))));
    assert!(!remaining.contains(&admin.topic("content-events", today - chrono::Duration::days(2))));
}

#[tokio::test]
async fn topics_for_today_and_tomorrow_are_created_ahead() {
    let broker = TansuBroker::start(Engine::Memory).await;
    let env: HashMap<String, String> = [
        ("KAFKA_BROKERS", broker.brokers()),
        ("TOPIC_ZONE", "Asia/Seoul".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let kafka = KafkaSettings::from_env(&env, ServiceName::Member).unwrap();
    let admin = TopicAdmin::new(&kafka, TopicSettings::from_env(&env).unwrap()).unwrap();
    admin
        .create_ahead(&[TopicName::MEMBER_EVENTS])
        .await
        .unwrap();
    let today = admin.zone().day_of(chrono::Utc::now());
    let listed = admin.list().await.unwrap();
    assert!(listed.contains(&admin.topic("member-events", today)));
    assert!(listed.contains(&admin.topic("member-events", today.succ_opt().unwrap())));
}
