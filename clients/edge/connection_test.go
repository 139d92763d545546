package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/youmark/pkcs8"
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
			"BOTSCORE_KAFKA_SSL_CERTFILE":      "/nonexistent/{role}.pem",
		}, "kafka.ssl_certfile: open /nonexistent/edge.pem"},
		{map[string]string{
			"BOTSCORE_KAFKA_SECURITY_PROTOCOL": "SSL",
			"BOTSCORE_KAFKA_SSL_KEYFILE":       "/client-key.pem",
		}, "kafka.ssl_keyfile is set without kafka.ssl_certfile"},
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

// clientFiles writes a self-signed client certificate for cn and its key, encrypted with
// password as openssl genpkey writes it (PKCS#8, PBES2), or in clear when password is "".
func clientFiles(t *testing.T, cn, password string) (certfile, keyfile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	template := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, template, template, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	block := &pem.Block{Type: "PRIVATE KEY"}
	if password == "" {
		block.Bytes, err = x509.MarshalPKCS8PrivateKey(key)
	} else {
		block.Type = "ENCRYPTED PRIVATE KEY"
		block.Bytes, err = pkcs8.MarshalPrivateKey(key, []byte(password), nil)
	}
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certfile, keyfile = filepath.Join(dir, "client.pem"), filepath.Join(dir, "client-key.pem")
	for path, b := range map[string]*pem.Block{certfile: {Type: "CERTIFICATE", Bytes: der}, keyfile: block} {
		if err := os.WriteFile(path, pem.EncodeToMemory(b), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return certfile, keyfile
}

func TestAClientCertificateIsSentWithItsKeyOpenedByTheRolesPassword(t *testing.T) {
	certfile, keyfile := clientFiles(t, "bs-edge", "edge's")
	vars := env(map[string]string{
		"BOTSCORE_KAFKA_SSL_CERTFILE":       certfile,
		"BOTSCORE_KAFKA_SSL_KEYFILE":        keyfile,
		"BOTSCORE_KAFKA_SSL_PASSWORD":       "shared",
		"BOTSCORE_KAFKA_SSL_PASSWORD__EDGE": "edge's",
	})
	config, err := tlsConfig(func(name, fallback string) string {
		return setting(vars, "edge", "kafka", name, fallback)
	}, "edge")
	if err != nil {
		t.Fatal(err)
	}
	if len(config.Certificates) != 1 || config.Certificates[0].Leaf.Subject.CommonName != "bs-edge" {
		t.Errorf("certificates %+v", config.Certificates)
	}
	clear, clearKey := clientFiles(t, "bs-edge", "")
	if _, err := clientCertificate(clear, clearKey, "", "edge"); err != nil {
		t.Errorf("a key in clear: %v", err)
	}
}

func TestAKeyThatCannotBeOpenedOrIsNotTheCertificatesIsRefusedNamingWhy(t *testing.T) {
	certfile, keyfile := clientFiles(t, "bs-edge", "right")
	_, otherKey := clientFiles(t, "bs-other", "right")
	for _, c := range []struct{ keyfile, password, want string }{
		{keyfile, "", "is encrypted and BOTSCORE_KAFKA_SSL_PASSWORD__EDGE"},
		{keyfile, "wrong", "cannot be opened with BOTSCORE_KAFKA_SSL_PASSWORD__EDGE"},
		{otherKey, "right", "private key does not match public key"},
		{certfile, "right", "holds no PEM private key"},
	} {
		_, err := clientCertificate(certfile, c.keyfile, c.password, "edge")
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s with %q: error %v, want one saying %q", c.keyfile, c.password, err, c.want)
		}
	}
}
