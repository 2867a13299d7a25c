//! A resumed session's unacknowledged packets (MQTT §4.4): the PUBRELs of QoS 2 deliveries
//! the client had answered with PUBREC, then the QoS 1 and 2 PUBLISHes it had not
//! acknowledged, read again from the log and sent with DUP and their original packet ids,
//! right after CONNACK and before anything new.

use super::{Conn, InFlight};
use crate::codec::{encode_publish, encode_simple, kind, OutgoingPublish, QoS, Reason};
use crate::session_store::SavedDelivery;
use crate::subscription::{header_text, record_delivery, Ack, Delivery};
use crate::{EXPIRY_HEADER, TOPIC_HEADER};
use sluice_broker::channel::READ_BYTES_MAX;
use sluice_broker::Broker;
use sluice_records::convert::{read_v2_records, StoredRecord};
use std::sync::atomic::Ordering;
use std::sync::Arc;

impl Conn {
    /// Takes back what a stored session held in flight (in the order it was sent) and
    /// queues its resends for after CONNACK. Call once its filters are subscribed again, so
    /// each delivery rejoins its partition's progress and holds the floor below it.
    pub(super) async fn restore_inflight(
        &mut self,
        inflight: Vec<SavedDelivery>,
        released: Vec<u16>,
        qos2_received: Vec<u16>,
    ) {
        self.qos2_received.extend(qos2_received);
        self.unacknowledged.fetch_add(self.qos2_received.len(), Ordering::Relaxed);
        for packet_id in released {
            if self.inflight.contains_key(&packet_id) {
                continue;
            }
            self.sent_count += 1;
            self.inflight.insert(packet_id, InFlight { ack: None, qos: QoS::ExactlyOnce, sent: self.sent_count });
            self.released.insert(packet_id);
            self.resends.push(encode_simple(kind::PUBREL, self.version, packet_id, Reason::Success));
        }
        for saved in inflight {
            let Some(qos) = QoS::from_bits(saved.qos).filter(|q| *q != QoS::AtMostOnce) else { continue };
            if self.inflight.contains_key(&saved.packet_id) {
                continue;
            }
            let ack = (self.subscriptions.progress_of(&saved.topic, saved.partition))
                .map(|progress| Ack::outstanding(progress, saved.offset));
            let record = read_record(&self.broker, &saved.topic, saved.partition, saved.offset).await;
            let Some(delivery) = record.map(|record| self.resend_delivery(record, &saved.topic, qos)) else {
                // Gone from the log (retention, a topic deleted): nothing is left to resend.
                ack.into_iter().for_each(Ack::done);
                continue;
            };
            let bytes = encode_publish(
                self.version,
                &OutgoingPublish {
                    topic: &delivery.topic,
                    qos,
                    dup: true,
                    retain: false,
                    packet_id: saved.packet_id,
                    payload: &delivery.payload,
                    user_properties: &delivery.user_properties,
                    message_expiry: delivery.message_expiry,
                    subscription_ids: &delivery.subscription_ids,
                },
            );
            if bytes.len() > self.client_packet_bytes_max {
                // Over the client's (new) limit: dropped as if delivered, as a first sending is.
                ack.into_iter().for_each(Ack::done);
                continue;
            }
            self.sent_count += 1;
            self.inflight.insert(saved.packet_id, InFlight { ack, qos, sent: self.sent_count });
            self.resends.push(bytes);
        }
    }

    /// The delivery of a record sent before: to the filters matching it now, with what is
    /// left of its expiry (once onward delivery started it is finished even if the message
    /// expired meanwhile, v5 §3.3.2.3.3).
    fn resend_delivery(&self, record: StoredRecord, log_topic: &str, qos: QoS) -> Delivery {
        let topic = header_text(&record, TOPIC_HEADER).unwrap_or_else(|| log_topic.to_string());
        let ids = self.subscriptions.ids_matching(&topic);
        let payload = record.value.clone().unwrap_or_default();
        let unexpired = record_delivery(topic.clone(), payload.clone(), &record.headers, qos, ids.clone());
        unexpired.unwrap_or_else(|| {
            let headers: Vec<_> = record.headers.into_iter().filter(|(k, _)| k != EXPIRY_HEADER).collect();
            let fallback = record_delivery(topic.clone(), payload.clone(), &headers, qos, ids.clone());
            fallback.unwrap_or(Delivery {
                topic,
                payload,
                qos,
                user_properties: Vec::new(),
                retain: false,
                dup: true,
                ack: None,
                message_expiry: None,
                subscription_ids: ids,
            })
        })
    }
}

/// The record at `offset` of a log partition, if it is still there.
async fn read_record(broker: &Arc<Broker>, topic: &str, partition: i32, offset: i64) -> Option<StoredRecord> {
    let partition = broker.topic(topic)?.partitions().into_iter().find(|p| p.index == partition)?;
    let read = tokio::task::spawn_blocking(move || partition.read(offset, READ_BYTES_MAX)).await.ok()?.ok()?;
    let found = read_v2_records(&read.bytes, offset)
        .filter_map(Result::ok)
        .flat_map(|batch| batch.records.unwrap_or_default())
        .find(|record| record.offset == offset);
    found
}
