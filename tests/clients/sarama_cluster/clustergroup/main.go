// clustergroup: a sarama ConsumerGroup member (sarama 1.22, Kafka 2.1.0 protocol) reading
// -topic in -group until stdin closes, marking every message (committed every 500 ms) and
// riding out coordinator changes with sarama's own retries (a failed session is started
// again). It prints one line per event, for the test's history:
//
//	assigned <partition>
//	read <partition> <offset> <value>
//	error <text>
//	done <reads>
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/Shopify/sarama"
)

// printer serialises output lines from the handler's goroutines.
type printer struct {
	mu    sync.Mutex
	out   *bufio.Writer
	reads int
}

func (p *printer) line(format string, args ...interface{}) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.out, format+"\n", args...)
	p.out.Flush()
}

type handler struct{ p *printer }

func (h handler) Setup(sess sarama.ConsumerGroupSession) error {
	for _, partitions := range sess.Claims() {
		for _, partition := range partitions {
			h.p.line("assigned %d", partition)
		}
	}
	return nil
}

func (h handler) Cleanup(sarama.ConsumerGroupSession) error { return nil }

func (h handler) ConsumeClaim(sess sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	for msg := range claim.Messages() {
		h.p.mu.Lock()
		h.p.reads++
		h.p.mu.Unlock()
		h.p.line("read %d %d %s", msg.Partition, msg.Offset, string(msg.Value))
		sess.MarkMessage(msg, "")
	}
	return nil
}

func main() {
	brokers := flag.String("brokers", "127.0.0.1:9092", "comma-separated broker list")
	topic := flag.String("topic", "", "topic (required)")
	group := flag.String("group", "", "group id (required)")
	flag.Parse()
	if *topic == "" || *group == "" {
		fmt.Fprintln(os.Stderr, "clustergroup: -topic and -group are required")
		os.Exit(2)
	}

	cfg := sarama.NewConfig()
	cfg.ClientID = "sluice-sarama-cluster-group"
	cfg.Version = sarama.V2_1_0_0
	cfg.Consumer.Offsets.Initial = sarama.OffsetOldest
	cfg.Consumer.Offsets.CommitInterval = 500 * time.Millisecond
	cfg.Consumer.Group.Session.Timeout = 6 * time.Second
	cfg.Consumer.Group.Heartbeat.Interval = 500 * time.Millisecond
	cfg.Consumer.Group.Rebalance.Retry.Backoff = 250 * time.Millisecond
	cfg.Consumer.Group.Rebalance.Retry.Max = 40
	cfg.Consumer.Return.Errors = true
	cfg.Metadata.Retry.Max = 40
	cfg.Metadata.Retry.Backoff = 250 * time.Millisecond
	cfg.Metadata.RefreshFrequency = time.Second
	cfg.Net.DialTimeout = 3 * time.Second
	cfg.Net.ReadTimeout = 10 * time.Second
	cfg.Net.WriteTimeout = 10 * time.Second

	if os.Getenv("SLUICE_TEST_SARAMA_DEBUG") != "" {
		sarama.Logger = log.New(os.Stderr, "[sarama] ", log.Lmicroseconds)
	}
	p := &printer{out: bufio.NewWriter(os.Stdout)}
	client, err := sarama.NewClient(strings.Split(*brokers, ","), cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "clustergroup: NewClient:", err)
		os.Exit(1)
	}
	consumer, err := sarama.NewConsumerGroupFromClient(*group, client)
	if err != nil {
		fmt.Fprintln(os.Stderr, "clustergroup: NewConsumerGroup:", err)
		os.Exit(1)
	}
	go func() {
		for err := range consumer.Errors() {
			if err == nil {
				// sarama 1.22's heartbeat loop sends a nil error when a heartbeat is answered
				// with a code it does not handle (NOT_COORDINATOR after the coordinator moved,
				// as Kafka answers too); it then ends the session and the consumer rejoins.
				// Calling Error() on it crashed this program, which looked like a stall.
				p.line("error nil (a heartbeat refused: the session ends and the consumer rejoins)")
				continue
			}
			p.line("error %s", strings.ReplaceAll(err.Error(), "\n", " "))
		}
	}()

	// The test closes our stdin to stop us.
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		cancel()
	}()
	for ctx.Err() == nil {
		if err := consumer.Consume(ctx, []string{*topic}, handler{p}); err != nil && ctx.Err() == nil {
			p.line("error %s", strings.ReplaceAll(err.Error(), "\n", " "))
			// sarama 1.22 keeps its coordinator cached after a connection error (it asks
			// FindCoordinator again only when a live coordinator answers NOT_COORDINATOR, or
			// when its offset manager fails a commit), so once the coordinator node dies a
			// session that already ended retries that dead node until it comes back, with
			// Kafka as here. Ask again.
			if err := client.RefreshCoordinator(*group); err != nil {
				p.line("error refresh coordinator: %s", strings.ReplaceAll(err.Error(), "\n", " "))
			}
			time.Sleep(250 * time.Millisecond)
		}
	}
	if err := consumer.Close(); err != nil {
		fmt.Fprintln(os.Stderr, "clustergroup: close:", err)
	}
	if err := client.Close(); err != nil {
		fmt.Fprintln(os.Stderr, "clustergroup: close client:", err)
	}
	p.mu.Lock()
	reads := p.reads
	p.mu.Unlock()
	p.line("done %d", reads)
}
