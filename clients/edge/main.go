// Command botscore-edge is an edge's side of the wire contract in Go: it sends WebLogs to
// Kafka, reads ThreatScores back, and reads the decisions botscore's enforcer keeps in
// Redis, with the code generated from proto/ (module botscore/gen/go), franz-go and
// go-redis. The tests run it against the real broker and Redis to prove that a Go edge and
// the Python pipeline read each other's messages.
//
// Usage:
//
//	botscore-edge send [-brokers HOST:PORT[,...]] [-role edge] -topic web-logs [-compression snappy] < weblogs.jsonl
//	botscore-edge scores [-brokers HOST:PORT[,...]] [-role enforcer] -topic threat-scores -count N [-timeout 60s]
//	botscore-edge decisions [-role edge] < user-ids.txt
//
// All connect as botscore's settings in the environment say (connection.go): Kafka's
// brokers (kafka.bootstrap_servers, unless -brokers), TLS and SASL, and Redis (redis.*), as
// the principal of -role: edge for send and decisions, enforcer (the role that reads
// scores) for scores.
//
// send reads one WebLog per line in protobuf's JSON mapping, sends each keyed by its
// user id (Kafka's murmur2 partitioning, as every botscore producer), and prints where
// each landed: {"partition":P,"offset":O}. A line that is not a WebLog, or has no user
// id, stops it before anything is sent, with the line's number. -compression is the
// record batches' codec: none, gzip, snappy (franz-go's default), lz4 or zstd.
//
// scores reads the topic from its start, without a consumer group, and prints each
// record as {"partition":P,"offset":O,"key":K,"score":{...}} (the ThreatScore in the JSON
// mapping) until it has read N; a record that is not a ThreatScore is printed with
// "error" in place of "score". It fails when N records do not arrive within the timeout.
//
// decisions prints, for each user id read (one per line), what the edge does with that
// user now: {"user":U,"decision":"block"|"challenge"|"allow","ttl_ms":N} (decisions.go).
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	botscorev1 "botscore/gen/go/botscore/v1"

	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// maxLine bounds one JSON line: a WebLog's strings are cut far below this by the
// feature stage, but an edge may log a long path or user agent.
const maxLine = 16 << 20

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: botscore-edge send|scores|decisions ...")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "send":
		err = send(os.Args[2:], os.Stdin, os.Stdout)
	case "scores":
		err = scores(os.Args[2:], os.Stdout)
	case "decisions":
		err = decisions(os.Args[2:], os.Stdin, os.Stdout)
	default:
		err = fmt.Errorf("unknown command %q (send, scores or decisions)", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "botscore-edge:", err)
		os.Exit(1)
	}
}

// connection parses the flags every command takes, and returns the client options that
// reach the brokers as role (connection.go), and the topic.
func connection(
	flags *flag.FlagSet, args []string, role string, env environment,
) (options []kgo.Opt, topic string, err error) {
	list := flags.String("brokers", "", "bootstrap servers, comma-separated "+
		"(default: kafka.bootstrap_servers from the environment, else 127.0.0.1:9092)")
	flags.StringVar(&role, "role", role, "the principal's role: {role} in kafka.sasl_username "+
		"and whose BOTSCORE_KAFKA_*__ROLE variables apply")
	name := flags.String("topic", "", "the topic")
	if err := flags.Parse(args); err != nil {
		return nil, "", err
	}
	if *name == "" {
		return nil, "", errors.New("-topic is required")
	}
	if *list == "" {
		*list = setting(env, role, "kafka", "bootstrap_servers", "127.0.0.1:9092")
	}
	options, err = securityOptions(env, role)
	if err != nil {
		return nil, "", err
	}
	options = append(options, kgo.SeedBrokers(strings.Split(*list, ",")...))
	return options, *name, nil
}

// connect makes a client and asks a broker for the cluster's metadata once: a connection
// refused for good (a wrong password, a certificate not trusted) fails here with its cause,
// where a send or a poll would retry it until its timeout.
func connect(options []kgo.Opt) (*kgo.Client, error) {
	client, err := kgo.NewClient(options...)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := client.Ping(ctx); err != nil {
		client.Close()
		return nil, fmt.Errorf("connecting to the brokers: %w", err)
	}
	return client, nil
}

// readWebLogs parses every line before anything is sent, so a bad line sends nothing.
func readWebLogs(in io.Reader) ([]*botscorev1.WebLog, error) {
	scanner := bufio.NewScanner(in)
	scanner.Buffer(make([]byte, 64<<10), maxLine)
	var logs []*botscorev1.WebLog
	for line := 1; scanner.Scan(); line++ {
		text := strings.TrimSpace(scanner.Text())
		if text == "" {
			continue
		}
		weblog := &botscorev1.WebLog{}
		if err := protojson.Unmarshal([]byte(text), weblog); err != nil {
			return nil, fmt.Errorf("line %d is not a WebLog: %w", line, err)
		}
		if weblog.GetUserId() == "" {
			return nil, fmt.Errorf("line %d has no user_id, which is its key", line)
		}
		logs = append(logs, weblog)
	}
	if err := scanner.Err(); err != nil {
		return nil, fmt.Errorf("reading WebLogs: %w", err)
	}
	return logs, nil
}

var codecs = map[string]kgo.CompressionCodec{
	"none":   kgo.NoCompression(),
	"gzip":   kgo.GzipCompression(),
	"snappy": kgo.SnappyCompression(),
	"lz4":    kgo.Lz4Compression(),
	"zstd":   kgo.ZstdCompression(),
}

func send(args []string, in io.Reader, out io.Writer) error {
	flags := flag.NewFlagSet("send", flag.ContinueOnError)
	compression := flags.String("compression", "snappy", "none, gzip, snappy, lz4 or zstd")
	options, topic, err := connection(flags, args, "edge", os.LookupEnv)
	if err != nil {
		return err
	}
	codec, known := codecs[*compression]
	if !known {
		return fmt.Errorf("unknown -compression %q (none, gzip, snappy, lz4 or zstd)", *compression)
	}
	logs, err := readWebLogs(in)
	if err != nil {
		return err
	}
	records := make([]*kgo.Record, len(logs))
	for i, weblog := range logs {
		value, err := proto.Marshal(weblog)
		if err != nil {
			return fmt.Errorf("encoding WebLog %d: %w", i+1, err)
		}
		records[i] = &kgo.Record{Topic: topic, Key: []byte(weblog.GetUserId()), Value: value}
	}
	// Idempotent, acks from all in-sync replicas: franz-go's defaults, as botscore's.
	client, err := connect(append(options,
		kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil)),
		kgo.ProducerBatchCompression(codec),
	))
	if err != nil {
		return err
	}
	defer client.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	results := client.ProduceSync(ctx, records...)
	if err := results.FirstErr(); err != nil {
		return fmt.Errorf("sending to %s: %w", topic, err)
	}
	// Results come in the order the sends completed; the client set each record's place.
	encoder := json.NewEncoder(out)
	for _, record := range records {
		placed := map[string]any{"partition": record.Partition, "offset": record.Offset}
		if err := encoder.Encode(placed); err != nil {
			return err
		}
	}
	return nil
}

func scores(args []string, out io.Writer) error {
	flags := flag.NewFlagSet("scores", flag.ContinueOnError)
	count := flags.Int("count", 0, "how many records to read")
	timeout := flags.Duration("timeout", 60*time.Second, "how long to wait for them")
	options, topic, err := connection(flags, args, "enforcer", os.LookupEnv)
	if err != nil {
		return err
	}
	if *count <= 0 {
		return errors.New("-count must be positive")
	}
	client, err := connect(append(options,
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
	))
	if err != nil {
		return err
	}
	defer client.Close()
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	encoder := json.NewEncoder(out)
	read := 0
	for read < *count {
		fetches := client.PollFetches(ctx)
		if ctx.Err() != nil {
			return fmt.Errorf("read %d of %d records of %s in %s", read, *count, topic, *timeout)
		}
		for _, fetchErr := range fetches.Errors() {
			fmt.Fprintf(os.Stderr, "botscore-edge: fetching %s/%d: %v\n", fetchErr.Topic, fetchErr.Partition, fetchErr.Err)
		}
		var failed error
		fetches.EachRecord(func(record *kgo.Record) {
			if failed != nil || read >= *count {
				return
			}
			read++
			failed = encoder.Encode(scoreLine(record))
		})
		if failed != nil {
			return failed
		}
	}
	return nil
}

// scoreLine is what scores prints for one record.
func scoreLine(record *kgo.Record) map[string]any {
	line := map[string]any{
		"partition": record.Partition,
		"offset":    record.Offset,
		"key":       string(record.Key),
	}
	score := &botscorev1.ThreatScore{}
	if err := proto.Unmarshal(record.Value, score); err != nil {
		line["error"] = err.Error()
		return line
	}
	line["score"] = json.RawMessage(protojson.Format(score))
	return line
}
