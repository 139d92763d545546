package main

// How botscore-edge connects: Kafka and Redis, and their security, from the same
// environment variables botscore's Python processes read (see the README's settings
// table), so that an edge in Go runs as its own principal beside them. A role's own
// variable (BOTSCORE_<SECTION>_<NAME>__<ROLE>) comes before the shared one, and {role} in a
// user name stands for the role, as in botscore.settings. Passwords come only from the
// environment; config.json is not read.

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
	"github.com/youmark/pkcs8"
)

// environment is os.LookupEnv, or a test's: it tells an empty variable from an unset one,
// as Python's environ does.
type environment func(key string) (string, bool)

// setting is <section>.<name> for role: BOTSCORE_<SECTION>_<NAME>__<ROLE>, then
// BOTSCORE_<SECTION>_<NAME>, then fallback.
func setting(env environment, role, section, name, fallback string) string {
	shared := "BOTSCORE_" + strings.ToUpper(section+"_"+name)
	for _, key := range []string{shared + "__" + strings.ToUpper(role), shared} {
		if value, set := env(key); set {
			return value
		}
	}
	return fallback
}

// boolean reads a setting as botscore.settings does: 1/true/yes/on or 0/false/no/off.
func boolean(name, raw string) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(raw)) {
	case "1", "true", "yes", "on":
		return true, nil
	case "0", "false", "no", "off":
		return false, nil
	}
	return false, fmt.Errorf("%s: %q is not true or false", name, raw)
}

// securityOptions are the franz-go options for role's kafka.security_protocol and the
// ssl_*/sasl_* settings that go with it.
func securityOptions(env environment, role string) ([]kgo.Opt, error) {
	get := func(name, fallback string) string { return setting(env, role, "kafka", name, fallback) }
	protocol := get("security_protocol", "PLAINTEXT")
	var options []kgo.Opt
	switch protocol {
	case "PLAINTEXT", "SASL_PLAINTEXT":
	case "SSL", "SASL_SSL":
		config, err := tlsConfig(get, role)
		if err != nil {
			return nil, err
		}
		options = append(options, kgo.DialTLSConfig(config))
	default:
		return nil, fmt.Errorf(
			"kafka.security_protocol: %q is not PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL", protocol)
	}
	if strings.HasPrefix(protocol, "SASL_") {
		mechanism, err := saslMechanism(get, role)
		if err != nil {
			return nil, err
		}
		options = append(options, kgo.SASL(mechanism))
	}
	return options, nil
}

func tlsConfig(get func(name, fallback string) string, role string) (*tls.Config, error) {
	checkHostname, err := boolean("kafka.ssl_check_hostname", get("ssl_check_hostname", "true"))
	if err != nil {
		return nil, err
	}
	config := &tls.Config{MinVersion: tls.VersionTLS12}
	if cafile := get("ssl_cafile", ""); cafile != "" {
		pem, err := os.ReadFile(cafile)
		if err != nil {
			return nil, fmt.Errorf("kafka.ssl_cafile: %w", err)
		}
		config.RootCAs = x509.NewCertPool()
		if !config.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("kafka.ssl_cafile: %s holds no PEM certificate", cafile)
		}
	}
	if certfile := strings.ReplaceAll(get("ssl_certfile", ""), "{role}", role); certfile != "" {
		keyfile := strings.ReplaceAll(get("ssl_keyfile", ""), "{role}", role)
		certificate, err := clientCertificate(certfile, keyfile, get("ssl_password", ""), role)
		if err != nil {
			return nil, err
		}
		config.Certificates = []tls.Certificate{certificate}
	} else if get("ssl_keyfile", "") != "" {
		return nil, errors.New("kafka.ssl_keyfile is set without kafka.ssl_certfile")
	}
	if !checkHostname {
		// The chain is still checked against the CAs; only the name is not.
		roots := config.RootCAs
		config.InsecureSkipVerify = true
		config.VerifyConnection = func(state tls.ConnectionState) error {
			peers := state.PeerCertificates
			if len(peers) == 0 {
				return errors.New("the broker sent no certificate")
			}
			intermediates := x509.NewCertPool()
			for _, cert := range peers[1:] {
				intermediates.AddCert(cert)
			}
			_, err := peers[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: intermediates})
			return err
		}
	}
	return config, nil
}

// clientCertificate is the certificate chain in certfile with its private key, from keyfile
// (or certfile when keyfile is empty, as Python's ssl reads them): PKCS#8, encrypted with
// password or not, PKCS#1 or SEC 1. The key must be the certificate's.
func clientCertificate(certfile, keyfile, password, role string) (tls.Certificate, error) {
	certPEM, err := os.ReadFile(certfile)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("kafka.ssl_certfile: %w", err)
	}
	keyPEM := certPEM
	if keyfile != "" {
		if keyPEM, err = os.ReadFile(keyfile); err != nil {
			return tls.Certificate{}, fmt.Errorf("kafka.ssl_keyfile: %w", err)
		}
	} else {
		keyfile = certfile
	}
	var block *pem.Block
	for rest := keyPEM; ; {
		if block, rest = pem.Decode(rest); block == nil || strings.HasSuffix(block.Type, "PRIVATE KEY") {
			break
		}
	}
	if block == nil {
		return tls.Certificate{}, fmt.Errorf("kafka.ssl_keyfile: %s holds no PEM private key", keyfile)
	}
	passwordVar := fmt.Sprintf("BOTSCORE_KAFKA_SSL_PASSWORD__%s (or BOTSCORE_KAFKA_SSL_PASSWORD)",
		strings.ToUpper(role))
	var key any
	switch block.Type {
	case "ENCRYPTED PRIVATE KEY":
		if password == "" {
			return tls.Certificate{}, fmt.Errorf("kafka.ssl_keyfile: %s is encrypted and %s is "+
				"not set", keyfile, passwordVar)
		}
		if key, err = pkcs8.ParsePKCS8PrivateKey(block.Bytes, []byte(password)); err != nil {
			return tls.Certificate{}, fmt.Errorf("kafka.ssl_keyfile: %s cannot be opened with %s: %w",
				keyfile, passwordVar, err)
		}
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	default:
		err = fmt.Errorf("a %q block is no key it reads", block.Type)
	}
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("kafka.ssl_keyfile: %s: %w", keyfile, err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("kafka.ssl_keyfile: %s: %w", keyfile, err)
	}
	// X509KeyPair reads the chain and checks that the key is the certificate's.
	certificate, err := tls.X509KeyPair(certPEM, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("kafka.ssl_certfile %s with kafka.ssl_keyfile %s: %w",
			certfile, keyfile, err)
	}
	return certificate, nil
}

func saslMechanism(get func(name, fallback string) string, role string) (sasl.Mechanism, error) {
	user := strings.ReplaceAll(get("sasl_username", ""), "{role}", role)
	password := get("sasl_password", "")
	if user == "" || password == "" {
		return nil, fmt.Errorf("kafka.sasl_username and BOTSCORE_KAFKA_SASL_PASSWORD__%s (or "+
			"BOTSCORE_KAFKA_SASL_PASSWORD) are needed for SASL", strings.ToUpper(role))
	}
	switch mechanism := get("sasl_mechanism", "PLAIN"); mechanism {
	case "PLAIN":
		return plain.Auth{User: user, Pass: password}.AsMechanism(), nil
	case "SCRAM-SHA-256":
		return scram.Auth{User: user, Pass: password}.AsSha256Mechanism(), nil
	case "SCRAM-SHA-512":
		return scram.Auth{User: user, Pass: password}.AsSha512Mechanism(), nil
	default:
		return nil, fmt.Errorf(
			"kafka.sasl_mechanism: %q is not PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512", mechanism)
	}
}

// redisOptions are go-redis's options for role's redis.* settings: address, database,
// ACL user and password, TLS (the system's CAs), and the timeout of a call.
func redisOptions(env environment, role string) (*redis.Options, error) {
	get := func(name, fallback string) string { return setting(env, role, "redis", name, fallback) }
	port, err := strconv.Atoi(get("port", "6379"))
	if err != nil || port < 1 || port > 65535 {
		return nil, fmt.Errorf("redis.port: %q is not a port", get("port", "6379"))
	}
	db, err := strconv.Atoi(get("db", "0"))
	if err != nil || db < 0 {
		return nil, fmt.Errorf("redis.db: %q is not a database number", get("db", "0"))
	}
	seconds, err := strconv.ParseFloat(get("socket_timeout_s", "5"), 64)
	if err != nil || seconds <= 0 {
		return nil, fmt.Errorf("redis.socket_timeout_s: %q is not a positive number of seconds",
			get("socket_timeout_s", "5"))
	}
	useTLS, err := boolean("redis.ssl", get("ssl", "false"))
	if err != nil {
		return nil, err
	}
	timeout := time.Duration(seconds * float64(time.Second))
	options := &redis.Options{
		Addr:         net.JoinHostPort(get("host", "127.0.0.1"), strconv.Itoa(port)),
		DB:           db,
		Username:     strings.ReplaceAll(get("username", ""), "{role}", role),
		Password:     get("password", ""),
		DialTimeout:  timeout,
		ReadTimeout:  timeout,
		WriteTimeout: timeout,
		MaxRetries:   -1, // a refusal or an outage is reported, not retried
	}
	if useTLS {
		options.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	return options, nil
}
