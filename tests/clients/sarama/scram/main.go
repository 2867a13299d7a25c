// scram: sarama (Debian's 1.22) logs in with SASL SCRAM-SHA-256 or -512 (SaslHandshake v1,
// the SCRAM client from github.com/xdg-go/scram, as sarama's own example wires it), sends N
// messages with a SyncProducer (WaitForAll) to partition 0 and reads them back with a
// partition consumer. Prints one JSON line: {"ok": true, "sent": N, "read": N} or
// {"ok": false, "error": TEXT}.
package main

import (
	"crypto/sha256"
	"crypto/sha512"
	"encoding/json"
	"flag"
	"fmt"
	"hash"
	"os"
	"time"

	"github.com/Shopify/sarama"
	"github.com/xdg-go/scram"
)

// xdgClient adapts xdg-go/scram to sarama's SCRAMClient.
type xdgClient struct {
	hash scram.HashGeneratorFcn
	conv *scram.ClientConversation
}

func (c *xdgClient) Begin(user, password, authzID string) error {
	client, err := c.hash.NewClient(user, password, authzID)
	if err != nil {
		return err
	}
	c.conv = client.NewConversation()
	return nil
}

func (c *xdgClient) Step(challenge string) (string, error) { return c.conv.Step(challenge) }
func (c *xdgClient) Done() bool                            { return c.conv.Done() }

func report(v map[string]interface{}) {
	out, _ := json.Marshal(v)
	fmt.Println(string(out))
	os.Exit(0)
}

func fail(err error) { report(map[string]interface{}{"ok": false, "error": err.Error()}) }

func main() {
	brokers := flag.String("brokers", "127.0.0.1:9092", "broker")
	mechanism := flag.String("mechanism", "SCRAM-SHA-512", "SCRAM-SHA-256 or SCRAM-SHA-512")
	user := flag.String("user", "", "user")
	password := flag.String("password", "", "password")
	topic := flag.String("topic", "", "topic")
	n := flag.Int("n", 10, "messages")
	flag.Parse()

	cfg := sarama.NewConfig()
	cfg.Version = sarama.V2_1_0_0
	cfg.ClientID = "sluice-sarama-scram"
	cfg.Net.SASL.Enable = true
	cfg.Net.SASL.Handshake = true
	cfg.Net.SASL.User = *user
	cfg.Net.SASL.Password = *password
	var gen scram.HashGeneratorFcn = func() hash.Hash { return sha512.New() }
	cfg.Net.SASL.Mechanism = sarama.SASLTypeSCRAMSHA512
	if *mechanism == "SCRAM-SHA-256" {
		gen = func() hash.Hash { return sha256.New() }
		cfg.Net.SASL.Mechanism = sarama.SASLTypeSCRAMSHA256
	}
	cfg.Net.SASL.SCRAMClientGeneratorFunc = func() sarama.SCRAMClient { return &xdgClient{hash: gen} }
	cfg.Net.DialTimeout = 5 * time.Second
	cfg.Metadata.Retry.Max = 2
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Producer.Return.Successes = true
	cfg.Producer.Partitioner = sarama.NewManualPartitioner

	producer, err := sarama.NewSyncProducer([]string{*brokers}, cfg)
	if err != nil {
		fail(err)
	}
	for i := 0; i < *n; i++ {
		msg := &sarama.ProducerMessage{Topic: *topic, Partition: 0, Value: sarama.StringEncoder(fmt.Sprintf("%s-%d", *mechanism, i))}
		if _, _, err := producer.SendMessage(msg); err != nil {
			fail(err)
		}
	}
	producer.Close()

	consumer, err := sarama.NewConsumer([]string{*brokers}, cfg)
	if err != nil {
		fail(err)
	}
	defer consumer.Close()
	pc, err := consumer.ConsumePartition(*topic, 0, sarama.OffsetOldest)
	if err != nil {
		fail(err)
	}
	read := 0
	deadline := time.After(30 * time.Second)
	for read < *n {
		select {
		case m := <-pc.Messages():
			if string(m.Value) != fmt.Sprintf("%s-%d", *mechanism, read) {
				fail(fmt.Errorf("message %d is %q", read, m.Value))
			}
			read++
		case err := <-pc.Errors():
			fail(err)
		case <-deadline:
			fail(fmt.Errorf("read %d of %d in 30 s", read, *n))
		}
	}
	pc.Close()
	report(map[string]interface{}{"ok": true, "sent": *n, "read": read})
}
