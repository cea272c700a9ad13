package race_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tocsin/tocsin/internal/race"
	"github.com/tocsin/tocsin/internal/testenv"
)

// freePort returns a loopback port nothing listens on at the moment.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// selfSigned writes a certificate for 127.0.0.1 and returns the paths and a pool that trusts it.
func selfSigned(t *testing.T, dir string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "tocsin test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

// TestNginx runs the engine against a server that is not Go's: a private nginx on loopback serving
// HTTP/2 over TLS, h2c with prior knowledge, and HTTP/1.1.
func TestNginx(t *testing.T) {
	bin := testenv.LookPath(t, "apt-get install nginx-light", "nginx", "/usr/sbin/nginx")
	dir := t.TempDir()
	certFile, keyFile, pool := selfSigned(t, dir)
	tlsPort, h2cPort, h1Port := freePort(t), freePort(t), freePort(t)
	// "listen ... http2" rather than "http2 on": Debian's nginx may predate 1.25.1, and newer ones still
	// accept the old form.
	conf := fmt.Sprintf(`daemon off;
master_process off;
worker_processes 1;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log warn;
events { worker_connections 256; }
http {
  access_log off;
  client_body_temp_path %[1]s/body;
  proxy_temp_path %[1]s/proxy;
  fastcgi_temp_path %[1]s/fastcgi;
  uwsgi_temp_path %[1]s/uwsgi;
  scgi_temp_path %[1]s/scgi;
  server {
    listen 127.0.0.1:%[2]d ssl http2;
    ssl_certificate %[3]s;
    ssl_certificate_key %[4]s;
    location / { return 200 "nginx $request_method $uri $server_protocol"; }
  }
  server {
    listen 127.0.0.1:%[5]d http2;
    location / { return 200 "nginx $request_method $uri $server_protocol"; }
  }
  server {
    listen 127.0.0.1:%[6]d;
    location / { return 200 "nginx $request_method $uri $server_protocol"; }
  }
}
`, dir, tlsPort, certFile, keyFile, h2cPort, h1Port)
	confFile := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(confFile, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-c", confFile, "-p", dir, "-e", filepath.Join(dir, "error.log"))
	out := &strings.Builder{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start nginx: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	// Wait (bounded) until every port accepts.
	for _, port := range []int{tlsPort, h2cPort, h1Port} {
		deadline := time.Now().Add(10 * time.Second)
		for {
			c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
			if err == nil {
				c.Close()
				break
			}
			if time.Now().After(deadline) {
				log, _ := os.ReadFile(filepath.Join(dir, "error.log"))
				t.Fatalf("nginx did not listen on %d: %v\n%s%s", port, err, out, log)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}

	cases := []struct {
		name, origin string
		mode         race.Mode
		protocol     string // of the release
		server       string // $server_protocol nginx saw
	}{
		{"h2-tls", fmt.Sprintf("https://127.0.0.1:%d", tlsPort), race.Auto, "h2", "HTTP/2.0"},
		{"h2c", fmt.Sprintf("http://127.0.0.1:%d", h2cPort), race.SinglePacketH2, "h2c", "HTTP/2.0"},
		{"h1", fmt.Sprintf("http://127.0.0.1:%d", h1Port), race.LastByteH1, "http/1.1", "HTTP/1.1"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			reqs := make([]race.Request, 20)
			for i := range reqs {
				// nginx's return does not read bodies, so the batch is GETs and body-less POSTs.
				reqs[i] = race.Request{URL: fmt.Sprintf("%s/r/%d", tc.origin, i)}
				if i%2 == 1 {
					reqs[i].Method = "POST"
				}
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			b, err := race.Send(ctx, race.Options{Mode: tc.mode, Client: newClient(t, tc.origin, 100), TLSConfig: &tls.Config{RootCAs: pool}}, reqs)
			if err != nil {
				t.Fatalf("Send: %v", err)
			}
			if b.Release.Protocol != tc.protocol {
				t.Errorf("protocol %q, want %q", b.Release.Protocol, tc.protocol)
			}
			for i, r := range b.Responses {
				method := reqs[i].Method
				if method == "" {
					method = "GET"
				}
				want := fmt.Sprintf("nginx %s /r/%d %s", method, i, tc.server)
				if r.Err != nil || r.Status != 200 || string(r.Body) != want {
					t.Errorf("response %d: %d %q (err %v), want 200 %q", i, r.Status, r.Body, r.Err, want)
				}
			}
			if tc.mode != race.LastByteH1 {
				assertOneSegment(t, b.Release)
			}
		})
	}
}
