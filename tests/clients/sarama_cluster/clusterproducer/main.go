// clusterproducer: a sarama SyncProducer (WaitForAll) writing message i to partition
// i % -partitions of a replicated topic until stdin closes (or -max sends), riding out leader
// failures with sarama's own retries. It prints one line per event, for the test's history:
//
//	send <value>
//	ok <value> <partition> <offset>
//	err <value> <error>
//	done <sends>
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/Shopify/sarama"
)

func main() {
	brokers := flag.String("brokers", "127.0.0.1:9092", "comma-separated broker list")
	topic := flag.String("topic", "", "topic (required)")
	partitions := flag.Int("partitions", 1, "partitions of the topic, written round-robin")
	maxSends := flag.Int("max", 100000, "sends at most")
	prefix := flag.String("prefix", "s", "values are <prefix>-<i>")
	version := flag.String("version", "2.1.0", "Kafka protocol version")
	flag.Parse()
	if *topic == "" || *partitions < 1 {
		fmt.Fprintln(os.Stderr, "clusterproducer: -topic and -partitions >= 1 are required")
		os.Exit(2)
	}

	cfg := sarama.NewConfig()
	cfg.ClientID = "sluice-sarama-cluster-test"
	v, err := sarama.ParseKafkaVersion(*version)
	if err != nil {
		fmt.Fprintln(os.Stderr, "clusterproducer:", err)
		os.Exit(2)
	}
	cfg.Version = v
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Producer.Partitioner = sarama.NewManualPartitioner
	cfg.Producer.Return.Successes = true
	cfg.Producer.Return.Errors = true
	cfg.Producer.Timeout = 10 * time.Second
	// A failover takes a few seconds: retry long enough to ride one out.
	cfg.Producer.Retry.Max = 40
	cfg.Producer.Retry.Backoff = 250 * time.Millisecond
	cfg.Metadata.Retry.Max = 40
	cfg.Metadata.Retry.Backoff = 250 * time.Millisecond
	cfg.Metadata.RefreshFrequency = time.Second
	cfg.Net.DialTimeout = 3 * time.Second
	cfg.Net.ReadTimeout = 10 * time.Second
	cfg.Net.WriteTimeout = 10 * time.Second

	producer, err := sarama.NewSyncProducer(strings.Split(*brokers, ","), cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "clusterproducer: NewSyncProducer:", err)
		os.Exit(1)
	}

	// The test closes our stdin to stop us.
	var stopped int32
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		atomic.StoreInt32(&stopped, 1)
	}()

	out := bufio.NewWriter(os.Stdout)
	sends := 0
	for ; sends < *maxSends && atomic.LoadInt32(&stopped) == 0; sends++ {
		value := fmt.Sprintf("%s-%d", *prefix, sends)
		fmt.Fprintf(out, "send %s\n", value)
		out.Flush()
		msg := &sarama.ProducerMessage{
			Topic:     *topic,
			Partition: int32(sends % *partitions),
			Key:       sarama.StringEncoder(fmt.Sprintf("k-%d", sends)),
			Value:     sarama.StringEncoder(value),
		}
		partition, offset, err := producer.SendMessage(msg)
		if err != nil {
			fmt.Fprintf(out, "err %s %s\n", value, strings.ReplaceAll(err.Error(), "\n", " "))
		} else {
			fmt.Fprintf(out, "ok %s %d %d\n", value, partition, offset)
		}
		out.Flush()
	}
	if err := producer.Close(); err != nil {
		fmt.Fprintln(os.Stderr, "clusterproducer: Close:", err)
	}
	fmt.Fprintf(out, "done %d\n", sends)
	out.Flush()
}
