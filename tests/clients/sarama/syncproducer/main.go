// syncproducer: sarama SyncProducer (WaitForAll, random partitioner) on a multi-partition
// topic, with partition consumers at OffsetNewest started before producing; verifies every
// message is consumed exactly once at the partition/offset the producer was told.
package main

import (
	"fmt"

	"github.com/Shopify/sarama"

	"sluicetest/saramatest"
)

func main() {
	o := saramatest.ParseFlags(300)
	cfg := saramatest.Config(o)
	s := saramatest.NewSummary("syncproducer", o, cfg)

	client, err := sarama.NewClient(o.Brokers, cfg)
	if err != nil {
		saramatest.Fail(s, fmt.Errorf("NewClient: %w", err))
	}
	defer client.Close()
	parts := saramatest.EnsureTopic(o, cfg, client, s)
	collector := saramatest.StartConsumers(client, o.Topic, parts, s)

	producer, err := sarama.NewSyncProducer(o.Brokers, cfg)
	if err != nil {
		saramatest.Fail(s, fmt.Errorf("NewSyncProducer: %w", err))
	}
	produced := map[int]saramatest.Produced{}
	for i := 0; i < o.N; i++ {
		partition, offset, err := producer.SendMessage(saramatest.Message(cfg, o.Topic, i))
		if err != nil {
			s.ProduceErrs++
			if s.ProduceErrs <= 5 {
				s.Errors = append(s.Errors, fmt.Sprintf("SendMessage %d: %v", i, err))
			}
			continue
		}
		produced[i] = saramatest.Produced{Partition: partition, Offset: offset}
	}
	if err := producer.Close(); err != nil {
		s.Errors = append(s.Errors, fmt.Sprintf("producer.Close: %v", err))
	}

	collector.Wait(len(produced), o.Timeout)
	saramatest.Verify(s, cfg, o.N, produced, collector, parts)
	saramatest.Finish(s)
}
