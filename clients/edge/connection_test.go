package main

import (
	"strings"
	"testing"
)

// env is an environment of exactly these variables.
func env(vars map[string]string) environment {
	return func(key string) (string, bool) {
		value, set := vars[key]
		return value, set
	}
}

func TestARolesOwnVariableComesBeforeTheSharedOneAndAnEmptyOneCounts(t *testing.T) {
	vars := env(map[string]string{
		"BOTSCORE_KAFKA_SASL_PASSWORD":           "shared",
		"BOTSCORE_KAFKA_SASL_PASSWORD__ENFORCER": "enforcer's",
		"BOTSCORE_KAFKA_SSL_CAFILE__EDGE":        "",
		"BOTSCORE_KAFKA_SSL_CAFILE":              "/ca.pem",
	})
	for _, c := range []struct{ role, name, want string }{
		{"enforcer", "sasl_password", "enforcer's"},
		{"edge", "sasl_password", "shared"},
		{"edge", "ssl_cafile", ""},
		{"enforcer", "ssl_cafile", "/ca.pem"},
		{"edge", "security_protocol", "fallback"},
	} {
		if got := setting(vars, c.role, "kafka", c.name, "fallback"); got != c.want {
			t.Errorf("setting(%s, %s) = %q, want %q", c.role, c.name, got, c.want)
		}
	}
}

func TestSettingsThatCannotWorkAreRefusedNamingTheSetting(t *testing.T) {
	for _, c := range []struct {
		vars map[string]string
		want string
	}{
		{map[string]string{"BOTSCORE_KAFKA_SECURITY_PROTOCOL": "TLS"}, "kafka.security_protocol"},
		{map[string]string{
			"BOTSCORE_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
			"BOTSCORE_KAFKA_SASL_USERNAME":     "bs-{role}",
		}, "BOTSCORE_KAFKA_SASL_PASSWORD__EDGE"},
		{map[string]string{
			"BOTSCORE_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
			"BOTSCORE_KAFKA_SASL_USERNAME":     "bs-{role}",
			"BOTSCORE_KAFKA_SASL_PASSWORD":     "pw",
			"BOTSCORE_KAFKA_SASL_MECHANISM":    "GSSAPI",
		}, "kafka.sasl_mechanism"},
		{map[string]string{
			"BOTSCORE_KAFKA_SECURITY_PROTOCOL":  "SSL",
			"BOTSCORE_KAFKA_SSL_CHECK_HOSTNAME": "maybe",
		}, "kafka.ssl_check_hostname"},
		{map[string]string{
			"BOTSCORE_KAFKA_SECURITY_PROTOCOL": "SSL",
			"BOTSCORE_KAFKA_SSL_CAFILE":        "/nonexistent/ca.pem",
		}, "kafka.ssl_cafile"},
		{map[string]string{
			"BOTSCORE_KAFKA_SECURITY_PROTOCOL": "SSL",
			"BOTSCORE_KAFKA_SSL_CERTFILE":      "/client.pem",
		}, "no client certificate"},
	} {
		_, err := securityOptions(env(c.vars), "edge")
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: error %v, want one naming %q", c.vars, err, c.want)
		}
	}
}

func TestEachProtocolGivesItsOptions(t *testing.T) {
	for protocol, count := range map[string]int{
		"PLAINTEXT": 0, "SSL": 1, "SASL_PLAINTEXT": 1, "SASL_SSL": 2,
	} {
		options, err := securityOptions(env(map[string]string{
			"BOTSCORE_KAFKA_SECURITY_PROTOCOL": protocol,
			"BOTSCORE_KAFKA_SASL_USERNAME":     "bs-{role}",
			"BOTSCORE_KAFKA_SASL_PASSWORD":     "pw",
			"BOTSCORE_KAFKA_SASL_MECHANISM":    "SCRAM-SHA-512",
		}), "edge")
		if err != nil || len(options) != count {
			t.Errorf("%s: %d options, error %v; want %d", protocol, len(options), err, count)
		}
	}
}

func TestRedisOptionsComeFromTheRolesSettings(t *testing.T) {
	options, err := redisOptions(env(map[string]string{
		"BOTSCORE_REDIS_PORT":             "6380",
		"BOTSCORE_REDIS_DB":               "3",
		"BOTSCORE_REDIS_USERNAME":         "bs-{role}",
		"BOTSCORE_REDIS_PASSWORD":         "shared",
		"BOTSCORE_REDIS_PASSWORD__EDGE":   "edge's",
		"BOTSCORE_REDIS_SOCKET_TIMEOUT_S": "1.5",
	}), "edge")
	if err != nil {
		t.Fatal(err)
	}
	if options.Addr != "127.0.0.1:6380" || options.DB != 3 || options.Username != "bs-edge" ||
		options.Password != "edge's" || options.ReadTimeout.Milliseconds() != 1500 ||
		options.TLSConfig != nil {
		t.Errorf("options %+v", options)
	}
	for vars, want := range map[string]string{
		"BOTSCORE_REDIS_PORT":             "redis.port",
		"BOTSCORE_REDIS_DB":               "redis.db",
		"BOTSCORE_REDIS_SOCKET_TIMEOUT_S": "redis.socket_timeout_s",
		"BOTSCORE_REDIS_SSL":              "redis.ssl",
	} {
		_, err := redisOptions(env(map[string]string{vars: "-x"}), "edge")
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s=-x: error %v, want one naming %s", vars, err, want)
		}
	}
}
