// kafkajs logs in with SASL SCRAM (SHA-256 or SHA-512) on a SASL_PLAINTEXT listener, produces
// COUNT messages and reads them back with a consumer group; or, with a wrong password, reports
// the error kafkajs gives. Prints one JSON line:
//   {"ok": true, "read": [...values]} | {"ok": false, "error": NAME, "message": TEXT}
//
// usage: node scram.mjs BROKER MECHANISM USER PASSWORD TOPIC COUNT
import { Kafka, logLevel } from 'kafkajs';

const [broker, mechanism, username, password, topic, countText] = process.argv.slice(2);
const count = Number(countText);
const DEADLINE_MS = 30000;

const kafka = new Kafka({
  clientId: 'sluice-kafkajs-test',
  brokers: [broker],
  sasl: { mechanism: mechanism.toLowerCase(), username, password },
  logLevel: logLevel.NOTHING,
  retry: { retries: 3 },
});

async function main() {
  const producer = kafka.producer();
  await producer.connect();
  const messages = Array.from({ length: count }, (_, i) => ({ key: `k${i}`, value: `${mechanism}-${i}` }));
  await producer.send({ topic, messages, acks: -1 });
  await producer.disconnect();

  const consumer = kafka.consumer({ groupId: `${topic}-g` });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  const read = [];
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`read ${read.length} of ${count} in ${DEADLINE_MS} ms`)), DEADLINE_MS);
    consumer.run({
      eachMessage: async ({ message }) => {
        read.push(message.value.toString());
        if (read.length >= count) {
          clearTimeout(timer);
          resolve();
        }
      },
    }).catch(reject);
  });
  await consumer.disconnect();
  return read;
}

main().then(
  (read) => {
    console.log(JSON.stringify({ ok: true, read }));
    process.exit(0);
  },
  (e) => {
    console.log(JSON.stringify({ ok: false, error: e.name, message: e.message }));
    process.exit(0);
  },
);
