// Package saramatest holds what the sarama client programs share: flags, config, topic
// creation, partition consumers started at OffsetNewest, and exact verification of what was
// produced against what was consumed. Each program prints one JSON summary line and exits
// non-zero on any mismatch.
package saramatest

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/Shopify/sarama"
)

// Options are the command-line flags every program takes.
type Options struct {
	Brokers    []string
	Topic      string
	N          int
	Version    string // "" = sarama.NewConfig() default (Kafka 0.8.2 protocol)
	Partitions int
	Timeout    time.Duration
}

// ParseFlags reads the common flags.
func ParseFlags(defaultN int) Options {
	brokers := flag.String("brokers", "127.0.0.1:9092", "comma-separated broker list")
	topic := flag.String("topic", "", "topic (required)")
	n := flag.Int("n", defaultN, "messages to produce")
	version := flag.String("version", "", "Kafka protocol version, e.g. 2.1.0; empty = sarama default")
	partitions := flag.Int("partitions", 3, "partitions the topic must have")
	timeout := flag.Duration("timeout", 60*time.Second, "bound for each phase")
	flag.Parse()
	if *topic == "" {
		Fail(nil, fmt.Errorf("-topic is required"))
	}
	return Options{
		Brokers:    strings.Split(*brokers, ","),
		Topic:      *topic,
		N:          *n,
		Version:    *version,
		Partitions: *partitions,
		Timeout:    *timeout,
	}
}

// Config builds the sarama config: acks=all, random partitioner, successes returned.
func Config(o Options) *sarama.Config {
	cfg := sarama.NewConfig()
	cfg.ClientID = "sluice-sarama-test"
	if o.Version != "" {
		v, err := sarama.ParseKafkaVersion(o.Version)
		if err != nil {
			Fail(nil, err)
		}
		cfg.Version = v
	}
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Producer.Partitioner = sarama.NewRandomPartitioner
	cfg.Producer.Return.Successes = true
	cfg.Producer.Return.Errors = true
	cfg.Producer.Timeout = 10 * time.Second
	cfg.Producer.Retry.Max = 3
	cfg.Consumer.Return.Errors = true
	cfg.Consumer.MaxWaitTime = 250 * time.Millisecond
	cfg.Metadata.Retry.Max = 10
	cfg.Metadata.Retry.Backoff = 200 * time.Millisecond
	cfg.Net.DialTimeout = 10 * time.Second
	return cfg
}

// Headers are only sent when the protocol version has them (0.11+).
func HasHeaders(cfg *sarama.Config) bool {
	return cfg.Version.IsAtLeast(sarama.V0_11_0_0)
}

// Key, Value and Header give message i its exact bytes.
func Key(i int) []byte { return []byte(fmt.Sprintf("k-%06d", i)) }

func Value(i int) []byte {
	v := []byte(fmt.Sprintf("v-%06d-", i))
	for j := 0; j < (i*13)%180; j++ {
		v = append(v, byte((i*7+j*3)%256))
	}
	return v
}

func Headers(i int) []sarama.RecordHeader {
	return []sarama.RecordHeader{{Key: []byte("seq"), Value: []byte(fmt.Sprint(i))}}
}

// Message builds message i for the producer.
func Message(cfg *sarama.Config, topic string, i int) *sarama.ProducerMessage {
	m := &sarama.ProducerMessage{
		Topic:    topic,
		Key:      sarama.ByteEncoder(Key(i)),
		Value:    sarama.ByteEncoder(Value(i)),
		Metadata: i,
	}
	if HasHeaders(cfg) {
		m.Headers = Headers(i)
	}
	return m
}

// EnsureTopic creates the topic with ClusterAdmin when the protocol version has CreateTopics
// (0.10.1+); otherwise the broker auto-creates it (started with --default-partitions). Then it
// waits, bounded, until metadata shows the wanted partition count.
func EnsureTopic(o Options, cfg *sarama.Config, client sarama.Client, s *Summary) []int32 {
	if cfg.Version.IsAtLeast(sarama.V0_10_1_0) {
		admin, err := sarama.NewClusterAdmin(o.Brokers, cfg)
		if err != nil {
			Fail(s, fmt.Errorf("NewClusterAdmin: %w", err))
		}
		err = admin.CreateTopic(o.Topic, &sarama.TopicDetail{
			NumPartitions:     int32(o.Partitions),
			ReplicationFactor: 1,
		}, false)
		if err != nil {
			Fail(s, fmt.Errorf("ClusterAdmin.CreateTopic: %w", err))
		}
		_ = admin.Close()
		s.CreatedBy = "ClusterAdmin"
	} else {
		s.CreatedBy = "auto-create"
	}
	deadline := time.Now().Add(o.Timeout)
	for {
		_ = client.RefreshMetadata(o.Topic)
		parts, err := client.Partitions(o.Topic)
		if err == nil && len(parts) == o.Partitions {
			return parts
		}
		if time.Now().After(deadline) {
			Fail(s, fmt.Errorf("topic %s: partitions %v (err %v), want %d", o.Topic, parts, err, o.Partitions))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// Produced is what the producer was told for one message.
type Produced struct {
	Partition int32
	Offset    int64
}

// Collector gathers what the partition consumers receive.
type Collector struct {
	mu        sync.Mutex
	msgs      []*sarama.ConsumerMessage
	errs      []string
	consumers []sarama.PartitionConsumer
	wg        sync.WaitGroup
}

// StartConsumers starts one partition consumer per partition at OffsetNewest, before anything
// is produced, as sarama's examples do.
func StartConsumers(client sarama.Client, topic string, parts []int32, s *Summary) *Collector {
	consumer, err := sarama.NewConsumerFromClient(client)
	if err != nil {
		Fail(s, fmt.Errorf("NewConsumerFromClient: %w", err))
	}
	c := &Collector{}
	for _, p := range parts {
		pc, err := consumer.ConsumePartition(topic, p, sarama.OffsetNewest)
		if err != nil {
			Fail(s, fmt.Errorf("ConsumePartition(%d, OffsetNewest): %w", p, err))
		}
		c.consumers = append(c.consumers, pc)
		c.wg.Add(2)
		go func(pc sarama.PartitionConsumer) {
			defer c.wg.Done()
			for m := range pc.Messages() {
				c.mu.Lock()
				c.msgs = append(c.msgs, m)
				c.mu.Unlock()
			}
		}(pc)
		go func(pc sarama.PartitionConsumer) {
			defer c.wg.Done()
			for e := range pc.Errors() {
				c.mu.Lock()
				c.errs = append(c.errs, e.Error())
				c.mu.Unlock()
			}
		}(pc)
	}
	return c
}

func (c *Collector) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.msgs)
}

// Wait until want messages arrived (bounded), linger briefly for duplicates, then stop.
func (c *Collector) Wait(want int, timeout time.Duration) {
	deadline := time.Now().Add(timeout)
	for c.count() < want && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond)
	for _, pc := range c.consumers {
		pc.AsyncClose()
	}
	c.wg.Wait()
}

// Summary is the JSON line each program prints.
type Summary struct {
	Program      string        `json:"program"`
	Version      string        `json:"version"`
	Topic        string        `json:"topic"`
	CreatedBy    string        `json:"created_by"`
	Produced     int           `json:"produced"`
	ProduceErrs  int           `json:"produce_errors"`
	Consumed     int           `json:"consumed"`
	PerPartition map[int32]int `json:"per_partition"`
	Seconds      float64       `json:"seconds"`
	Errors       []string      `json:"errors"`
	OK           bool          `json:"ok"`
	start        time.Time
}

// NewSummary starts the clock.
func NewSummary(program string, o Options, cfg *sarama.Config) *Summary {
	return &Summary{
		Program:      program,
		Version:      cfg.Version.String(),
		Topic:        o.Topic,
		PerPartition: map[int32]int{},
		Errors:       []string{},
		start:        time.Now(),
	}
}

func (s *Summary) addErr(format string, args ...interface{}) {
	if len(s.Errors) < 20 {
		s.Errors = append(s.Errors, fmt.Sprintf(format, args...))
	}
}

// Verify checks every produced message was consumed exactly once, on the partition and at the
// offset the producer was told, with identical key, value (and headers when supported), that
// each partition's offsets are 0..count-1, and that every partition received messages.
func Verify(s *Summary, cfg *sarama.Config, n int, produced map[int]Produced, c *Collector, parts []int32) {
	s.Produced = len(produced)
	if len(produced) != n {
		s.addErr("producer acknowledged %d of %d messages", len(produced), n)
	}
	for _, e := range c.errs {
		s.addErr("consumer error: %s", e)
	}
	s.Consumed = len(c.msgs)
	seen := map[int]bool{}
	for _, m := range c.msgs {
		var i int
		if _, err := fmt.Sscanf(string(m.Key), "k-%06d", &i); err != nil {
			s.addErr("unexpected key %q at %d/%d", m.Key, m.Partition, m.Offset)
			continue
		}
		if seen[i] {
			s.addErr("message %d received twice (again at %d/%d)", i, m.Partition, m.Offset)
			continue
		}
		seen[i] = true
		p, ok := produced[i]
		if !ok {
			s.addErr("message %d consumed but never acknowledged", i)
			continue
		}
		if p.Partition != m.Partition || p.Offset != m.Offset {
			s.addErr("message %d: producer said %d/%d, consumer got %d/%d", i, p.Partition, p.Offset, m.Partition, m.Offset)
		}
		if string(m.Value) != string(Value(i)) {
			s.addErr("message %d: value mismatch (%d bytes, want %d)", i, len(m.Value), len(Value(i)))
		}
		if HasHeaders(cfg) {
			want := Headers(i)
			if len(m.Headers) != len(want) || string(m.Headers[0].Key) != string(want[0].Key) || string(m.Headers[0].Value) != string(want[0].Value) {
				s.addErr("message %d: headers mismatch: %v", i, m.Headers)
			}
		}
		s.PerPartition[m.Partition]++
	}
	for i := range produced {
		if !seen[i] {
			s.addErr("message %d acknowledged at %d/%d but never consumed", i, produced[i].Partition, produced[i].Offset)
		}
	}
	offsets := map[int32]map[int64]bool{}
	for _, p := range produced {
		if offsets[p.Partition] == nil {
			offsets[p.Partition] = map[int64]bool{}
		}
		if offsets[p.Partition][p.Offset] {
			s.addErr("offset %d/%d acknowledged for two messages", p.Partition, p.Offset)
		}
		offsets[p.Partition][p.Offset] = true
	}
	for _, part := range parts {
		count := int64(len(offsets[part]))
		if count == 0 {
			s.addErr("partition %d received no messages (random partitioner, %d messages)", part, n)
		}
		for off := int64(0); off < count; off++ {
			if !offsets[part][off] {
				s.addErr("partition %d: offsets are not 0..%d (missing %d)", part, count-1, off)
				break
			}
		}
	}
}

// Finish prints the summary and exits 0 only if there were no errors.
func Finish(s *Summary) {
	s.Seconds = time.Since(s.start).Seconds()
	s.OK = len(s.Errors) == 0
	out, _ := json.Marshal(s)
	fmt.Println(string(out))
	if !s.OK {
		os.Exit(1)
	}
	os.Exit(0)
}

// Fail records a fatal error and exits non-zero with a summary.
func Fail(s *Summary, err error) {
	if s == nil {
		s = &Summary{PerPartition: map[int32]int{}, start: time.Now()}
	}
	s.Errors = append(s.Errors, "fatal: "+err.Error())
	s.OK = false
	out, _ := json.Marshal(s)
	fmt.Println(string(out))
	os.Exit(2)
}
