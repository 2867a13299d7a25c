// asyncproducer: sarama AsyncProducer (WaitForAll, random partitioner, Return.Successes) on a
// multi-partition topic, reading Successes() and Errors(), with partition consumers at
// OffsetNewest started before producing; verifies every message is consumed exactly once at the
// partition/offset its success report gave.
package main

import (
	"fmt"
	"time"

	"github.com/Shopify/sarama"

	"sluicetest/saramatest"
)

func main() {
	o := saramatest.ParseFlags(1000)
	cfg := saramatest.Config(o)
	s := saramatest.NewSummary("asyncproducer", o, cfg)

	client, err := sarama.NewClient(o.Brokers, cfg)
	if err != nil {
		saramatest.Fail(s, fmt.Errorf("NewClient: %w", err))
	}
	defer client.Close()
	parts := saramatest.EnsureTopic(o, cfg, client, s)
	collector := saramatest.StartConsumers(client, o.Topic, parts, s)

	producer, err := sarama.NewAsyncProducer(o.Brokers, cfg)
	if err != nil {
		saramatest.Fail(s, fmt.Errorf("NewAsyncProducer: %w", err))
	}
	produced := map[int]saramatest.Produced{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		deadline := time.After(o.Timeout)
		for len(produced)+s.ProduceErrs < o.N {
			select {
			case m := <-producer.Successes():
				produced[m.Metadata.(int)] = saramatest.Produced{Partition: m.Partition, Offset: m.Offset}
			case e := <-producer.Errors():
				s.ProduceErrs++
				if s.ProduceErrs <= 5 {
					s.Errors = append(s.Errors, fmt.Sprintf("produce error for %v: %v", e.Msg.Metadata, e.Err))
				}
			case <-deadline:
				s.Errors = append(s.Errors, fmt.Sprintf("only %d successes and %d errors of %d within %v", len(produced), s.ProduceErrs, o.N, o.Timeout))
				return
			}
		}
	}()
send:
	for i := 0; i < o.N; i++ {
		select {
		case producer.Input() <- saramatest.Message(cfg, o.Topic, i):
		case <-done: // the reader gave up (deadline); stop feeding instead of blocking
			break send
		}
	}
	<-done
	producer.AsyncClose()

	collector.Wait(len(produced), o.Timeout)
	saramatest.Verify(s, cfg, o.N, produced, collector, parts)
	saramatest.Finish(s)
}
