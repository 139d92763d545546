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

	"github.com/redis/go-redis/v9"
)

// decisionPrefix names a user's decision in Redis, as botscore.enforcement.decisions
// writes it: "block" or "challenge", expiring when it lapses; no key means allow.
const decisionPrefix = "bs:edge:decision:"

// storedDecisions are the values the enforcer writes; any other allows (fails open), as
// botscore's Python edge does.
var storedDecisions = map[string]bool{"block": true, "challenge": true}

// usersPerRoundTrip bounds one pipeline, as the Python edge's MGET of 1000.
const usersPerRoundTrip = 1000

// decisions reads user ids, one per line, and prints what the edge does with each now:
// {"user":U,"decision":"block","ttl_ms":N} ("ttl_ms" only for a block or challenge).
// Unlike a serving edge, which must allow everyone while Redis is unreachable, it fails
// with the cause.
func decisions(args []string, in io.Reader, out io.Writer) error {
	flags := flag.NewFlagSet("decisions", flag.ContinueOnError)
	role := flags.String("role", "edge", "the principal's role: {role} in redis.username "+
		"and whose BOTSCORE_REDIS_*__ROLE variables apply")
	if err := flags.Parse(args); err != nil {
		return err
	}
	options, err := redisOptions(os.LookupEnv, *role)
	if err != nil {
		return err
	}
	users, err := readUsers(in)
	if err != nil {
		return err
	}
	client := redis.NewClient(options)
	defer func() { _ = client.Close() }()
	encoder := json.NewEncoder(out)
	for start := 0; start < len(users); start += usersPerRoundTrip {
		batch := users[start:min(start+usersPerRoundTrip, len(users))]
		lines, err := lookUp(client, batch)
		if err != nil {
			return fmt.Errorf("reading decisions from Redis at %s: %w", options.Addr, err)
		}
		for _, line := range lines {
			if err := encoder.Encode(line); err != nil {
				return err
			}
		}
	}
	return nil
}

// lookUp reads each user's decision and the time it has left, in one round trip.
func lookUp(client *redis.Client, users []string) ([]map[string]any, error) {
	ctx := context.Background()
	pipe := client.Pipeline()
	values := make([]*redis.StringCmd, len(users))
	lives := make([]*redis.DurationCmd, len(users))
	for i, user := range users {
		values[i] = pipe.Get(ctx, decisionPrefix+user)
		lives[i] = pipe.PTTL(ctx, decisionPrefix+user)
	}
	// A user without a decision answers nil, which go-redis reports as an error.
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, err
	}
	lines := make([]map[string]any, len(users))
	for i, user := range users {
		line := map[string]any{"user": user, "decision": "allow"}
		if value, err := values[i].Result(); err == nil && storedDecisions[value] {
			line["decision"] = value
			line["ttl_ms"] = lives[i].Val().Milliseconds()
		} else if err != nil && !errors.Is(err, redis.Nil) {
			return nil, err
		}
		lines[i] = line
	}
	return lines, nil
}

// readUsers reads one user id per line; blank lines are skipped.
func readUsers(in io.Reader) ([]string, error) {
	scanner := bufio.NewScanner(in)
	scanner.Buffer(make([]byte, 64<<10), maxLine)
	var users []string
	for scanner.Scan() {
		if user := strings.TrimSpace(scanner.Text()); user != "" {
			users = append(users, user)
		}
	}
	if err := scanner.Err(); err != nil {
		return nil, fmt.Errorf("reading user ids: %w", err)
	}
	return users, nil
}
