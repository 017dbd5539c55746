//! sluice-client's consumer as a `Stream`: every record in order, and the consumer back
//! afterwards with its position past what the stream yielded.

use std::pin::Pin;
use std::time::Duration;

use futures_core::Stream;
use sluice_client::consumer::Consumer;
use sluice_client::producer::{Producer, ProducerRecord};
use sluice_client::TopicPartition;
use sluice_tests::BrokerProcess;

use crate::rust_producer::{config, runtime};

#[test]
fn a_consumer_streams_its_records_and_comes_back() {
    let broker = BrokerProcess::start(&[]);
    let rt = runtime();
    let _enter = rt.enter();
    let producer = Producer::new(&config(&broker, &[])).unwrap();
    rt.block_on(async {
        for i in 0..2000 {
            drop(
                producer
                    .send(ProducerRecord::new("streamed", format!("{i}")).partition(0))
                    .await
                    .unwrap(),
            );
        }
        producer.close(Duration::from_secs(5)).await.unwrap();
    });
    let tp = TopicPartition::new("streamed", 0);
    let mut consumer = Consumer::new(&config(
        &broker,
        &[("auto.offset.reset", "earliest"), ("max.poll.records", "300")],
    ))
    .unwrap();
    consumer.assign([tp.clone()]);
    let mut stream = consumer.into_stream();
    let values = rt.block_on(async {
        let mut values = Vec::new();
        while values.len() < 1500 {
            let next = std::future::poll_fn(|cx| Pin::new(&mut stream).poll_next(cx)).await;
            values
                .push(next.expect("the stream goes on").unwrap().value_str().unwrap().to_string());
        }
        values
    });
    assert_eq!(values, (0..1500).map(|i| i.to_string()).collect::<Vec<_>>());
    let (mut consumer, unread) = rt.block_on(stream.into_inner());
    let position = rt.block_on(consumer.position(&tp)).unwrap();
    assert_eq!(position, 1500 + unread.len() as i64, "the position counts what the stream fetched");
    assert_eq!(unread.first().map(|r| r.offset), (!unread.is_empty()).then_some(1500));
}
