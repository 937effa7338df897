package pluginhost

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"

	"github.com/hashicorp/go-plugin"
)

// The reattach record: what a server writes of each durable plugin
// process so that the next server can reattach to it (see reattach.go).

// Reattach record files in the socket directory.
const (
	recordSuffix      = ".reattach.json"
	recordTempPattern = ".reattach-*.tmp"
	maxRecordSize     = 1 << 20
)

// reattachRecord is what a server needs to reattach to a plugin process a
// previous server launched. go-plugin's ReattachConfig lacks the TLS
// material: AutoMTLS certificates are made at launch, and without them a
// reattaching client could not connect.
type reattachRecord struct {
	PID     int    `json:"pid"`
	Network string `json:"network"`
	Addr    string `json:"addr"`
	// ProtocolVersion is the plugin protocol version negotiated at launch:
	// a reattaching go-plugin client does not negotiate.
	ProtocolVersion int    `json:"protocol_version"`
	Path            string `json:"path"`
	SHA256          string `json:"sha256"`
	// The AutoMTLS material, PEM-encoded: the client certificate the
	// plugin trusts and its key (PKCS #8), and the plugin's certificate.
	ClientCert string `json:"client_cert"`
	ClientKey  string `json:"client_key"`
	ServerCert string `json:"server_cert"`
	// Launch is what the process was launched with beyond its executable
	// (absent from the records of servers before it).
	Launch *launchSums `json:"launch,omitempty"`
}

// recordPath is the path of the reattach record of the plugin name.
func recordPath(dir, name string) string { return filepath.Join(dir, name+recordSuffix) }

// launchRecord makes the reattach record of a generation this server
// launched: its address, the negotiated version, and the AutoMTLS
// material — go-plugin's client certificate from cfg.TLSConfig, and the
// plugin's certificate from the handshake line (field 6, base64 DER),
// since go-plugin keeps it only inside a certificate pool.
func launchRecord(s *supervised, g *generation, client *plugin.Client, cfg *plugin.ClientConfig, handshake string) (*reattachRecord, error) {
	if g.addr == nil {
		return nil, errors.New("no plugin address")
	}
	if cfg.TLSConfig == nil || len(cfg.TLSConfig.Certificates) == 0 || len(cfg.TLSConfig.Certificates[0].Certificate) == 0 {
		return nil, errors.New("no AutoMTLS client certificate")
	}
	cert := cfg.TLSConfig.Certificates[0]
	key, err := x509.MarshalPKCS8PrivateKey(cert.PrivateKey)
	if err != nil {
		return nil, fmt.Errorf("the AutoMTLS client key: %w", err)
	}
	parts := strings.Split(strings.TrimSpace(handshake), "|")
	if len(parts) < 6 || parts[5] == "" {
		return nil, errors.New("the plugin's handshake has no server certificate")
	}
	der, err := base64.RawStdEncoding.DecodeString(parts[5])
	if err != nil {
		return nil, fmt.Errorf("the plugin's server certificate: %w", err)
	}
	if _, err := x509.ParseCertificate(der); err != nil {
		return nil, fmt.Errorf("the plugin's server certificate: %w", err)
	}
	s.mu.Lock()
	path, sum := s.path, s.sum
	s.mu.Unlock()
	return &reattachRecord{
		PID: g.pid, Network: g.addr.Network(), Addr: g.addr.String(),
		ProtocolVersion: client.NegotiatedVersion(), Path: path, SHA256: sum, Launch: s.launchSums(),
		ClientCert: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Certificate[0]})),
		ClientKey:  string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: key})),
		ServerCert: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
	}, nil
}

// validate reports what makes r unusable.
func (r *reattachRecord) validate() error {
	switch {
	case r.PID <= 0:
		return fmt.Errorf("pid %d", r.PID)
	case r.Network != "unix" && r.Network != "tcp" || r.Addr == "":
		return fmt.Errorf("address %s %q", r.Network, r.Addr)
	case r.ClientCert == "" || r.ClientKey == "" || r.ServerCert == "":
		return errors.New("no TLS material")
	}
	return nil
}

// tlsConfig rebuilds the TLS configuration go-plugin's AutoMTLS made at
// the launch.
func (r *reattachRecord) tlsConfig() (*tls.Config, error) {
	cert, err := tls.X509KeyPair([]byte(r.ClientCert), []byte(r.ClientKey))
	if err != nil {
		return nil, fmt.Errorf("client certificate: %w", err)
	}
	block, _ := pem.Decode([]byte(r.ServerCert))
	if block == nil {
		return nil, errors.New("server certificate: no PEM block")
	}
	server, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("server certificate: %w", err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(server)
	return &tls.Config{
		Certificates: []tls.Certificate{cert},
		RootCAs:      pool,
		ClientCAs:    pool,
		ClientAuth:   tls.RequireAndVerifyClientCert,
		MinVersion:   tls.VersionTLS12,
		ServerName:   "localhost",
	}, nil
}

// netAddr is the plugin's address.
func (r *reattachRecord) netAddr() (net.Addr, error) {
	if r.Network == "unix" {
		return net.ResolveUnixAddr("unix", r.Addr)
	}
	return net.ResolveTCPAddr("tcp", r.Addr)
}

// writeRecord writes rec to path atomically (a temporary file renamed),
// mode 0600.
func writeRecord(path string, rec *reattachRecord) error {
	b, err := json.MarshalIndent(rec, "", "  ")
	if err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(path), recordTempPattern) // mode 0600
	if err != nil {
		return err
	}
	_, err = f.Write(append(b, '\n'))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		_ = os.Remove(f.Name())
		return fmt.Errorf("writing the reattach record %s: %w", path, err)
	}
	return nil
}

// readRecord reads and checks the record at path; a missing one wraps
// fs.ErrNotExist.
func readRecord(path string) (*reattachRecord, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxRecordSize))
	if err != nil {
		return nil, err
	}
	var rec reattachRecord
	if err := json.Unmarshal(b, &rec); err != nil {
		return nil, fmt.Errorf("reattach record %s: %w", path, err)
	}
	if err := rec.validate(); err != nil {
		return nil, fmt.Errorf("reattach record %s: %w", path, err)
	}
	return &rec, nil
}

// removeRecord removes the record at path if it describes the process
// pid, or whatever it holds when pid is 0: a later generation may have
// written its own there since.
func removeRecord(path string, pid int) {
	if pid != 0 {
		if rec, err := readRecord(path); err == nil && rec.PID != pid {
			return
		}
	}
	_ = os.Remove(path)
}
