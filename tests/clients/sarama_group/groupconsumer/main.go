// groupconsumer: sarama 1.22 ConsumerGroup (config.Version V0_10_2_0: JoinGroup v1,
// OffsetCommit v2, OffsetFetch v1) against a 6-partition topic:
//  1. three members join and settle; 600 keyed messages are each processed exactly once;
//  2. one member closes: its partitions move to the other two within the session timeout;
//  3. all members close after committing; the broker's committed offsets equal the log ends;
//  4. a new member of the same group resumes exactly after the commits.
// Prints one JSON summary line; exits 1 on any failure.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/Shopify/sarama"
)

type summary struct {
	OK             bool     `json:"ok"`
	Processed      int      `json:"processed"`
	Duplicates     int      `json:"duplicates"`
	PerMember      []int    `json:"per_member"`
	TakeoverMs     int64    `json:"takeover_ms"`
	ResumedCount   int      `json:"resumed_count"`
	ResumedFirst   []int64  `json:"resumed_first_offsets"`
	CommittedAtEnd bool     `json:"committed_at_end"`
	Errors         []string `json:"errors"`
}

var (
	brokers    = flag.String("brokers", "127.0.0.1:9092", "bootstrap")
	topic      = flag.String("topic", "sarama-group", "topic")
	group      = flag.String("group", "sarama-group", "group id")
	partitions = flag.Int("partitions", 6, "partitions")
	n          = flag.Int("n", 600, "messages in phase 1")
	timeout    = flag.Duration("timeout", 60*time.Second, "bound on each phase")
	s          summary
)

func config() *sarama.Config {
	cfg := sarama.NewConfig()
	cfg.Version = sarama.V0_10_2_0
	cfg.Consumer.Offsets.Initial = sarama.OffsetOldest
	cfg.Consumer.Offsets.CommitInterval = 200 * time.Millisecond
	cfg.Consumer.Group.Session.Timeout = 6 * time.Second
	cfg.Consumer.Group.Heartbeat.Interval = 500 * time.Millisecond
	cfg.Consumer.Return.Errors = true
	cfg.Producer.Return.Successes = true
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	return cfg
}

func fail(format string, args ...interface{}) {
	s.Errors = append(s.Errors, fmt.Sprintf(format, args...))
}

func finish() {
	s.OK = len(s.Errors) == 0
	out, _ := json.Marshal(s)
	fmt.Println(string(out))
	if !s.OK {
		os.Exit(1)
	}
	os.Exit(0)
}

// record is one delivered message.
type record struct {
	member    int
	partition int32
	offset    int64
	key       string
}

// member is one ConsumerGroup running its Consume loop in a goroutine.
type member struct {
	id     int
	group  sarama.ConsumerGroup
	cancel context.CancelFunc
	done   chan struct{}
	mu     sync.Mutex
	claims []int32 // partitions of the current session
	gen    int32
}

type handler struct {
	m   *member
	out chan<- record
}

func (h handler) Setup(sess sarama.ConsumerGroupSession) error {
	h.m.mu.Lock()
	h.m.claims = append([]int32(nil), sess.Claims()[*topic]...)
	h.m.gen = sess.GenerationID()
	h.m.mu.Unlock()
	return nil
}

func (h handler) Cleanup(sess sarama.ConsumerGroupSession) error {
	h.m.mu.Lock()
	h.m.claims = nil
	h.m.mu.Unlock()
	return nil
}

func (h handler) ConsumeClaim(sess sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	for msg := range claim.Messages() {
		h.out <- record{h.m.id, msg.Partition, msg.Offset, string(msg.Key)}
		sess.MarkMessage(msg, "")
	}
	return nil
}

func start(id int, out chan<- record) *member {
	g, err := sarama.NewConsumerGroup(strings.Split(*brokers, ","), *group, config())
	if err != nil {
		fail("member %d: NewConsumerGroup: %v", id, err)
		finish()
	}
	ctx, cancel := context.WithCancel(context.Background())
	m := &member{id: id, group: g, cancel: cancel, done: make(chan struct{})}
	go func() {
		for err := range g.Errors() {
			fmt.Fprintf(os.Stderr, "member %d error: %v\n", id, err)
		}
	}()
	go func() {
		defer close(m.done)
		for ctx.Err() == nil {
			if err := g.Consume(ctx, []string{*topic}, handler{m, out}); err != nil && ctx.Err() == nil {
				fmt.Fprintf(os.Stderr, "member %d consume: %v\n", id, err)
				time.Sleep(200 * time.Millisecond)
			}
		}
	}()
	return m
}

// stop ends the member's session (committing marked offsets) and leaves the group.
func (m *member) stop() {
	m.cancel()
	<-m.done
	if err := m.group.Close(); err != nil {
		fail("member %d close: %v", m.id, err)
	}
}

func (m *member) current() []int32 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]int32(nil), m.claims...)
}

// waitBalanced waits until the members' claims cover every partition exactly once.
func waitBalanced(members []*member, what string) {
	deadline := time.Now().Add(*timeout)
	for time.Now().Before(deadline) {
		seen := map[int32]int{}
		empty := false
		for _, m := range members {
			c := m.current()
			if len(c) == 0 {
				empty = true
			}
			for _, p := range c {
				seen[p]++
			}
		}
		ok := !empty && len(seen) == *partitions
		for _, v := range seen {
			ok = ok && v == 1
		}
		if ok {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	fail("%s: members never covered all %d partitions", what, *partitions)
	finish()
}

func produce(client sarama.Client, from, count int) map[string]bool {
	p, err := sarama.NewSyncProducerFromClient(client)
	if err != nil {
		fail("producer: %v", err)
		finish()
	}
	keys := map[string]bool{}
	for i := from; i < from+count; i++ {
		k := fmt.Sprintf("key-%06d", i)
		if _, _, err := p.SendMessage(&sarama.ProducerMessage{Topic: *topic, Key: sarama.StringEncoder(k), Value: sarama.StringEncoder("v" + k)}); err != nil {
			fail("send %d: %v", i, err)
			finish()
		}
		keys[k] = true
	}
	return keys
}

// collect reads records until every key in want arrived (or the timeout passes).
func collect(out <-chan record, want map[string]bool, got map[string][]record) {
	deadline := time.After(*timeout)
	missing := len(want)
	for missing > 0 {
		select {
		case r := <-out:
			if want[r.key] && len(got[r.key]) == 0 {
				missing--
			}
			got[r.key] = append(got[r.key], r)
		case <-deadline:
			fail("only %d of %d messages arrived", len(want)-missing, len(want))
			finish()
		}
	}
}

func main() {
	flag.Parse()
	cfg := config()
	client, err := sarama.NewClient(strings.Split(*brokers, ","), cfg)
	if err != nil {
		fail("NewClient: %v", err)
		finish()
	}
	defer client.Close()
	admin, err := sarama.NewClusterAdmin(strings.Split(*brokers, ","), cfg)
	if err != nil {
		fail("NewClusterAdmin: %v", err)
		finish()
	}
	if err := admin.CreateTopic(*topic, &sarama.TopicDetail{NumPartitions: int32(*partitions), ReplicationFactor: 1}, false); err != nil {
		fail("CreateTopic: %v", err)
		finish()
	}
	admin.Close()

	out := make(chan record, 10000)
	members := []*member{start(0, out), start(1, out), start(2, out)}
	waitBalanced(members, "three members")

	// Phase 1: every message processed exactly once across the three members.
	want := produce(client, 0, *n)
	got := map[string][]record{}
	collect(out, want, got)
	time.Sleep(500 * time.Millisecond) // let any duplicate show up
	for len(out) > 0 {
		r := <-out
		got[r.key] = append(got[r.key], r)
	}
	s.PerMember = make([]int, 3)
	for k := range want {
		s.Processed++
		if len(got[k]) > 1 {
			s.Duplicates += len(got[k]) - 1
		}
		s.PerMember[got[k][0].member]++
	}
	if s.Duplicates > 0 {
		fail("%d duplicate deliveries", s.Duplicates)
	}
	for i, c := range s.PerMember {
		if c == 0 {
			fail("member %d processed nothing", i)
		}
	}

	// Phase 2: member 2 closes; the others take its partitions within the session timeout.
	closed := time.Now()
	members[2].stop()
	waitBalanced(members[:2], "after member 2 left")
	s.TakeoverMs = time.Since(closed).Milliseconds()
	if time.Since(closed) > 6*time.Second {
		fail("takeover took %v, beyond the 6s session timeout", time.Since(closed))
	}
	want2 := produce(client, *n, 60)
	got2 := map[string][]record{}
	collect(out, want2, got2)
	for k := range want2 {
		if got2[k][0].member == 2 {
			fail("closed member 2 received %s", k)
		}
	}

	// Phase 3: all close after committing; commits equal the log ends.
	members[0].stop()
	members[1].stop()
	ends := map[int32]int64{}
	for p := int32(0); p < int32(*partitions); p++ {
		end, err := client.GetOffset(*topic, p, sarama.OffsetNewest)
		if err != nil {
			fail("GetOffset %d: %v", p, err)
		}
		ends[p] = end
	}
	om, err := sarama.NewOffsetManagerFromClient(*group, client)
	if err != nil {
		fail("NewOffsetManagerFromClient: %v", err)
		finish()
	}
	s.CommittedAtEnd = true
	for p := int32(0); p < int32(*partitions); p++ {
		pom, err := om.ManagePartition(*topic, p)
		if err != nil {
			fail("ManagePartition %d: %v", p, err)
			continue
		}
		next, _ := pom.NextOffset()
		if next != ends[p] {
			s.CommittedAtEnd = false
			fail("partition %d committed %d, log end %d", p, next, ends[p])
		}
		pom.Close()
	}
	om.Close()

	// Phase 4: a new member resumes exactly after the commits.
	out4 := make(chan record, 1000)
	fresh := start(3, out4)
	waitBalanced([]*member{fresh}, "new member")
	want4 := produce(client, *n+60, 30)
	got4 := map[string][]record{}
	collect(out4, want4, got4)
	time.Sleep(300 * time.Millisecond)
	for len(out4) > 0 {
		r := <-out4
		got4[r.key] = append(got4[r.key], r)
	}
	for k, rs := range got4 {
		if !want4[k] {
			fail("new member re-read already committed message %s (partition %d offset %d)", k, rs[0].partition, rs[0].offset)
		}
		s.ResumedCount += len(rs)
	}
	for p := int32(0); p < int32(*partitions); p++ {
		first := int64(-1)
		for _, rs := range got4 {
			for _, r := range rs {
				if r.partition == p && (first < 0 || r.offset < first) {
					first = r.offset
				}
			}
		}
		s.ResumedFirst = append(s.ResumedFirst, first)
		if first >= 0 && first != ends[p] {
			fail("partition %d resumed at %d, committed %d", p, first, ends[p])
		}
	}
	fresh.stop()
	finish()
}
